// The fuzzing loop and its reports; see fuzz.hpp.
#include "fuzz/fuzz.hpp"

#include <fmt/format.h>

#include <chrono>

#include "fuzz/shrink.hpp"

namespace mtile::fuzz {
namespace {

using VK = Verdict::Kind;

bool is_mismatch(VK k) {
  return k == VK::Mismatch || k == VK::OnlyAFailed || k == VK::OnlyBFailed;
}

std::string indent(const std::string& text, const char* pad = "    ") {
  std::string out = pad;
  for (char c : text) {
    out += c;
    if (c == '\n') out += pad;
  }
  while (!out.empty() && (out.back() == ' ')) out.pop_back();
  return out;
}

std::string elements(const TensorDesc& t, const Bytes& data, uint64_t from, uint64_t n, uint64_t count) {
  std::string s;
  for (uint64_t e = from; e < from + n && e < count; ++e)
    s += fmt::format("{}{}", s.empty() ? "" : ", ", element_text(t.elem, data, e));
  return "[" + s + "]";
}

void print_failure(std::FILE* out, int number, const FuzzOptions& o, const Program& original, const Program& p,
                   const Verdict& v, const Side& a, const Side& b, int tries) {
  const char* what =
      v.kind == VK::TraceFailed || v.kind == VK::BothFailed ? "INVALID KERNEL (a fuzzer bug)" : "MISMATCH";
  fmt::print(out, "\n== fuzz failure {}: {} in the kernel of seed {}\n{}\n", number, what, p.seed, v.detail);
  fmt::print(out, "  reproduce: mtile fuzz --seed {} --max-kernels 1{}{}\n", p.seed,
             o.reproduce_flags.empty() ? "" : " ", o.reproduce_flags);
  if (tries > 0)
    fmt::print(out, "  shrunk from {} statements to {} ({} programs tried)\n", count_stmts(original.body),
               count_stmts(p.body), tries);
  const Geometry& g = p.geometry;
  std::string cs;
  for (size_t c = 0; c < p.constexprs.size(); ++c)
    cs += fmt::format("{}{} = {}{}", cs.empty() ? "" : ", ", p.constexprs[c].name, p.constexpr_value(c),
                      p.constexprs[c].bake ? " (baked)" : "");
  for (const ScalarDesc& s : p.scalars)
    cs += fmt::format(
        "{}{} = {} (scalar {})", cs.empty() ? "" : ", ", s.name,
        element_text(is_float(s.type) ? ScalarType::f32 : s.type,
                     Bytes(reinterpret_cast<const uint8_t*>(&s.bits), reinterpret_cast<const uint8_t*>(&s.bits) + 8),
                     0),
        type_name(s.type));
  fmt::print(out, "  grid {}x{}x{}, tpg {}; constexprs and scalars: {}\n", g.grid[0], g.grid[1], g.grid[2], g.tpg, cs);
  if (!v.traced.empty()) fmt::print(out, "  traced IR:\n{}\n", indent(v.traced));
  if (!v.a.lowered.empty()) fmt::print(out, "  IR run by the {}:\n{}\n", a.name, indent(v.a.lowered));
  if (!v.b.lowered.empty()) fmt::print(out, "  IR run by the {}:\n{}\n", b.name, indent(v.b.lowered));
  const std::vector<Bytes> inputs = make_inputs(p);
  int64_t thread = -1;
  if (v.difference) thread = static_cast<int64_t>(v.difference->index / p.tensor(v.difference->param)->stride);
  for (size_t i = 0; i < p.inputs.size() + p.has_inout + p.has_acc; ++i) {
    const TensorDesc& t = *p.tensor(static_cast<int>(i));
    uint64_t count = p.count(t);
    fmt::print(out, "  input {} ({} x {}): first {}", t.name, type_name(t.elem), count,
               elements(t, inputs[i], 0, 8, count));
    if (thread >= 0)
      fmt::print(out, "; thread {}'s own {}", thread, elements(t, inputs[i], thread * t.stride, t.stride, count));
    fmt::print(out, "\n");
  }
  if (v.difference) {
    const Difference& d = *v.difference;
    const TensorDesc& t = *p.tensor(d.param);
    uint64_t count = p.count(t), row = d.index / t.stride * t.stride;
    fmt::print(out, "  {} wrote {}[{}..]: {}\n", a.name, t.name, row,
               elements(t, v.a.tensors[d.param], row, t.stride, count));
    fmt::print(out, "  {} wrote {}[{}..]: {}\n", b.name, t.name, row,
               elements(t, v.b.tensors[d.param], row, t.stride, count));
  }
  std::fflush(out);
}

}  // namespace

Verdict judge(const Program& p, const Side& a, const Side& b, bool tolerant) {
  Verdict v;
  ir::Function traced;
  try {
    traced = trace_program(p);
  } catch (const std::exception& e) {
    v.kind = VK::TraceFailed;
    v.detail = fmt::format("the DSL rejected the generated kernel: {}", e.what());
    return v;
  }
  v.traced = ir::print(traced);
  ir::for_each_inst(traced.body, [&](const ir::Inst&) { ++v.instructions; });
  const std::vector<Bytes> inputs = make_inputs(p);
  v.a = a.run(p, traced, inputs);
  v.b = b.run(p, traced, inputs);
  const bool a_failed = !v.a.error.empty(), b_failed = !v.b.error.empty();
  if (a_failed && b_failed) {
    v.kind = VK::BothFailed;
    v.detail = fmt::format("both failed: the {}: {}\nthe {}: {}", a.name, v.a.error, b.name, v.b.error);
  } else if (a_failed || b_failed) {
    v.kind = a_failed ? VK::OnlyAFailed : VK::OnlyBFailed;
    v.detail = fmt::format("only the {} failed: {}", a_failed ? a.name : b.name, a_failed ? v.a.error : v.b.error);
  } else if ((v.difference = first_difference(p, a, v.a, b, v.b, tolerant))) {
    v.kind = VK::Mismatch;
    v.detail = "results differ at " + v.difference->text;
  }
  return v;
}

FuzzReport fuzz(const FuzzOptions& o, const Side& a, const Side& b, std::FILE* out) {
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  FuzzReport r;
  int failures = 0;
  for (uint64_t i = 0;
       (!o.max_kernels || i < o.max_kernels) && (o.seconds <= 0 || elapsed() < o.seconds) && failures < o.max_failures;
       ++i) {
    Program p = generate(o.seed + i, o.gen);
    Verdict v = judge(p, a, b, o.tolerant);
    ++r.kernels;
    r.instructions += v.instructions;
    if (o.show)
      fmt::print(out, "-- kernel of seed {}: {}\n{}\n  run by the {}:\n{}\n", p.seed,
                 v.kind == VK::Agree ? "agree" : v.detail, indent(v.traced), a.name, indent(v.a.lowered));
    if (v.kind == VK::Agree) continue;
    ++failures;
    if (!is_mismatch(v.kind)) {
      ++r.invalid;
      print_failure(out, failures, o, p, p, v, a, b, 0);
      continue;
    }
    ++r.mismatches;
    Program small = p;
    int tries = 0;
    if (o.shrink) {
      const VK kind = v.kind;
      small = shrink(
          p, [&](const Program& q) { return judge(q, a, b, o.tolerant).kind == kind; }, {}, &tries);
      v = judge(small, a, b, o.tolerant);
    }
    print_failure(out, failures, o, p, small, v, a, b, tries);
  }
  r.seconds = elapsed();
  fmt::print(out,
             "fuzz: {} kernels ({} IR instructions traced) in {:.1f} s ({:.0f} kernels/s), {} mismatches, {} invalid "
             "kernels; {} against {}\n",
             r.kernels, r.instructions, r.seconds, r.seconds > 0 ? r.kernels / r.seconds : 0.0, r.mismatches, r.invalid,
             a.name, b.name);
  return r;
}

}  // namespace mtile::fuzz
