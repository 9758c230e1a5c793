// The C ABI: queries, launches on caller memory through DLTensors and mtile_tensor, every refusal
// with its message, thread-local errors, and a kernel library loaded at run time.
#include <gtest/gtest.h>
#include <mtile/mtile.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

const mtile_kernel* find(const char* name) {
  const mtile_kernel* k = nullptr;
  EXPECT_EQ(mtile_kernel_find(name, &k), MTILE_OK) << mtile_last_error();
  return k;
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A CPU tensor over a caller's vector, compact (strides NULL) unless strides are given.
struct Tensor {
  std::vector<float> data;
  std::vector<int64_t> shape;
  DLTensor dl{};
  Tensor(std::vector<int64_t> s, float fill) : shape(std::move(s)) {
    int64_t n = 1;
    for (int64_t e : shape) n *= e;
    data.assign(static_cast<size_t>(n), fill);
    dl.data = data.data();
    dl.device = {kDLCPU, 0};
    dl.ndim = static_cast<int32_t>(shape.size());
    dl.dtype = {kDLFloat, 32, 1};
    dl.shape = shape.data();
  }
  void random(uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (float& v : data) v = u(rng);
  }
};

int launch(const mtile_kernel* k, std::vector<const DLTensor*> t, std::vector<uint32_t> dims,
           int32_t dtype = MTILE_DTYPE_AUTO, uint64_t stream = 0) {
  return mtile_launch(k, t.data(), t.size(), dims.data(), dims.size(), nullptr, 0, dtype, stream);
}

TEST(CApi, ListsTheLibraryWithItsContracts) {
  size_t count = 0;
  ASSERT_EQ(mtile_kernel_count(&count), MTILE_OK);
  std::vector<std::string> names;
  for (size_t i = 0; i < count; ++i) {
    const mtile_kernel* k = nullptr;
    ASSERT_EQ(mtile_kernel_at(i, &k), MTILE_OK);
    names.push_back(mtile_kernel_name(k));
  }
  for (const char* n : {"mt_rms_inv_scalar", "mt_rms_norm", "ffai_rms_norm_residual", "mt_rms_norm_small",
                        "mt_rms_norm_wide", "rms_norm_residual", "add_rms_norm", "softmax", "vector_add"})
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  const mtile_kernel* k = find("ffai_rms_norm_residual");
  EXPECT_EQ(std::string(mtile_kernel_text(k, MTILE_TEXT_FAMILY)), "norm");
  EXPECT_TRUE(has(mtile_kernel_text(k, MTILE_TEXT_PRECONDITIONS), "n % 128 == 0"));
  EXPECT_TRUE(has(mtile_kernel_text(k, MTILE_TEXT_DISPATCH), "tpg = n / 4"));
  EXPECT_TRUE(has(mtile_kernel_text(k, MTILE_TEXT_SIZES), "residual = rows * n"));
  EXPECT_EQ(mtile_kernel_text(k, 99), nullptr);
  ASSERT_EQ(mtile_kernel_dim_count(k), 2u);
  EXPECT_EQ(std::string(mtile_kernel_dim(k, 0)) + "," + mtile_kernel_dim(k, 1), "rows,n");
  EXPECT_EQ(mtile_kernel_dim(k, 2), nullptr);
  ASSERT_EQ(mtile_kernel_dtype_count(k), 3u);
  EXPECT_EQ(mtile_kernel_dtype(k, 2), MTILE_DTYPE_BF16);
  const mtile_kernel* out_of_range = nullptr;
  EXPECT_EQ(mtile_kernel_at(count, &out_of_range), MTILE_ERROR_USER);
  EXPECT_TRUE(has(mtile_last_error(), "out of range"));
}

TEST(CApi, ParametersFollowTheVariant) {
  const mtile_kernel* k = find("add_rms_norm");
  ASSERT_EQ(mtile_kernel_param_count(k), 5u);  // x, residual, w, eps_buf, n
  mtile_param p{};
  ASSERT_EQ(mtile_kernel_param(k, 0, MTILE_DTYPE_BF16, &p), MTILE_OK) << mtile_last_error();
  EXPECT_EQ(std::string(p.name), "x");
  EXPECT_EQ(p.role, MTILE_ROLE_INOUT);
  EXPECT_EQ(p.dtype, MTILE_DTYPE_BF16);
  ASSERT_EQ(mtile_kernel_param(k, 3, MTILE_DTYPE_BF16, &p), MTILE_OK);
  EXPECT_EQ(std::string(p.name), "eps_buf");
  EXPECT_EQ(p.dtype, MTILE_DTYPE_F32);  // fixed, whatever the variant
  ASSERT_EQ(mtile_kernel_param(k, 4, MTILE_DTYPE_F16, &p), MTILE_OK);
  EXPECT_EQ(p.kind, MTILE_PARAM_CONSTEXPR);
  EXPECT_EQ(p.dtype, MTILE_DTYPE_U32);
  EXPECT_EQ(mtile_kernel_param(k, 5, MTILE_DTYPE_F16, &p), MTILE_ERROR_USER);
  EXPECT_EQ(mtile_kernel_param(find("mt_rms_inv_scalar"), 0, MTILE_DTYPE_BF16, &p), MTILE_ERROR_USER);
  EXPECT_TRUE(has(mtile_last_error(), "mt_rms_inv_scalar has no bf16 variant (it has f32)"));
}

TEST(CApi, UnknownKernelListsTheKnownOnes) {
  const mtile_kernel* k = nullptr;
  EXPECT_EQ(mtile_kernel_find("nope", &k), MTILE_ERROR_USER);
  EXPECT_TRUE(has(mtile_last_error(), "unknown kernel 'nope'"));
  EXPECT_TRUE(has(mtile_last_error(), "rms_norm_residual"));
}

TEST(CApi, RmsNormResidualOnCallerMemoryMatchesFloat64) {
  const int64_t rows = 3, n = 100;
  Tensor x({rows, n}, 0), res({rows, n}, 0), w({n}, 0), out({rows, n}, NAN), eps({1}, 1e-5f);
  x.random(1), res.random(2), w.random(3);
  ASSERT_EQ(launch(find("rms_norm_residual"), {&x.dl, &res.dl, &w.dl, &out.dl, &eps.dl}, {rows, n}), MTILE_OK)
      << mtile_last_error();
  double worst = 0;
  for (int64_t r = 0; r < rows; ++r) {
    double ssq = 0;
    for (int64_t i = 0; i < n; ++i) ssq += double(x.data[r * n + i]) * x.data[r * n + i];
    double inv = 1 / std::sqrt(ssq / n + 1e-5);
    for (int64_t i = 0; i < n; ++i) {
      double ref = res.data[r * n + i] + double(w.data[i]) * x.data[r * n + i] * inv;
      worst = std::max(worst, std::abs(ref - out.data[r * n + i]));
    }
  }
  EXPECT_LT(worst, 1e-5);  // NaN fails this too: every output was written
}

TEST(CApi, ByteOffsetIsHonoured) {
  Tensor a({8}, 0), b({4}, 10), c({4}, NAN);
  for (size_t i = 0; i < 8; ++i) a.data[i] = float(i);
  a.shape[0] = 4;
  a.dl.byte_offset = 4 * sizeof(float);  // a[4..8)
  ASSERT_EQ(launch(find("vector_add"), {&a.dl, &b.dl, &c.dl}, {4}), MTILE_OK) << mtile_last_error();
  EXPECT_EQ(c.data, (std::vector<float>{14, 15, 16, 17}));
}

TEST(CApi, TensorsByAddress) {
  std::vector<float> a(300, 1.5f), b(300, 2.0f), c(300, NAN);
  mtile_tensor t[3] = {{reinterpret_cast<uint64_t>(a.data()), 300, MTILE_DTYPE_F32, -1},
                       {reinterpret_cast<uint64_t>(b.data()), 300, MTILE_DTYPE_F32, -1},
                       {reinterpret_cast<uint64_t>(c.data()), 300, MTILE_DTYPE_F32, -1}};
  uint32_t n = 300;
  ASSERT_EQ(mtile_launch_tensors(find("vector_add"), t, 3, &n, 1, nullptr, 0, MTILE_DTYPE_F32, 0), MTILE_OK)
      << mtile_last_error();
  EXPECT_EQ(c, std::vector<float>(300, 3.5f));
  t[1].dtype = 99;
  EXPECT_EQ(mtile_launch_tensors(find("vector_add"), t, 3, &n, 1, nullptr, 0, MTILE_DTYPE_F32, 0), MTILE_ERROR_USER);
  EXPECT_TRUE(has(mtile_last_error(), "kernel vector_add: tensor 'b': 99 is not an element type"));
}

// mtile_launch_packed: one block holding the mtile_call, the records, the dims and the scalars,
// unaligned. Two shapes alternate (each thread keeps its recent plans by dims), and a launch
// whose tensors no longer match a remembered plan is still refused.
std::vector<unsigned char> packed(const mtile_kernel* k, std::vector<mtile_tensor> t, std::vector<uint32_t> dims,
                                  std::vector<double> scalars) {
  mtile_call c{k, 0, MTILE_DTYPE_AUTO, uint32_t(t.size()), uint32_t(dims.size()), uint32_t(scalars.size())};
  std::vector<unsigned char> b(1 + sizeof c + t.size() * sizeof(mtile_tensor) + dims.size() * 4 + scalars.size() * 8);
  unsigned char* p = b.data() + 1;  // deliberately misaligned
  auto put = [&](const void* src, size_t bytes) {
    std::copy_n(static_cast<const unsigned char*>(src), bytes, p);
    p += bytes;
  };
  put(&c, sizeof c);
  put(t.data(), t.size() * sizeof(mtile_tensor));
  put(dims.data(), dims.size() * 4);
  put(scalars.data(), scalars.size() * 8);
  return b;
}

TEST(CApi, PackedCallMatchesFloat64AndIsCheckedEveryTime) {
  const mtile_kernel* k = find("rms_norm");
  for (uint32_t n : {100u, 37u, 100u, 37u}) {
    const uint32_t rows = 3;
    Tensor x({rows, n}, 0), w({n}, 0), out({rows, n}, NAN);
    x.random(n), w.random(n + 1);
    auto rec = [](Tensor& t) {
      return mtile_tensor{reinterpret_cast<uint64_t>(t.data.data()), t.data.size(), MTILE_DTYPE_F32, -1};
    };
    auto call = packed(k, {rec(x), rec(w), rec(out)}, {rows, n}, {1e-5});
    ASSERT_EQ(mtile_launch_packed(call.data() + 1), MTILE_OK) << mtile_last_error();
    double worst = 0;
    for (uint32_t r = 0; r < rows; ++r) {
      double ssq = 0;
      for (uint32_t i = 0; i < n; ++i) ssq += double(x.data[r * n + i]) * x.data[r * n + i];
      for (uint32_t i = 0; i < n; ++i)
        worst = std::max(
            worst, std::abs(double(w.data[i]) * x.data[r * n + i] / std::sqrt(ssq / n + 1e-5) - out.data[r * n + i]));
    }
    EXPECT_LT(worst, 1e-5) << "n = " << n;  // NaN fails this too
    // The same kernel, dims and types as the call before, with too short an output: refused.
    auto short_out = rec(out);
    short_out.elements -= 1;
    auto bad = packed(k, {rec(x), rec(w), short_out}, {rows, n}, {1e-5});
    EXPECT_EQ(mtile_launch_packed(bad.data() + 1), MTILE_ERROR_USER);
    EXPECT_TRUE(has(mtile_last_error(), "kernel rms_norm: tensor 'out' has")) << mtile_last_error();
  }
  auto no_scalar = packed(k, {}, {3, 100}, {});
  EXPECT_EQ(mtile_launch_packed(no_scalar.data() + 1), MTILE_ERROR_USER);
  EXPECT_TRUE(has(mtile_last_error(), "kernel rms_norm takes 3 tensors")) << mtile_last_error();
  EXPECT_EQ(mtile_launch_packed(nullptr), MTILE_ERROR_USER);
  EXPECT_TRUE(has(mtile_last_error(), "mtile_launch_packed: call is NULL"));
}

// Each refusal: its status and the words of its message. Nothing is written.
struct Refusal {
  std::string name;
  std::function<int(Tensor& x, Tensor& w, Tensor& out, Tensor& eps)> call;
  std::vector<std::string> words;
};

TEST(CApi, RefusesBadLaunchesWithClearErrors) {
  const mtile_kernel* norm = find("mt_rms_norm_wide");
  auto ok = [&](Tensor& x, Tensor& w, Tensor& out, Tensor& eps) {
    return launch(norm, {&x.dl, &w.dl, &out.dl, &eps.dl}, {4, 64});
  };
  std::vector<Refusal> cases = {
      {"strided",
       [&](Tensor& x, Tensor& w, Tensor& out, Tensor& eps) {
         static int64_t strides[2] = {1, 4};  // a transposed view
         x.dl.strides = strides;
         return ok(x, w, out, eps);
       },
       {"kernel mt_rms_norm_wide: tensor 'x' is not contiguous", "strides [1, 4]"}},
      {"metal device",
       [&](Tensor& x, Tensor& w, Tensor& out, Tensor& eps) {
         w.dl.device.device_type = kDLMetal;
         return ok(x, w, out, eps);
       },
       {"tensor 'w' is on a Metal device (DLPack device type 8)"}},
      {"float64",
       [&](Tensor& x, Tensor& w, Tensor& out, Tensor& eps) {
         out.dl.dtype = {kDLFloat, 64, 1};
         return ok(x, w, out, eps);
       },
       {"tensor 'out' holds float64 elements"}},
      {"mixed variants",
       [&](Tensor& x, Tensor& w, Tensor& out, Tensor& eps) {
         x.dl.dtype = {kDLFloat, 16, 1};
         return ok(x, w, out, eps);
       },
       {"no variant takes these tensors (x f16, w f32, out f32, eps_buf f32)", "f16 (x f16, w f16"}},
      {"explicit variant",
       [&](Tensor& x, Tensor& w, Tensor& out, Tensor& eps) {
         return launch(norm, {&x.dl, &w.dl, &out.dl, &eps.dl}, {4, 64}, MTILE_DTYPE_BF16);
       },
       {"the bf16 variant takes bf16 (x bf16, w bf16, out bf16, eps_buf f32); given x f32"}},
      {"short tensor",
       [&](Tensor& x, Tensor& w, Tensor& out, Tensor& eps) {
         w.shape[0] = 63;
         return ok(x, w, out, eps);
       },
       {"tensor 'w' has 63 elements; w = n needs 64"}},
      {"tensor count",
       [&](Tensor& x, Tensor& w, Tensor& out, Tensor&) {
         return launch(norm, {&x.dl, &w.dl, &out.dl}, {4, 64});
       },
       {"kernel mt_rms_norm_wide takes 4 tensors (x, w, out, eps_buf), 3 given"}},
      {"dim count",
       [&](Tensor& x, Tensor& w, Tensor& out, Tensor& eps) {
         return launch(norm, {&x.dl, &w.dl, &out.dl, &eps.dl}, {256});
       },
       {"takes 2 dims (rows, n), 1 given"}},
      {"null tensor",
       [&](Tensor& x, Tensor&, Tensor& out, Tensor& eps) {
         return launch(norm, {&x.dl, nullptr, &out.dl, &eps.dl}, {4, 64});
       },
       {"tensor 'w' is NULL"}},
      {"stream on cpu",
       [&](Tensor& x, Tensor& w, Tensor& out, Tensor& eps) {
         return launch(norm, {&x.dl, &w.dl, &out.dl, &eps.dl}, {4, 64}, MTILE_DTYPE_AUTO, 0x1234);
       },
       {"CPU tensors run at once, on no stream; stream 0x1234"}},
      {"mixed devices",
       [&](Tensor& x, Tensor& w, Tensor& out, Tensor& eps) {
         out.dl.device = {kDLCUDA, 0};
         return ok(x, w, out, eps);
       },
       {"tensors are on different devices: 'x' on cpu, 'out' on cuda:0"}},
      {"contract",
       [&](Tensor& x, Tensor& w, Tensor& out, Tensor& eps) {
         return launch(find("ffai_rms_norm_residual"), {&x.dl, &x.dl, &w.dl, &out.dl, &eps.dl}, {4, 64});
       },
       {"ffai_rms_norm_residual", "n % 128 == 0 (n = 64)", "Nothing was launched"}},
  };
  for (Refusal& c : cases) {
    Tensor x({4, 64}, 0.5f), w({64}, 1), out({4, 64}, NAN), eps({1}, 1e-6f);
    EXPECT_EQ(c.call(x, w, out, eps), MTILE_ERROR_USER) << c.name;
    for (const std::string& word : c.words)
      EXPECT_TRUE(has(mtile_last_error(), word)) << c.name << ": " << mtile_last_error();
    EXPECT_TRUE(std::isnan(out.data[0])) << c.name << ": nothing may run";
  }
  EXPECT_EQ(mtile_launch(nullptr, nullptr, 0, nullptr, 0, nullptr, 0, 0, 0), MTILE_ERROR_USER);
}

TEST(CApi, ErrorsAreKeptPerThread) {
  const mtile_kernel* k = find("vector_add");
  std::string other_thread;
  std::thread t([&] {
    const mtile_kernel* none = nullptr;
    mtile_kernel_find("missing_in_thread", &none);
    other_thread = mtile_last_error();
  });
  t.join();
  const mtile_kernel* none = nullptr;
  mtile_kernel_find("missing_here", &none);
  EXPECT_TRUE(has(other_thread, "missing_in_thread"));
  EXPECT_TRUE(has(mtile_last_error(), "missing_here"));
  // Launches from several threads at once, each on its own memory.
  std::vector<std::thread> threads;
  std::vector<int> wrong(4, -1);
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      Tensor a({5000}, float(i)), b({5000}, 1), c({5000}, NAN);
      int rc = launch(k, {&a.dl, &b.dl, &c.dl}, {5000});
      wrong[i] = rc;
      for (float v : c.data) wrong[i] += v != float(i + 1);
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong, std::vector<int>(4, 0));
}

TEST(CApi, LoadsAKernelLibrary) {
  size_t before = 0, after = 0, added = 0;
  ASSERT_EQ(mtile_kernel_count(&before), MTILE_OK);
  ASSERT_EQ(mtile_load_library(MTILE_KERNEL_LIBRARY, &added), MTILE_OK) << mtile_last_error();
  ASSERT_EQ(mtile_kernel_count(&after), MTILE_OK);
  EXPECT_EQ(added, 1u);
  EXPECT_EQ(after, before + 1);
  ASSERT_EQ(mtile_load_library(MTILE_KERNEL_LIBRARY, &added), MTILE_OK);  // again: nothing more
  EXPECT_EQ(added, 0u);

  Tensor x({3}, 2), y({3}, 1), alpha({1}, 0.5f);
  ASSERT_EQ(launch(find("example_axpy"), {&x.dl, &y.dl, &alpha.dl}, {3}), MTILE_OK) << mtile_last_error();
  EXPECT_EQ(y.data, (std::vector<float>{2, 2, 2}));

  EXPECT_EQ(mtile_load_library("/nonexistent/libkernels.so", nullptr), MTILE_ERROR_USER);
  EXPECT_TRUE(has(mtile_last_error(), "can't load kernel library /nonexistent/libkernels.so"));
}

TEST(CApi, NamesAndVersions) {
  EXPECT_EQ(mtile_abi_version(), MTILE_ABI_VERSION);
  EXPECT_EQ(std::string(mtile_dtype_name(MTILE_DTYPE_BF16)), "bf16");
  EXPECT_EQ(std::string(mtile_dtype_name(42)), "?");
  EXPECT_FALSE(std::string(mtile_version()).empty());
}

}  // namespace
