// Collective kernels on the CPU engine's simulated ranks (docs/collectives.md): allreduce_add_rms_norm
// launched by hand over symmetric memory, as a user of the runtime API would; every rank ends with
// the same residual, bit for bit; the flags are left zeroed for the next launch; a rank outside
// 0..ranks - 1 and a spec that breaks the symmetric conventions are refused by name.
#include <fmt/format.h>

#include <cstring>
#include <random>

#include "mtile/harness.hpp"
#include "test_util.hpp"

using namespace mtile;
using mtile::testing::contains;

namespace {

struct Rank {
  Buffer residual, w, out, eps;
};

// 3 ranks of 5 rows: the rule picks the two-shot (rows 0-1, 2-3 and 4 reduced by ranks 0, 1, 2);
// `shots` = 1 forces the one-shot.
class Collective : public ::testing::TestWithParam<uint32_t> {};

TEST_P(Collective, AllreduceAddRmsNormByHandOnSimulatedRanks) {
  Context ctx;
  Backend& cpu = ctx.backend("cpu");
  Kernel k = find_kernel("allreduce_add_rms_norm");
  const uint32_t ranks = 3, rows = 5, n = 264;
  Shape shape{{"ranks", ranks}, {"rows", rows}, {"n", n}};
  std::vector<Backend*> group(ranks, &cpu);
  Resolved r = resolve(k.spec(), shape, cpu.target());
  SymmetricMemory x = alloc_symmetric(group, ScalarType::f32, r.elements.at("x") / ranks);
  SymmetricMemory flags = alloc_symmetric(group, ScalarType::u32, r.elements.at("flags") / ranks);
  ASSERT_EQ(x.slot, uint64_t{rows} * n);
  // Partial sums differ per rank; the residual stream and the weights are the same on every rank.
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1, 1);
  auto* xs = reinterpret_cast<float*>(x.handle());
  std::vector<float> partial(ranks * x.slot);  // x after a two-shot holds the new residual: kept here
  for (float& v : partial) v = dist(rng);
  std::vector<float> residual(rows * n), w(n);
  for (float& v : residual) v = dist(rng);
  for (float& v : w) v = dist(rng);
  std::vector<Rank> own(ranks);
  std::vector<std::shared_ptr<const LaunchPlan>> plans;
  std::vector<std::vector<Buffer*>> args;
  std::vector<LaunchOptions> opts(ranks);
  for (uint32_t q = 0; q < ranks; ++q) {
    own[q] = {cpu.alloc(ScalarType::f32, rows * n), cpu.alloc(ScalarType::f32, n), cpu.alloc(ScalarType::f32, rows * n),
              cpu.alloc(ScalarType::f32, 1)};
    cpu.upload(own[q].residual, residual.data());
    cpu.upload(own[q].w, w.data());
    float eps = 1e-6f;
    cpu.upload(own[q].eps, &eps);
    opts[q].config = {{"x_slot", static_cast<uint32_t>(x.slot)}, {"flags_slot", static_cast<uint32_t>(flags.slot)}};
    if (GetParam()) opts[q].config["shots"] = GetParam();
    opts[q].scalars = {{"rank", q}};
    plans.push_back(ctx.plan(cpu, k, ScalarType::f32, shape, opts[q]));
    ASSERT_EQ(plans.back()->resolved.config.at("shots"), GetParam() ? GetParam() : 2u);
    args.push_back({&x.views[q], &flags.views[q], &own[q].residual, &own[q].w, &own[q].out, &own[q].eps, nullptr,
                    nullptr, nullptr, nullptr, nullptr});
  }
  for (int launch = 0; launch < 2; ++launch) {  // the second launch reuses the flags the first cleared
    for (uint32_t q = 0; q < ranks; ++q) cpu.upload(own[q].residual, residual.data());
    std::memcpy(xs, partial.data(), partial.size() * 4);
    run_collective(ctx, group, plans, args, opts);
    const auto* f = reinterpret_cast<const uint32_t*>(flags.handle());
    for (uint64_t i = 0; i < ranks * flags.slot; ++i) ASSERT_EQ(f[i], 0u) << "flag " << i << " after launch " << launch;
    std::vector<float> first(rows * n), got(rows * n), out(rows * n);
    cpu.download(own[0].residual, first.data());
    for (uint32_t q = 1; q < ranks; ++q) {
      cpu.download(own[q].residual, got.data());
      EXPECT_EQ(std::memcmp(first.data(), got.data(), got.size() * 4), 0) << "rank " << q << "'s residual";
    }
    // Against float64: the sum over ranks plus the residual, normalised.
    cpu.download(own[ranks - 1].out, out.data());
    for (uint32_t row = 0; row < rows; ++row) {
      std::vector<double> s(n);
      double ssq = 0;
      for (uint32_t i = 0; i < n; ++i) {
        for (uint32_t p = 0; p < ranks; ++p) s[i] += partial[p * x.slot + row * n + i];
        s[i] += residual[row * n + i];
        ssq += s[i] * s[i];
        EXPECT_NEAR(first[row * n + i], s[i], 1e-5);
      }
      double inv = 1 / std::sqrt(ssq / n + 1e-6);
      for (uint32_t i = 0; i < n; ++i) EXPECT_NEAR(out[row * n + i], s[i] * inv * w[i], 1e-4) << row << ", " << i;
    }
  }
  for (Rank& q : own)
    for (Buffer* b : {&q.residual, &q.w, &q.out, &q.eps}) cpu.release(*b);
  cpu.release_symmetric(x);
  cpu.release_symmetric(flags);
  EXPECT_THROW(cpu.release_symmetric(x), Error);
}

INSTANTIATE_TEST_SUITE_P(Shots, Collective, ::testing::Values(0u, 1u));

TEST(CollectiveErrors, RankOutsideTheGroupIsRefused) {
  Context ctx;
  Backend& cpu = ctx.backend("cpu");
  Kernel k = find_kernel("allreduce_add_rms_norm");
  Shape shape{{"ranks", 2}, {"rows", 1}, {"n", 64}};
  LaunchOptions o;
  o.scalars = {{"rank", 2}};
  auto plan = ctx.plan(cpu, k, ScalarType::f32, shape, o);
  std::vector<Backend*> group(2, &cpu);
  Resolved r = resolve(k.spec(), shape, cpu.target());
  SymmetricMemory x = alloc_symmetric(group, ScalarType::f32, r.elements.at("x") / 2);
  SymmetricMemory flags = alloc_symmetric(group, ScalarType::u32, r.elements.at("flags") / 2);
  Buffer res = cpu.alloc(ScalarType::f32, 64), w = cpu.alloc(ScalarType::f32, 64), out = cpu.alloc(ScalarType::f32, 64),
         eps = cpu.alloc(ScalarType::f32, 1);
  std::string why;
  try {
    ctx.run(cpu, *plan,
            {&x.views[0], &flags.views[0], &res, &w, &out, &eps, nullptr, nullptr, nullptr, nullptr, nullptr}, o);
  } catch (const Error& e) {
    why = e.what();
  }
  EXPECT_TRUE(contains(why, "kernel allreduce_add_rms_norm: scalar 'rank' is 2, outside 0..ranks - 1 = 1")) << why;
  EXPECT_TRUE(contains(why, "Nothing was launched")) << why;
  // Symmetric memory of the CPU engine is for its own simulated ranks only.
  auto other = make_backend("cpu");
  std::string mixed;
  try {
    alloc_symmetric({&cpu, other.get()}, ScalarType::f32, 8);
  } catch (const Error& e) {
    mixed = e.what();
  }
  EXPECT_TRUE(contains(mixed, "rank 1 is the backend cpu, not this CPU engine")) << mixed;
  for (Buffer* b : {&res, &w, &out, &eps}) cpu.release(*b);
  cpu.release_symmetric(x);
  cpu.release_symmetric(flags);
}

TEST(CollectiveErrors, SymmetricConventionsAreChecked) {
  KernelSpec spec = find_kernel("allreduce_add_rms_norm").spec();
  auto seal = [](KernelSpec s) {
    try {
      make_kernel(std::move(s));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("sealed");
  };
  EXPECT_EQ(seal(spec), "sealed");
  KernelSpec no_slot = spec;
  std::erase_if(no_slot.config, [](const ConfigParam& c) { return c.name == "flags_slot"; });
  no_slot.constexprs.erase("flags_slot");
  no_slot.constexprs["flags_slot"] = rule::var("ranks") * 64;
  no_slot.sizes["flags"] = rule::var("ranks") * 64;
  std::erase_if(no_slot.preconditions, [](const rule::Expr& e) { return contains(e.text(), "flags_slot"); });
  EXPECT_TRUE(contains(seal(no_slot), "spec field 'symmetric': 'flags' has no Config parameter 'flags_slot'"))
      << seal(no_slot);
  KernelSpec not_tensor = spec;
  not_tensor.symmetric.insert("n");
  EXPECT_TRUE(contains(seal(not_tensor), "'n' is not a tensor parameter")) << seal(not_tensor);
}

}  // namespace
