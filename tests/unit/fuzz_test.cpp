// The differential fuzzer itself: its kernels are valid and cover the IR, it is deterministic, it
// catches a planted bug and shrinks it, and it compares floats as documented.
#include "fuzz/fuzz.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>
#include <set>

#include "fuzz/shrink.hpp"
#include "passes/pipeline.hpp"

namespace mtile::fuzz {
namespace {

using ir::Op;

TEST(Fuzz, GeneratedKernelsTraceAndCoverTheIR) {
  std::set<Op> ops, lowered_ops;
  std::set<std::pair<ScalarType, ScalarType>> casts;
  std::set<ScalarType> reduced, memory_types;
  std::set<std::pair<ir::MemSpace, ir::AtomicOp>> atomics;
  bool if_else = false, masked_load = false, masked_store = false, scalar_param = false;
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    Program p = generate(seed);
    ir::Function f;
    ASSERT_NO_THROW(f = trace_program(p)) << "seed " << seed;
    std::map<ir::Id, ScalarType> types;
    ir::for_each_inst(f.body, [&](const ir::Inst& in) {
      if (in.result != ir::kNoId) types[in.result] = in.op == Op::For ? ScalarType::u32 : in.type;
      ops.insert(in.op);
      if (in.op == Op::Cast) casts.insert({types.at(in.args[0]), in.type});
      if (in.op == Op::TgReduceSum) reduced.insert(in.type);
      if_else |= in.op == Op::If && !in.blocks[1].insts.empty();
      masked_load |= in.op == Op::Load && in.args.size() == 3;
      masked_store |= in.op == Op::Store && in.args.size() == 3;
      if (in.op == Op::Atomic) atomics.insert({in.space, static_cast<ir::AtomicOp>(in.bits)});
    });
    for (const ir::Param& prm : f.params) {
      if (prm.kind == ir::ParamKind::Tensor) memory_types.insert(prm.elem);
      scalar_param |= prm.kind == ir::ParamKind::Scalar;
    }
    ir::Function g = passes::run_pipeline(f, Target::cpu());
    ir::for_each_inst(g.body, [&](const ir::Inst& in) { lowered_ops.insert(in.op); });
  }
  for (Op op : {Op::Const,       Op::ConstexprRef, Op::ProgramId,   Op::ThreadId,    Op::ThreadgroupSize,
                Op::GridSize,    Op::SimdLane,     Op::SimdGroup,   Op::Neg,         Op::Not,
                Op::Abs,         Op::Floor,        Op::Sqrt,        Op::Rsqrt,       Op::Exp,
                Op::Exp2,        Op::Log,          Op::Tanh,        Op::Erf,         Op::Sin,
                Op::Cos,         Op::Cast,         Op::Add,         Op::Sub,         Op::Mul,
                Op::Div,         Op::Rem,          Op::Min,         Op::Max,         Op::BitAnd,
                Op::BitOr,       Op::BitXor,       Op::Shl,         Op::Shr,         Op::Lt,
                Op::Le,          Op::Gt,           Op::Ge,          Op::Eq,          Op::Ne,
                Op::Select,      Op::Fma,          Op::Load,        Op::Store,       Op::LocalDecl,
                Op::LocalGet,    Op::LocalSet,     Op::TgArrayDecl, Op::Barrier,     Op::SimdSum,
                Op::SimdMax,     Op::SimdMin,      Op::ShuffleXor,  Op::ShuffleDown, Op::TgReduceSum,
                Op::TgReduceMax, Op::TgReduceMin,  Op::If,          Op::For,         Op::Loop,
                Op::Break,       Op::Continue,     Op::Return,      Op::Atomic,      Op::ScalarRef,
                Op::Pow,         Op::Sigmoid,      Op::Log1p,       Op::Expm1,       Op::IsNan,
                Op::IsInf,       Op::Bitcast,      Op::Exp2Ftz})
    EXPECT_TRUE(ops.count(op)) << "no generated kernel has " << ir::op_name(op);
  EXPECT_TRUE(if_else) << "no if with an else";
  EXPECT_TRUE(masked_load && masked_store) << "masked loads and stores";
  EXPECT_TRUE(scalar_param) << "scalar parameters";
  for (ir::MemSpace space : {ir::MemSpace::Device, ir::MemSpace::Threadgroup})
    for (ir::AtomicOp a : {ir::AtomicOp::Add, ir::AtomicOp::Min, ir::AtomicOp::Max, ir::AtomicOp::Exchange,
                           ir::AtomicOp::CompareExchange})
      EXPECT_TRUE(atomics.count({space, a})) << "no atomic " << ir::atomic_name(a) << " on "
                                             << (space == ir::MemSpace::Device ? "device" : "threadgroup") << " memory";
  for (size_t k = 0; k < kScalarTypeCount; ++k) {
    const auto t = static_cast<ScalarType>(k);
    EXPECT_TRUE(t == ScalarType::boolean || memory_types.count(t)) << "no tensor of " << type_name(t);
  }
  const ScalarType all[] = {ScalarType::u32,  ScalarType::i32,     ScalarType::f32, ScalarType::f16,
                            ScalarType::bf16, ScalarType::boolean, ScalarType::u64, ScalarType::i64};
  for (ScalarType from : all) {
    for (ScalarType to : all) {
      if (from != to && !(from == ScalarType::boolean && is_float(to))) {
        EXPECT_TRUE(casts.count({from, to})) << "no cast from " << type_name(from) << " to " << type_name(to);
      }
    }
  }
  EXPECT_GE(reduced.size(), 4u) << "threadgroup sums over most types";
  EXPECT_TRUE(lowered_ops.count(Op::LoadVector)) << "the full pipeline vectorizes some generated loads";
  EXPECT_TRUE(lowered_ops.count(Op::StoreVector)) << "and some stores";
}

TEST(Fuzz, SameSeedSameKernel) {
  EXPECT_EQ(ir::print(trace_program(generate(7))), ir::print(trace_program(generate(7))));
  EXPECT_NE(ir::print(trace_program(generate(7))), ir::print(trace_program(generate(8))));
  EXPECT_EQ(make_inputs(generate(7)), make_inputs(generate(7)));
}

TEST(Fuzz, EngineAgreesWithItselfAcrossThePipeline) {
  const Side full = engine_full_pipeline(), minimal = engine_minimal_lowering();
  for (uint64_t seed = 1000; seed < 1100; ++seed) {
    Verdict v = judge(generate(seed), full, minimal, false);
    EXPECT_EQ(v.kind, Verdict::Kind::Agree) << "seed " << seed << ": " << v.detail;
  }
}

// The full pipeline with a planted bug: every integer subtraction becomes an addition.
Side broken_pipeline() {
  return {"broken pipeline", [](const Program& p, const ir::Function& traced, const std::vector<Bytes>& inputs) {
            ir::Function f = traced;
            ir::for_each_inst(f.body, [](ir::Inst& in) {
              if (in.op == Op::Sub && is_integer(in.type)) in.op = Op::Add;
            });
            return engine_minimal_lowering().run(p, f, inputs);
          }};
}

TEST(Fuzz, FindsAndShrinksAPlantedBug) {
  const Side broken = broken_pipeline(), minimal = engine_minimal_lowering();
  std::optional<Program> failing;
  for (uint64_t seed = 1; seed < 200 && !failing; ++seed) {
    Program p = generate(seed);
    if (judge(p, broken, minimal, false).kind == Verdict::Kind::Mismatch) failing = p;
  }
  ASSERT_TRUE(failing) << "200 kernels and no integer subtraction that matters";
  int tries = 0;
  Program small = shrink(
      *failing, [&](const Program& q) { return judge(q, broken, minimal, false).kind == Verdict::Kind::Mismatch; }, {},
      &tries);
  EXPECT_LE(count_stmts(small.body), 6u) << "from " << count_stmts(failing->body) << " statements";
  EXPECT_EQ(small.geometry.grid, (std::array<uint32_t, 3>{1, 1, 1}));
  Verdict v = judge(small, broken, minimal, false);
  EXPECT_EQ(v.kind, Verdict::Kind::Mismatch);
  EXPECT_NE(v.traced.find(" sub "), std::string::npos) << v.traced;

  // The command's loop reports it, with a reproducer, and counts it.
  std::FILE* out = std::tmpfile();
  FuzzOptions o;
  o.seed = failing->seed;
  o.max_kernels = 1;
  FuzzReport r = fuzz(o, broken, minimal, out);
  std::rewind(out);
  std::string text(1 << 16, '\0');
  text.resize(std::fread(text.data(), 1, text.size(), out));
  std::fclose(out);
  EXPECT_EQ(r.kernels, 1u);
  EXPECT_EQ(r.mismatches, 1u);
  for (const std::string& part :
       {std::string("MISMATCH"), fmt::format("mtile fuzz --seed {} --max-kernels 1", o.seed), std::string("traced IR:"),
        std::string("results differ at "), std::string("broken pipeline wrote"), std::string("1 mismatches")})
    EXPECT_NE(text.find(part), std::string::npos) << part << " is not in:\n" << text;
}

TEST(Fuzz, EveryShrinkingStepTraces) {
  std::mt19937_64 rng(5);
  for (uint64_t seed = 1; seed <= 15; ++seed) {
    int traced = 0;
    Program small = shrink(generate(seed), [&](const Program& q) {
      EXPECT_NO_THROW(trace_program(q)) << "seed " << seed;
      ++traced;
      return rng() % 2 == 0;
    });
    EXPECT_GT(traced, 0);
    EXPECT_NO_THROW(trace_program(small));
  }
}

TEST(Fuzz, ComparesNaNsAsEqualAndInexactSlotsWithinTolerance) {
  Program p;
  p.geometry = {{1, 1, 1}, 1};
  p.outputs = {{"out", ScalarType::f32, 2, 0, {false, true}}};
  const Side a{"a", {}}, b{"b", {}};
  auto outcome = [](uint32_t exact, uint32_t inexact) {
    Outcome o;
    o.tensors = {Bytes(8)};
    std::memcpy(o.tensors[0].data(), &exact, 4);
    std::memcpy(o.tensors[0].data() + 4, &inexact, 4);
    return o;
  };
  const uint32_t one = float_bits(1.0f);
  EXPECT_FALSE(first_difference(p, a, outcome(0x7fc00000u, one), b, outcome(0xffc00001u, one), true))
      << "two NaNs of different bits agree";
  auto d = first_difference(p, a, outcome(one, one), b, outcome(one + 1, one), true);
  ASSERT_TRUE(d) << "an exact slot 1 ulp off";
  EXPECT_EQ(d->index, 0u);
  EXPECT_NE(d->text.find("out[0] (thread 0, slot 0)"), std::string::npos) << d->text;
  EXPECT_FALSE(first_difference(p, a, outcome(one, one), b, outcome(one, one + 3), true)) << "inexact, 3 ulp";
  EXPECT_TRUE(first_difference(p, a, outcome(one, one), b, outcome(one, one + 4), true)) << "inexact, 4 ulp";
  EXPECT_TRUE(first_difference(p, a, outcome(one, one), b, outcome(one, one + 1), false)) << "not tolerant";
  EXPECT_TRUE(first_difference(p, a, outcome(one, one), b, outcome(one, 0x7fc00000u), true)) << "NaN against 1";
}

}  // namespace
}  // namespace mtile::fuzz
