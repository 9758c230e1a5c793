// Several GPUs: symmetric memory (one range, each rank's slice on its own device) and NCCL
// communicators. The argument checks run everywhere; the rest skips (with the reason) unless two
// CUDA devices open, and the NCCL tests unless NCCL loads.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <regex>
#include <thread>

#include "backends/cuda/cuda_backend.hpp"
#include "mtile/distributed.hpp"
#include "mtile/runtime.hpp"

namespace mtile {
namespace {

// Runs `f` and returns the Error's message ("" when nothing was thrown).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Nccl, UnavailableReasonOrVersion) {
  std::string why = nccl_unavailable_reason();
  if (why.empty()) {
    EXPECT_TRUE(std::regex_match(nccl_version(), std::regex(R"(\d+\.\d+\.\d+)"))) << nccl_version();
  } else {
    EXPECT_NE(why.find("NCCL"), std::string::npos) << why;
    EXPECT_NE(error_of([] { Communicator::unique_id(); }).find(why), std::string::npos);
  }
}

TEST(Nccl, InitAllRefusesOtherBackends) {
  auto c0 = make_backend("cpu"), c1 = make_backend("cpu");
  std::string e = error_of([&] { Communicator::init_all({c0.get(), c1.get()}); });
  EXPECT_NE(e.find("rank 0 is backend 'cpu', not cuda"), std::string::npos) << e;
  EXPECT_NE(error_of([] { Communicator::init_all({}); }).find("no ranks"), std::string::npos);
  e = error_of([&] { Communicator::init_all({nullptr}); });
  EXPECT_NE(e.find("rank 0 has no backend"), std::string::npos) << e;
  NcclUniqueId id{};
  e = error_of([&] { Communicator::init_rank(*c0, id, 2, 1); });
  EXPECT_NE(e.find("rank 1 is backend 'cpu', not cuda"), std::string::npos) << e;
}

std::unique_ptr<Backend> open_or_skip_reason(const std::string& name, std::string* why) {
  try {
    return make_backend(name);
  } catch (const Error& e) {
    *why = e.what();
    return nullptr;
  }
}

// One GPU: what alloc_symmetric refuses before touching memory.
TEST(SymmetricMemory, RefusesBadRanks) {
  std::string why;
  auto g0 = open_or_skip_reason("cuda:0", &why);
  if (!g0) GTEST_SKIP() << why;
  auto cpu = make_backend("cpu");
  std::string e = error_of([&] { alloc_symmetric({g0.get(), cpu.get()}, ScalarType::f32, 16); });
  EXPECT_NE(e.find("rank 1 is backend 'cpu', not cuda"), std::string::npos) << e;
  e = error_of([&] { alloc_symmetric({g0.get(), g0.get()}, ScalarType::f32, 16); });
  EXPECT_NE(e.find("ranks 0 and 1 are both device 0"), std::string::npos) << e;
  e = error_of([&] { g0->alloc_symmetric({cpu.get(), g0.get()}, ScalarType::f32, 16); });
  EXPECT_NE(e.find("not ranks[0]"), std::string::npos) << e;
  e = error_of([&] { Communicator::init_all({g0.get(), g0.get()}); });
  EXPECT_NE(e.find("ranks 0 and 1 are both device 0"), std::string::npos) << e;
}

class TwoGpus : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    for (int r = 0; r < 2; ++r) {
      gpus_[r] = open_or_skip_reason("cuda:" + std::to_string(r), &why);
      if (!gpus_[r]) GTEST_SKIP() << "needs two CUDA devices: " << why;
      cuda_[r] = dynamic_cast<cuda::CudaBackend*>(gpus_[r].get());
    }
  }
  std::vector<Backend*> ranks() { return {gpus_[0].get(), gpus_[1].get()}; }
  void need_nccl() {
    std::string why = nccl_unavailable_reason();
    if (!why.empty()) GTEST_SKIP() << why;
  }
  // Host -> device bytes at a raw address, through rank r's context and stream.
  void write(int r, uint64_t address, const void* host, size_t bytes) {
    cuda_[r]->make_current();
    MTILE_CU(cuMemcpyHtoDAsync_v2, address, host, bytes, cuda_[r]->stream());
    cuda_[r]->synchronize();
  }
  std::unique_ptr<Backend> gpus_[2];
  cuda::CudaBackend* cuda_[2] = {};
};

TEST_F(TwoGpus, SymmetricMemorySlicesAreSharedAndZeroed) {
  const uint64_t count = 1000;
  SymmetricMemory m = alloc_symmetric(ranks(), ScalarType::f32, count);
  ASSERT_EQ(m.views.size(), 2u);
  EXPECT_EQ(m.count, count);
  EXPECT_GE(m.slot, count);
  EXPECT_EQ(m.slot * 4 % (64 << 10), 0u) << "a slot is whole allocation granules";
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(m.views[r].owner, gpus_[r].get());
    EXPECT_EQ(m.views[r].count, 2 * m.slot);
    EXPECT_EQ(m.views[r].handle, m.handle());
    EXPECT_NE(m.views[r].id, 0u);
  }
  std::vector<float> all(2 * m.slot, -1.0f);
  gpus_[0]->download(m.views[0], all.data());
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], 0.0f) << "element " << i << " is not zeroed";

  // Each rank writes its own slice; either rank's view reads both.
  for (int r = 0; r < 2; ++r) {
    std::vector<float> slice(count);
    for (uint64_t i = 0; i < count; ++i) slice[i] = float(r * 10000 + i);
    write(r, m.handle() + r * m.slot * 4, slice.data(), count * 4);
  }
  for (int v = 0; v < 2; ++v) {
    gpus_[v]->download(m.views[v], all.data());
    for (int r = 0; r < 2; ++r)
      for (uint64_t i = 0; i < m.slot; ++i)
        ASSERT_EQ(all[r * m.slot + i], i < count ? float(r * 10000 + i) : 0.0f) << "view " << v << " slice " << r;
  }
  // Uploading through rank 1's view reaches rank 0's slice.
  for (size_t i = 0; i < all.size(); ++i) all[i] = float(i % 977);
  gpus_[1]->upload(m.views[1], all.data());
  gpus_[1]->synchronize();
  std::vector<float> back(all.size());
  gpus_[0]->download(m.views[0], back.data());
  EXPECT_EQ(back, all);

  std::string e = error_of([&] { gpus_[1]->release(m.views[1]); });
  EXPECT_NE(e.find("release it with release_symmetric"), std::string::npos) << e;
  SymmetricMemory copy = m;
  gpus_[1]->release_symmetric(m);  // any rank's backend releases it
  EXPECT_TRUE(m.views.empty());
  e = error_of([&] { gpus_[0]->release_symmetric(m); });
  EXPECT_NE(e.find("never allocated, or released already"), std::string::npos) << e;
  e = error_of([&] { gpus_[0]->release_symmetric(copy); });
  EXPECT_NE(e.find("released already"), std::string::npos) << e;
  e = error_of([&] { gpus_[0]->download(copy.views[0], back.data()); });
  EXPECT_NE(e.find("was released"), std::string::npos) << e;
}

TEST_F(TwoGpus, SymmetricMemoryOfEveryElementSize) {
  for (ScalarType t : {ScalarType::u8, ScalarType::bf16, ScalarType::u32, ScalarType::u64}) {
    SymmetricMemory m = alloc_symmetric(ranks(), t, 3);
    EXPECT_EQ(m.slot * storage_bytes(t) % (64 << 10), 0u) << type_name(t);
    gpus_[0]->release_symmetric(m);
  }
}

TEST_F(TwoGpus, BackendDestroyedFirstFreesItsSymmetricMemory) {
  SymmetricMemory m = alloc_symmetric(ranks(), ScalarType::f32, 64);
  gpus_[1].reset();  // rank 1 goes: the memory is freed and rank 0's view forgotten
  std::string e = error_of([&] { gpus_[0]->release_symmetric(m); });
  EXPECT_NE(e.find("released already"), std::string::npos) << e;
}

std::vector<float> random_floats(size_t n, uint32_t seed, ScalarType t) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-4.0f, 4.0f);
  std::vector<float> v(n);
  for (float& x : v) x = round_to(t, d(rng));
  return v;
}

TEST_F(TwoGpus, NcclAllReduceSumsF32AndBf16) {
  need_nccl();
  std::vector<Communicator> comms = Communicator::init_all(ranks());
  ASSERT_EQ(comms.size(), 2u);
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(comms[r].rank(), r);
    EXPECT_EQ(comms[r].size(), 2);
    EXPECT_EQ(&comms[r].backend(), gpus_[r].get());
  }
  const uint64_t n = (1 << 16) + 3;
  for (ScalarType t : {ScalarType::f32, ScalarType::bf16}) {
    std::vector<float> host[2] = {random_floats(n, 1, t), random_floats(n, 2, t)};
    Buffer send[2], recv[2];
    for (int r = 0; r < 2; ++r) {
      send[r] = gpus_[r]->alloc(t, n);
      recv[r] = gpus_[r]->alloc(t, n);
      if (t == ScalarType::f32) {
        gpus_[r]->upload(send[r], host[r].data());
      } else {
        std::vector<uint16_t> bits(n);
        for (uint64_t i = 0; i < n; ++i) bits[i] = f32_to_bf16_bits(host[r][i]);
        gpus_[r]->upload(send[r], bits.data());
      }
    }
    all_reduce_sum(comms, {&send[0], &send[1]}, {&recv[0], &recv[1]});
    for (int r = 0; r < 2; ++r) {
      std::vector<float> got(n);
      if (t == ScalarType::f32) {
        gpus_[r]->download(recv[r], got.data());
      } else {
        std::vector<uint16_t> bits(n);
        gpus_[r]->download(recv[r], bits.data());
        for (uint64_t i = 0; i < n; ++i) got[i] = bf16_bits_to_f32(bits[i]);
      }
      for (uint64_t i = 0; i < n; ++i) {
        double exact = double(host[0][i]) + host[1][i];
        // f32: the one rounding of a + b; bf16: within one rounding (8 significant bits).
        double tol = t == ScalarType::f32 ? std::abs(exact) * 0x1p-24 : std::abs(exact) * 0x1p-8 + 1e-30;
        ASSERT_LE(std::abs(got[i] - exact), tol) << type_name(t) << " rank " << r << " element " << i;
      }
    }
    for (int r = 0; r < 2; ++r) {
      gpus_[r]->release(send[r]);
      gpus_[r]->release(recv[r]);
    }
  }
}

TEST_F(TwoGpus, NcclAllReduceInPlaceAndChecks) {
  need_nccl();
  std::vector<Communicator> comms = Communicator::init_all(ranks());
  const uint64_t n = 4099;
  Buffer x[2];
  for (int r = 0; r < 2; ++r) {
    x[r] = gpus_[r]->alloc(ScalarType::i32, n);
    std::vector<int32_t> v(n, r + 1);
    gpus_[r]->upload(x[r], v.data());
  }
  nccl_group_start();
  for (int r = 0; r < 2; ++r) comms[r].all_reduce_sum(x[r], x[r]);
  nccl_group_end();
  for (int r = 0; r < 2; ++r) {
    std::vector<int32_t> v(n);
    gpus_[r]->download(x[r], v.data());
    EXPECT_EQ(v, std::vector<int32_t>(n, 3)) << "rank " << r;
  }
  Buffer wide = gpus_[0]->alloc(ScalarType::i64, 4), small = gpus_[0]->alloc(ScalarType::i32, 4);
  std::string e = error_of([&] { comms[0].all_reduce_sum(wide, wide); });
  EXPECT_NE(e.find("element type i64"), std::string::npos) << e;
  e = error_of([&] { comms[0].all_reduce_sum(x[0], small); });
  EXPECT_NE(e.find("they must match"), std::string::npos) << e;
  e = error_of([&] { comms[0].all_reduce_sum(x[1], x[1]); });  // rank 1's buffer on rank 0
  EXPECT_NE(e.find("belongs to another backend"), std::string::npos) << e;
  // A bad argument on any rank is refused before the group enqueues anything.
  e = error_of([&] { all_reduce_sum(comms, {&x[0], &x[0]}, {&x[0], &x[1]}); });
  EXPECT_NE(e.find("rank 1"), std::string::npos) << e;
  gpus_[0]->release(wide);
  gpus_[0]->release(small);
  for (int r = 0; r < 2; ++r) gpus_[r]->release(x[r]);
}

// One process per GPU, as torch.distributed runs: each rank initialises its own communicator
// from a shared id (init_rank) and issues its own collective, here from a thread a rank.
TEST_F(TwoGpus, NcclInitRankFromAThreadARank) {
  need_nccl();
  NcclUniqueId id = Communicator::unique_id();
  const uint64_t n = 1000;
  std::vector<int32_t> got[2];
  std::string failed[2];
  auto rank = [&](int r) {
    try {
      Communicator c = Communicator::init_rank(*gpus_[r], id, 2, r);
      EXPECT_EQ(c.rank(), r);
      EXPECT_EQ(c.size(), 2);
      Buffer x = gpus_[r]->alloc(ScalarType::i32, n);
      std::vector<int32_t> v(n);
      for (uint64_t i = 0; i < n; ++i) v[i] = int32_t(i) * (r + 1);
      gpus_[r]->upload(x, v.data());
      c.all_reduce_sum(x, x);
      got[r].resize(n);
      gpus_[r]->download(x, got[r].data());
      gpus_[r]->release(x);
    } catch (const std::exception& e) {
      failed[r] = e.what();
    }
  };
  std::thread other(rank, 1);
  rank(0);
  other.join();
  for (int r = 0; r < 2; ++r) {
    ASSERT_EQ(failed[r], "") << "rank " << r;
    for (uint64_t i = 0; i < n; ++i) ASSERT_EQ(got[r][i], int32_t(i) * 3) << "rank " << r << " element " << i;
  }
}

}  // namespace
}  // namespace mtile
