// A kernel library for mtile_load_library (C) and mtile.load_library (Python): a shared library
// that registers its kernels from the entry point the loader calls. Build it against the headers
// and the libmtile_c.so it will be loaded into; for the Python package:
//   inc=$(python -c 'import mtile; print(mtile.include_dir())')
//   lib=$(python -c 'import mtile; print(mtile.library_dir())')
//   g++ -std=c++20 -shared -fPIC axpy.cpp -o libaxpy.so -I"$inc" -L"$lib" -lmtile_c
// then in Python: mtile.load_library("./libaxpy.so"); mtile.launch("example_axpy", x, y, alpha)
#include <mtile/mtile.hpp>

using namespace mtile;
using namespace mtile::dsl;

namespace {

// y <- alpha[0] * x + y, in place, one element a thread.
template <class T>
void example_axpy(In<T> x, InOut<T> y, In<f32> alpha, Constexpr n) {
  Val i = program_id(0) * lsize() + tid();
  if_(i < n, [&] { store(y[i], cast<T>(load(alpha[0u]) * load<f32>(x[i]) + load<f32>(y[i]))); });
}

KernelSpec axpy_spec() {
  using rule::var;
  rule::Expr n = var("n"), threads = var("threads");
  KernelSpec k;
  k.def = define_generic_kernel("example_axpy", ir::Mode::Elementwise, {"x", "y", "alpha", "n"},
                                MTILE_FLOAT_VARIANTS(example_axpy));
  k.family = "example";
  k.summary = "y = alpha * x + y, in place (a kernel loaded from a library)";
  k.dims = {"n"};
  k.config = {{"threads", 256}};
  k.dispatch = {.grid = rule::ceil_div(n, threads), .tpg = threads};
  k.preconditions = {n >= 1, var("grid") * var("tpg") >= n, var("grid_y") == 1, var("grid_z") == 1};
  k.sizes = {{"x", n}, {"y", n}, {"alpha", 1}};
  k.reference = [](const Shape&, HostTensors& t) {
    for (size_t i = 0; i < t["x"].size(); ++i) t["y"][i] = t["alpha"][0] * t["x"][i] + t["y"][i];
  };
  k.tolerance = spec::float_tolerances();
  k.test_shapes = {{{"n", 1}}, {{"n", 1000}}};
  return k;
}

}  // namespace

// What mtile_load_library calls once the library is loaded; an error it throws is reported there.
extern "C" void mtile_register_kernels() {
  register_kernel(axpy_spec());
}
