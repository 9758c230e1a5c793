// A kernel defined outside mtile's repo: leaky ReLU, several elements a thread (a meta-parameter
// of its Config). It registers the kernel, checks it against its float64 reference with mtile's
// harness on every backend this machine has, and launches it on memory it owns.
#include <cstdio>
#include <mtile/mtile.hpp>
#include <vector>

using namespace mtile;
using namespace mtile::dsl;

// y = x > 0 ? x : 0.01 x; each thread takes `per_thread` consecutive elements.
template <class T>
void leaky_relu(In<T> x, Out<T> y, Constexpr n) {
  const uint32_t k = config("per_thread");  // a C++ value: the loop below unrolls at trace time
  Val first = (program_id(0) * lsize() + tid()) * k;
  for (uint32_t j = 0; j < k; ++j) {
    Val i = first + j;
    if_(i < n, [&] {
      Val v = load<f32>(x[i]);
      store(y[i], cast<T>(select(v > 0.0f, v, v * 0.01f)));
    });
  }
}

Kernel register_leaky_relu() {
  using rule::var;
  rule::Expr n = var("n"), per_thread = var("per_thread"), threads = var("threads");
  KernelSpec k;
  k.def = define_generic_kernel("leaky_relu", ir::Mode::Elementwise, {"x", "y", "n"}, MTILE_FLOAT_VARIANTS(leaky_relu));
  k.family = "example";
  k.summary = "y = x > 0 ? x : 0.01 x";
  k.dims = {"n"};
  k.config = {{"per_thread", 4}, {"threads", 256}};
  k.dispatch = {.grid = rule::ceil_div(n, threads * per_thread), .tpg = threads};
  k.preconditions = {n >= 1, var("grid") * var("tpg") * per_thread >= n, var("grid_y") == 1, var("grid_z") == 1};
  k.sizes = {{"x", n}, {"y", n}};
  k.reference = [](const Shape&, HostTensors& t) {
    for (size_t i = 0; i < t["x"].size(); ++i) t["y"][i] = t["x"][i] > 0 ? t["x"][i] : 0.01 * t["x"][i];
  };
  k.tolerance = spec::float_tolerances();
  k.test_shapes = {{{"n", 1}}, {{"n", 1000}}, {{"n", 4099}}};
  return register_kernel(std::move(k));
}

int main() {
  try {
    Kernel k = register_leaky_relu();
    Context ctx;
    int failed = 0;
    // 1. The harness: every dtype and test shape on every backend this machine has.
    for (const std::string& name : backend_names()) {
      Backend* b = nullptr;
      try {
        b = &ctx.backend(name);
      } catch (const Error& e) {
        std::printf("skipping backend %s: %s\n", name.c_str(), e.what());
        continue;
      }
      for (ScalarType t : k->def.dtypes())
        for (const Shape& s : k->test_shapes) {
          CheckResult r = run_and_check(ctx, *b, k, t, s);
          std::printf("%s %s\n", name.c_str(), r.summary().c_str());
          failed += !r.passed;
        }
    }
    // 2. A launch on memory this program owns, with a Config override (still checked).
    std::vector<float> x(10000), y(x.size(), -1.0f);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 101) - 50.0f;
    Backend& cpu = ctx.backend("cpu");
    Buffer bx = cpu.wrap(reinterpret_cast<uint64_t>(x.data()), ScalarType::f32, x.size());
    Buffer by = cpu.wrap(reinterpret_cast<uint64_t>(y.data()), ScalarType::f32, y.size());
    LaunchOptions opts;
    opts.config = {{"per_thread", 8}};
    ctx.launch(cpu, k, ScalarType::f32, {{"n", static_cast<uint32_t>(x.size())}}, {&bx, &by, nullptr}, opts);
    int wrong = 0;
    for (size_t i = 0; i < x.size(); ++i) wrong += y[i] != (x[i] > 0 ? x[i] : x[i] * 0.01f);
    std::printf("launch on caller-owned memory: %d of %zu elements wrong\n", wrong, x.size());
    // 3. What it compiles to, for CUDA.
    std::string cuda = codegen::emit_cuda(
        passes::run_pipeline(k->def.trace(ScalarType::bf16, {{"per_thread", 2}}), Target::cuda("sm_90a")));
    std::printf("CUDA for leaky_relu<bf16>: %zu bytes, entry %s\n", cuda.size(),
                codegen::cuda_entry_name(k->def.trace(ScalarType::bf16, {{"per_thread", 2}})).c_str());
    bool ok = failed == 0 && wrong == 0 && find_kernel("leaky_relu").serial() == k.serial();
    std::printf("%s\n", ok ? "external example: PASS" : "external example: FAIL");
    return ok ? 0 : 1;
  } catch (const Error& e) {
    std::fprintf(stderr, "external example: %s error: %s\n", error_kind_name(e.kind()), e.what());
    return 2;
  }
}
