// A violated dispatch contract fails with a message naming the kernel, the rule and the values,
// and nothing reaches the backend.
#include "mtile/harness.hpp"
#include "test_util.hpp"

using namespace mtile;
using mtile::testing::contains;

namespace {

// Wraps the CPU backend and counts what reaches it.
class CountingBackend : public Backend {
 public:
  CountingBackend() : inner_(make_backend("cpu")) {}
  std::string name() const override { return "counting"; }
  std::string device_name() const override { return "counting CPU"; }
  const Target& target() const override { return inner_->target(); }
  Buffer alloc(ScalarType e, uint64_t c) override {
    ++allocs;
    return adopt(inner_->alloc(e, c));
  }
  Buffer wrap(uint64_t a, ScalarType e, uint64_t c) override { return adopt(inner_->wrap(a, e, c)); }
  void release(Buffer& b) override { inner_->release(*inner(b)); }
  std::string why_unusable(const Buffer& b) const override { return b.owner == this ? "" : Backend::why_unusable(b); }
  void upload(Buffer& d, const void* h) override { inner_->upload(*inner(d), h); }
  void download(const Buffer& s, void* h) override { inner_->download(*inner(s), h); }
  std::shared_ptr<Executable> prepare(const ir::Function& f) override {
    ++prepares;
    return inner_->prepare(f);
  }
  void run(Executable& e, const Geometry& g, const std::vector<Buffer*>& t, const std::vector<uint64_t>& c,
           const Stream*) override {
    ++runs;
    std::vector<Buffer> copies;
    std::vector<Buffer*> ptrs;
    copies.reserve(t.size());
    for (Buffer* b : t) ptrs.push_back(b ? &copies.emplace_back(*inner(*b)) : nullptr);
    inner_->run(e, g, ptrs, c);
  }
  void synchronize() override {}
  int allocs = 0, prepares = 0, runs = 0;

 private:
  Buffer adopt(Buffer b) {
    inners_[b.handle] = b;
    b.owner = this;
    return b;
  }
  Buffer* inner(const Buffer& b) { return &inners_.at(b.handle); }
  std::map<uint64_t, Buffer> inners_;
  std::unique_ptr<Backend> inner_;
};

std::string violation(const std::string& kernel, Shape shape, std::optional<uint32_t> tpg = {}) {
  CountingBackend b;
  CheckOptions opts;
  Kernel k = find_kernel(kernel);
  if (tpg) {
    Geometry g = resolve(k.spec(), shape, b.target()).geometry;
    g.tpg = *tpg;
    opts.launch.geometry = g;
  }
  std::string msg = "no error";
  try {
    run_and_check(b, k, k->def.dtypes().back(), shape, opts);
  } catch (const Error& e) {
    msg = e.what();
  }
  EXPECT_EQ(b.runs, 0) << "a violated contract reached the backend";
  EXPECT_EQ(b.allocs, 0) << "buffers were allocated before the contract was checked";
  EXPECT_EQ(b.prepares, 0) << "code was compiled before the contract was checked";
  return msg;
}

}  // namespace

TEST(Contract, RejectsRowLengthNotMultipleOf128) {
  std::string msg = violation("ffai_rms_norm_residual", {{"rows", 4}, {"n", 4000}});
  EXPECT_TRUE(contains(msg, "kernel ffai_rms_norm_residual: contract violated")) << msg;
  EXPECT_TRUE(contains(msg, "n % 128 == 0 (n = 4000)")) << msg;
  EXPECT_TRUE(contains(msg, "Nothing was launched")) << msg;
}

TEST(Contract, RejectsRowsLongerThan4096) {
  std::string msg = violation("ffai_rms_norm_residual", {{"rows", 2}, {"n", 8192}});
  EXPECT_TRUE(contains(msg, "n <= 4096 (n = 8192)")) << msg;
  EXPECT_TRUE(contains(msg, "tpg <= max_tpg (tpg = 2048, max_tpg = 1024)")) << msg;
}

TEST(Contract, RejectsHandMadeThreadgroupOf16) {
  std::string msg = violation("ffai_rms_norm_residual", {{"rows", 2}, {"n", 512}}, 16);
  EXPECT_TRUE(contains(msg, "tpg % 32 == 0 (tpg = 16)")) << msg;
  EXPECT_TRUE(contains(msg, "tpg * 4 == n (tpg = 16, n = 512)")) << msg;
}

TEST(Contract, RejectsUnknownAndMissingShapeNames) {
  EXPECT_TRUE(contains(violation("ffai_rms_norm_residual", {{"rows", 2}}), "lacks 'n'"));
  EXPECT_TRUE(contains(violation("vector_add", {{"n", 2}, {"m", 3}}), "has 'm', which it does not take"));
}

TEST(Contract, CheckedOnEveryLaunchNotOnlyInTheHarness) {
  CountingBackend b;
  Kernel k = find_kernel("mt_rms_norm");
  std::vector<Buffer> bufs;
  Shape bad{{"rows", 1}, {"n", 200}};
  EXPECT_THROW(launch(b, k, ScalarType::f32, bad, {nullptr, nullptr, nullptr, nullptr, nullptr}), Error);
  EXPECT_EQ(b.runs, 0);
}

TEST(Contract, BuffersMustBeLargeEnoughAndTyped) {
  CountingBackend b;
  Kernel k = find_kernel("vector_add");
  Buffer a = b.alloc(ScalarType::f32, 100), c = b.alloc(ScalarType::f32, 100), small = b.alloc(ScalarType::f32, 10);
  try {
    launch(b, k, ScalarType::f32, {{"n", 100}}, {&a, &small, &c, nullptr});
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "buffer for 'b' has 10 elements, shape n=100 needs 100")) << e.what();
  }
  Buffer h = b.alloc(ScalarType::f16, 100);
  EXPECT_THROW(launch(b, k, ScalarType::f32, {{"n", 100}}, {&a, &h, &c, nullptr}), Error);
  EXPECT_EQ(b.runs, 0);
  for (Buffer* x : {&a, &c, &small, &h}) b.release(*x);
}
