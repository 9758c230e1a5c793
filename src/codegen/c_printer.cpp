// The shared C-family printer; see c_printer.hpp.
//
// Every operand a statement reads is an atom (a name, or a literal that is parenthesised when
// negative) and every statement's right-hand side is one operation, so no precedence rules are
// needed beyond parenthesising templates' own operands.
#include "codegen/c_printer.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <unordered_map>
#include <unordered_set>

#include "codegen/tile_maps.hpp"

namespace mtile::codegen {
namespace {

using ir::Id;
using ir::Inst;
using ir::Op;
using ST = ScalarType;

// An identifier, or members of one: `threadIdx.x`, `mt_tg_pos.x`.
bool is_name(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.') return false;
  return true;
}

bool is_identifier(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

// Words a parameter may not be called in either language; identifiers the dialect's templates
// use are added per dialect.
const std::set<std::string>& keywords() {
  static const std::set<std::string> k = {
      "alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand", "bitor", "bool", "break", "case", "catch", "char",
      "class", "compl", "concept", "const", "consteval", "constexpr", "constinit", "const_cast", "continue", "decltype",
      "default", "delete", "do", "double", "dynamic_cast", "else", "enum", "explicit", "export", "extern", "false",
      "float", "for", "friend", "goto", "if", "inline", "int", "long", "mutable", "namespace", "new", "noexcept", "not",
      "not_eq", "nullptr", "operator", "or", "or_eq", "private", "protected", "public", "register", "reinterpret_cast",
      "requires", "return", "short", "signed", "sizeof", "static", "static_assert", "static_cast", "struct", "switch",
      "template", "this", "thread_local", "throw", "true", "try", "typedef", "typeid", "typename", "union", "unsigned",
      "using", "virtual", "void", "volatile", "wchar_t", "while", "xor", "xor_eq",
      // CUDA and Metal.
      "blockIdx", "threadIdx", "blockDim", "gridDim", "warpSize", "kernel", "vertex", "fragment", "device", "constant",
      "threadgroup", "thread", "half", "bfloat", "uint", "ushort", "uchar", "metal", "precise", "fast"};
  return k;
}

// Adds the names a spelling refers to (not members after '.', not number suffixes).
void add_identifiers(const std::string& text, std::set<std::string>& out) {
  auto word = [&](size_t i) { return std::isalnum(static_cast<unsigned char>(text[i])) || text[i] == '_'; };
  for (size_t i = 0; i < text.size();) {
    if (!word(i)) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() && word(j)) ++j;
    if (!std::isdigit(static_cast<unsigned char>(text[i])) && (i == 0 || text[i - 1] != '.'))
      out.insert(text.substr(i, j - i));
    i = j;
  }
}

// Identifiers the generated code must not use for a parameter or a named value: keywords, and
// the names the dialect's spellings refer to.
std::set<std::string> reserved_names(const Dialect& d) {
  std::set<std::string> reserved = keywords();
  auto add_table = [&](const TypeTable& t) {
    for (const auto& s : t) add_identifiers(s, reserved);
  };
  for (const TypeTable* t : {&d.value_type, &d.storage_type, &d.load, &d.store, &d.round}) add_table(*t);
  for (const auto& [op, s] : d.ops) add_identifiers(s, reserved);
  for (const auto* hinted : {&d.hinted_load, &d.hinted_store})
    for (const auto& [hint, s] : *hinted) add_identifiers(s, reserved);
  for (const std::string* s : {&d.f32_to_u32, &d.f32_to_i32, &d.float_from_bits, &d.shuffle_lane, &d.simd_reduce,
                               &d.vector_load, &d.vector_store, &d.mma_type})
    add_identifiers(*s, reserved);
  // Packed types ("uint2") and their constructors ("make_uint2") are names too.
  for (const auto& stem : d.vector_stem)
    if (!stem.empty())
      for (const char* words : {"2", "4"})
        add_identifiers(fmt::format(fmt::runtime(d.vector_make), stem + words, ""), reserved);
  return reserved;
}

// A name the printer itself makes (v12, l3, tg4), or one C or the dialect keeps for itself.
bool clashes(const std::string& n, const std::set<std::string>& reserved) {
  bool generated = n.size() > 1 && (n[0] == 'v' || n[0] == 'l') && std::isdigit(static_cast<unsigned char>(n[1]));
  generated |= n.rfind("tg", 0) == 0 && n.size() > 2 && std::isdigit(static_cast<unsigned char>(n[2]));
  return generated || reserved.count(n) || n[0] == '_' || n.rfind("mt_", 0) == 0;
}

// Parameter names as the source shows them, unless they could clash (a keyword, a generated
// name, a reserved identifier): those get a "p_" prefix. Adds them to `taken`.
std::vector<std::string> param_names(const ir::Function& f, const std::set<std::string>& reserved,
                                     std::set<std::string>& taken) {
  std::vector<std::string> names;
  for (const ir::Param& p : f.params) {
    std::string n = p.name;
    if (!is_identifier(n)) {
      std::string clean;
      for (char c : n) clean += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      n = "p_" + clean;
    } else if (clashes(n, reserved)) {
      n = "p_" + n;
    }
    while (taken.count(n) || reserved.count(n)) n += "_";
    taken.insert(n);
    names.push_back(n);
  }
  return names;
}

// The names the kernel's author gave values and locals (named(), named Vars): as written where
// the name is used once and clashes with nothing, else "<name>_<id>".
std::unordered_map<ir::Id, std::string> value_names(const ir::Function& f, const std::set<std::string>& reserved,
                                                    std::set<std::string>& taken) {
  std::map<std::string, int> count;
  ir::for_each_inst(f.body, [&](const ir::Inst& in) {
    if (in.result != ir::kNoId && is_identifier(in.name)) ++count[in.name];
  });
  std::unordered_map<ir::Id, std::string> out;
  ir::for_each_inst(f.body, [&](const ir::Inst& in) {
    if (in.result == ir::kNoId || !is_identifier(in.name)) return;
    std::string n = in.name;
    if (count[n] > 1 || clashes(n, reserved) || taken.count(n)) n = fmt::format("{}_{}", in.name, in.result);
    while (taken.count(n) || reserved.count(n)) n += "_";
    taken.insert(n);
    out[in.result] = n;
  });
  return out;
}

// C literals, identical in CUDA and MSL; negative ones are parenthesised so they stay atoms.
std::string literal(ST t, uint64_t bits, const Dialect& d) {
  uint32_t u = static_cast<uint32_t>(bits);
  switch (t) {
    case ST::boolean: return bits ? "true" : "false";
    case ST::u32: return fmt::format("{}u", u);
    case ST::u64: return fmt::format("{}ull", bits);
    case ST::i64: {
      auto v = static_cast<int64_t>(bits);
      if (v == INT64_MIN) return "(-9223372036854775807ll - 1)";
      return v < 0 ? fmt::format("({}ll)", v) : fmt::format("{}ll", v);
    }
    case ST::i32: {
      auto v = static_cast<int32_t>(u);
      if (v == INT32_MIN) return "(-2147483647 - 1)";
      return v < 0 ? fmt::format("({})", v) : fmt::format("{}", v);
    }
    default: {
      // f16/bf16 constants hold the float bits of their rounded value (ir::const_bits).
      float v = bits_float(u);
      if (!std::isfinite(v)) return fmt::format(fmt::runtime(d.float_from_bits), fmt::format("0x{:08x}u", u));
      std::string s = fmt::format("{}", v);  // shortest text that reads back as the same float
      if (s.find_first_of(".e") == std::string::npos) s += ".0";
      return std::signbit(v) ? "(" + s + "f)" : s + "f";
    }
  }
}

const char* reduce_name(Op op) {
  return op == Op::SimdSum ? "sum" : op == Op::SimdMax ? "max" : "min";
}

// f16/bf16 results of these ops are rounded to their type; the others are exact on values that
// already are of the type (neg, abs, min, max, select, shuffles, loads).
bool rounds(Op op) {
  static const std::set<Op> arithmetic = {Op::Add, Op::Sub, Op::Mul, Op::Div, Op::Rem, Op::Fma, Op::Pow};
  return ir::is_float_math(op) || arithmetic.count(op) > 0;
}

// An array's bytes rounded up to 16, where the next one starts.
uint64_t padded_bytes(const Inst& array) {
  return (array.bits * storage_bytes(array.type) + 15) / 16 * 16;
}

// Arrays that a swizzled mma_async reads or a copy_tile writes: 1024-byte aligned, as the swizzle
// is one of addresses (and a tile copy's destination must be at least 128-byte aligned).
std::set<Id> atom_aligned_arrays(const ir::Function& f) {
  std::set<Id> out;
  ir::for_each_inst(f.body, [&](const Inst& in) {
    if ((in.op == Op::MmaAsync && ir::mma_async_swizzle(in)) || in.op == Op::CopyTile) out.insert(in.param);
  });
  return out;
}
uint64_t array_alignment(const std::set<Id>& atom_aligned, const Inst& array) {
  return atom_aligned.count(array.result) ? 1024 : 16;
}

class Printer {
 public:
  Printer(const ir::Function& f, const Dialect& d) : f_(f), d_(d) {}

  std::string run() {
    std::set<std::string> reserved = reserved_names(d_), taken;
    uses_.param_names = param_names(f_, reserved, taken);
    named_ = value_names(f_, reserved, taken);
    uses_.constexpr_read.assign(f_.params.size(), false);
    scan(f_.body);
    int position = 0;
    order(f_.body, position);
    drop_unprinted_values();
    out_ = d_.head(f_, uses_) + " {\n";
    // MSL allows threadgroup arrays only at kernel scope; CUDA gets the same layout.
    const std::set<Id> atom_aligned = atom_aligned_arrays(f_);
    if (d_.static_tg_bytes && threadgroup_layout_bytes(f_) > d_.static_tg_bytes) {
      line(1, spell(d_.tg_dynamic_block, atom_aligned.empty() ? 16 : 1024));
      uint64_t offset = 0;
      for (const Inst* a : arrays_) {
        const uint64_t align = array_alignment(atom_aligned, *a);
        offset = (offset + align - 1) / align * align;
        line(1, spell(d_.tg_dynamic_array, at(d_.storage_type, a->type), name(a->result), offset));
        offset += padded_bytes(*a);
      }
    } else {
      for (const Inst* a : arrays_)
        line(1, fmt::format(fmt::runtime(d_.tg_array), at(d_.storage_type, a->type), name(a->result), a->bits,
                            array_alignment(atom_aligned, *a)));
    }
    if (!d_.entry_statement.empty()) line(1, d_.entry_statement);
    block(f_.body, 1);
    if (!a_words_.empty())
      fail(*a_words_.front().mma, "A from registers is never waited for: an mma_wait(0) must follow it");
    out_ += "}\n";
    return out_;
  }

 private:
  template <class... A>
  [[noreturn]] void fail(const Inst& in, fmt::format_string<A...> fs, A&&... a) const {
    std::string loc = in.loc.str();
    throw Error(fmt::format("codegen: kernel {}<{}>: '{}'{}: {}", f_.name, type_name(f_.dtype), ir::op_name(in.op),
                            loc.empty() ? "" : " (" + loc + ")", fmt::format(fs, std::forward<A>(a)...)));
  }

  // Names every id, records constants, builtins, constexprs and arrays, rejects what must be gone.
  void scan(const ir::Block& b) {
    for (const Inst& in : b.insts) {
      auto name_or = [&](const char* prefix) {
        auto it = named_.find(in.result);
        return it != named_.end() ? it->second : fmt::format("{}{}", prefix, in.result);
      };
      switch (in.op) {
        case Op::Call:
        case Op::TgReduceSum:
        case Op::TgReduceMax:
        case Op::TgReduceMin: fail(in, "not lowered; run passes::run_pipeline before codegen");
        case Op::Const:
          expr_[in.result] = literal(in.type, in.bits, d_);
          consts_[in.result] = &in;
          break;
        case Op::ConstexprRef:
        case Op::ScalarRef:
          expr_[in.result] = uses_.param_names.at(in.param);
          uses_.constexpr_read.at(in.param) = true;
          break;
        case Op::LocalDecl: expr_[in.result] = name_or("l"); break;
        case Op::TgArrayDecl:
          expr_[in.result] = name_or("tg");
          arrays_.push_back(&in);
          array_type_[in.result] = in.type;
          break;
        case Op::LoadVector:
          vectors_[in.result] = &in;
          expr_[in.result] = name_or("v");
          break;
        case Op::LoadMatrix:
          vectors_[in.result] = &in;
          uses_.builtins.insert(Op::SimdLane);  // Metal's lowering reads other lanes' indices
          expr_[in.result] = name_or("v");
          break;
        case Op::Extract:
          extracts_[in.result] = &in;
          expr_[in.result] = name_or("v");
          break;
        case Op::MmaAsync:
        case Op::MmaWait:
          accumulators_.insert(in.result);
          expr_[in.result] = name_or("v");
          break;
        case Op::Mma:
          mma_.insert(in.result);
          uses_.builtins.insert(Op::SimdLane);  // Metal's lowering moves elements between lanes
          expr_[in.result] = name_or("v");
          break;
        case Op::ShuffleXor:
        case Op::ShuffleDown:
          if (!constant(in.args[1])) uses_.builtins.insert(Op::SimdLane);  // the lane is computed
          [[fallthrough]];
        default:
          if (ir::is_builtin(in.op)) uses_.builtins.insert(in.op);
          if (in.result != ir::kNoId) expr_[in.result] = name_or("v");
      }
      if (in.result != ir::kNoId) type_[in.result] = in.type;
      uses_.ops.insert(in.op);
      bool access = in.op == Op::Load || in.op == Op::Store || in.op == Op::LoadVector || in.op == Op::StoreVector;
      if (access && in.bits) uses_.cache_hints = true;
      for (const ir::Block& sub : in.blocks) scan(sub);
    }
  }

  const std::string& name(Id id) const { return expr_.at(id); }
  const std::string& arg(const Inst& in, size_t i) const { return name(in.args.at(i)); }
  ST arg_type(const Inst& in, size_t i) const { return type_.at(in.args.at(i)); }
  const Inst* constant(Id id) const {
    auto it = consts_.find(id);
    return it == consts_.end() ? nullptr : it->second;
  }
  const std::string& op(const Inst& in, Op o) const {
    auto it = d_.ops.find(o);
    if (it == d_.ops.end()) fail(in, "the dialect has no spelling for '{}'", ir::op_name(o));
    return it->second;
  }
  template <class... A>
  std::string spell(const std::string& tmpl, const A&... a) const {
    return fmt::format(fmt::runtime(tmpl), a...);
  }
  const std::string& vtype(ST t) const { return at(d_.value_type, t); }

  void line(int depth, const std::string& s) {
    out_.append(2 * depth, ' ');
    out_ += s;
    out_ += '\n';
  }

  // Program order of every instruction, and for each value its uses; for each local the
  // positions that assign it. For the copies the printer leaves out (below).
  void order(const ir::Block& b, int& position) {
    for (const Inst& in : b.insts) {
      int here = position++;
      for (size_t k = 0; k < in.args.size(); ++k) {
        // copy_tile's view (dims, strides, box) is in its tensor map, not in the printed call.
        if (in.op == Op::CopyTile && k >= ir::copy_tile_dim_arg(in, 0)) continue;
        const Id a = in.args[k];
        ++use_count_[a];
        last_use_[a] = std::max(last_use_[a], here);
      }
      if (in.op == Op::LocalSet) local_sets_[in.param].push_back(here);
      if (in.result != ir::kNoId) position_[in.result] = here;
      for (const ir::Block& sub : in.blocks) order(sub, position);
      // A value from before a loop that the loop uses is used as long as the loop runs (values
      // made inside are made again each iteration).
      if (in.op == Op::For)
        for (auto& [id, last] : last_use_)
          if (last > here && last < position && position_.count(id) && position_[id] < here) last = position;
    }
  }

  // Pure values nothing printed uses (those only a copy_tile's view used, and what only they
  // used) are left out: no unused variables for the compiler to warn about.
  void drop_unprinted_values() {
    std::vector<const Inst*> pure;
    ir::for_each_inst(f_.body, [&](const Inst& in) {
      if (in.result != ir::kNoId && ir::is_pure(in.op)) pure.push_back(&in);
    });
    for (bool changed = true; changed;) {
      changed = false;
      for (const Inst* in : pure)
        if (use_count_[in->result] == 0 && unprinted_.insert(in->result).second) {
          for (Id a : in->args) --use_count_[a];
          changed = true;
        }
    }
  }

  // A read of a local that no assignment can change before its last use prints as the local
  // itself: no `float v18 = acc;` line.
  bool reads_local_in_place(const Inst& get) const {
    auto sets = local_sets_.find(get.param);
    if (sets == local_sets_.end()) return true;
    auto last = last_use_.find(get.result);
    int from = position_.at(get.result), to = last == last_use_.end() ? from : last->second;
    for (int p : sets->second)
      if (p > from && p <= to) return false;
    return true;
  }

  void block(const ir::Block& b, int depth) {
    open_blocks_.push_back(&b);
    struct Close {
      std::vector<const ir::Block*>& open;
      ~Close() { open.pop_back(); }
    } close{open_blocks_};
    for (size_t i = 0; i < b.insts.size(); ++i) {
      const Inst& in = b.insts[i];
      // A value whose one use is the next statement's initial or new value of a local is written
      // there: no `float acc = v12;` copy line.
      const Inst* next = i + 1 < b.insts.size() ? &b.insts[i + 1] : nullptr;
      if (in.result != ir::kNoId && unprinted_.count(in.result)) continue;
      if (next && inlinable(in) && use_count_[in.result] == 1 && stores_value(*next, in.result)) {
        expr_[in.result] = value(in);  // the whole right-hand side there: no parentheses needed
        continue;
      }
      inst(in, depth);
    }
  }

  static bool stores_value(const Inst& in, Id v) {
    return (in.op == Op::LocalDecl || in.op == Op::LocalSet) && in.args.at(0) == v;
  }
  // Values the printer may write as an expression in place of a statement.
  static bool inlinable(const Inst& in) {
    if (in.result == ir::kNoId || in.op == Op::LoadVector || in.op == Op::LocalGet) return false;
    // Already written where used (a scalar parameter's read too: found by mtile fuzz, where one was
    // a local's initial value).
    if (in.op == Op::Const || in.op == Op::ConstexprRef || in.op == Op::ScalarRef) return false;
    if (in.op == Op::ShuffleDown || in.op == Op::ShuffleXor) return false;  // printed with lane arithmetic
    return ir::is_pure(in.op) || in.op == Op::Load;
  }

  void inst(const Inst& in, int depth) {
    switch (in.op) {
      case Op::Const:
      case Op::ConstexprRef:
      case Op::ScalarRef:
      case Op::TgArrayDecl: return;  // inlined where used, or hoisted
      case Op::Store: {
        std::string stored = spell(at(d_.store, memory_type(in)), arg(in, 1));
        const std::string* h = hinted(in, true);
        std::string st = h ? spell(*h, at(d_.storage_type, memory_type(in)), pointer(in), stored) + ";"
                           : fmt::format("{} = {};", element(in), stored);
        line(depth, in.args.size() == 3 ? fmt::format("if ({}) {}", arg(in, 2), st) : st);  // masked: no access
        return;
      }
      case Op::Loop:
        line(depth, "while (true) {");
        block(in.blocks.at(0), depth + 1);
        line(depth, "}");
        return;
      case Op::Break: line(depth, "break;"); return;
      case Op::Continue: line(depth, "continue;"); return;
      case Op::Return: line(depth, "return;"); return;
      case Op::LoadVector: load_vector(in, depth); return;
      case Op::StoreVector: store_vector(in, depth); return;
      case Op::LoadMatrix:
        line(depth, fmt::format("mt_matrix{} {} = {};", in.lanes / 2, name(in.result),
                                spell(op(in, Op::LoadMatrix), in.lanes / 2, in.bits ? "_trans" : "", name(in.param),
                                      arg(in, 0), op(in, Op::SimdLane))));
        return;
      case Op::Mma: {
        std::vector<std::string> operands;
        if (d_.mma_pack.empty()) {
          for (size_t i = 0; i < in.args.size(); ++i) operands.push_back(arg(in, i));
        } else {  // A's and B's pairs as words, C's 4 floats
          for (size_t i = 0; i < 12; i += 2) operands.push_back(mma_word(in, i));
          for (size_t i = 12; i < 16; ++i) operands.push_back(arg(in, i));
        }
        line(depth, fmt::format("{} {} = {};", d_.mma_type, name(in.result),
                                spell(op(in, Op::Mma), type_name(arg_type(in, 0)),
                                      fmt::format("{}", fmt::join(operands, ", ")), op(in, Op::SimdLane))));
        return;
      }
      case Op::MmaAsync: {
        require_async_mma(in);
        const size_t b_arg = ir::mma_async_b_arg(in);
        line(depth, fmt::format("{} {}[{}] = {{{}}};", vtype(in.type), name(in.result), in.lanes,
                                args_from(in, ir::mma_async_c_arg(in))));
        // A: its first index and strides, or its 8 elements from registers as 4 words, each a named
        // local that the waits after it hold (wgmma reads them until its group is done).
        std::vector<std::string> a;
        for (size_t i = 0; i < b_arg; i += ir::mma_async_a_registers(in) ? 2 : 1) {
          if (!ir::mma_async_a_registers(in)) {
            a.push_back(arg(in, i));
            continue;
          }
          a.push_back(fmt::format("{}_a{}", name(in.result), i / 2));
          line(depth, fmt::format("{} {} = {};", at(d_.storage_type, ST::u32), a.back(), mma_word(in, i)));
          a_words_.push_back({a.back(), open_blocks_.back(), &in});
        }
        line(depth, d_.mma_async(name(in.result), ir::mma_async_n(in), ir::mma_async_swizzle(in),
                                 ir::mma_async_b_kn(in), array_type_.at(in.param), name(in.param), a,
                                 {arg(in, b_arg), arg(in, b_arg + 1), arg(in, b_arg + 2)}));
        return;
      }
      case Op::MmaFence:
        require_async_mma(in);
        line(depth, op(in, in.op) + ";");
        return;
      case Op::MmaWait:
        require_async_mma(in);
        // The copy and the empty asm after the wait keep every read of the accumulator below it.
        line(depth, spell(op(in, in.op), in.bits) + ";");
        line(depth, fmt::format("{} {}[{}] = {{{}}};", vtype(in.type), name(in.result), in.lanes, args_from(in, 0)));
        for (unsigned i = 0; i < in.lanes; ++i)
          line(depth, spell(d_.fence_operand, fmt::format("{}[{}]", name(in.result), i)) + ";");
        // A's words from registers stay live (unchanged) up to here; with every group done, they
        // are free. A wait outside the block that declared them can't hold them.
        for (const AWord& w : a_words_) {
          if (std::find(open_blocks_.begin(), open_blocks_.end(), w.block) == open_blocks_.end())
            fail(in,
                 "waits for an mma_async whose A is from registers ({}) outside the block it was issued in: wait in "
                 "that block",
                 w.mma->loc.str());
          line(depth, spell(d_.fence_operand, w.name) + ";");
        }
        if (in.bits == 0) a_words_.clear();
        return;
      case Op::MbarrierInit:
      case Op::MbarrierArrive:
      case Op::MbarrierWait: {
        if (!d_.ops.count(in.op))
          fail(in,
               "mbarriers (threadgroup barrier objects that count arrivals, CUDA sm_90) have no lowering for this "
               "target");
        const bool expects = in.op == Op::MbarrierArrive && in.bits == ir::kArriveExpectBytes;
        const std::string third = in.op != Op::MbarrierArrive ? arg(in, 1)
                                  : expects                   ? "_expect"
                                  : in.bits                   ? "_after_copies"
                                                              : "";
        line(depth, spell(op(in, in.op), name(in.param), arg(in, 0), third, expects ? ", " + arg(in, 1) : "") + ";");
        return;
      }
      case Op::CopyTile: {
        if (!d_.ops.count(in.op))
          fail(in, "copy_tile (the tensor memory accelerator of CUDA sm_90) has no lowering for this target");
        if (maps_.empty()) maps_ = tile_maps(f_);
        std::string coords;
        for (uint32_t d = 0; d < ir::copy_tile_rank(in); ++d)
          coords += (d ? ", " : "") + arg(in, ir::copy_tile_coord_arg(in, d));
        line(depth, spell(op(in, in.op), ir::copy_tile_rank(in), fmt::format("{}[{}]", name(in.param), arg(in, 0)),
                          tile_map_index(maps_, f_, in), coords, fmt::format("{}[{}]", name(in.args[1]), arg(in, 2))) +
                        ";");
        return;
      }
      case Op::CopyAsync: copy_async(in, depth); return;
      case Op::CopyAsyncCommit:
        if (!op(in, in.op).empty()) line(depth, op(in, in.op) + ";");
        return;
      case Op::CopyAsyncWait:
        if (!op(in, in.op).empty()) line(depth, spell(op(in, in.op), in.bits) + ";");
        return;
      case Op::LocalDecl: line(depth, fmt::format("{} {} = {};", vtype(in.type), name(in.result), arg(in, 0))); return;
      case Op::LocalSet: line(depth, fmt::format("{} = {};", name(in.param), arg(in, 0))); return;
      case Op::Barrier: line(depth, op(in, Op::Barrier) + ";"); return;
      case Op::Fence:  // system scope where the dialect has one (docs/IR.md)
        line(depth, (in.bits && !d_.system_fence.empty() ? d_.system_fence : op(in, Op::Fence)) + ";");
        return;
      case Op::If:
        line(depth, fmt::format("if ({}) {{", arg(in, 0)));
        block(in.blocks.at(0), depth + 1);
        if (!in.blocks.at(1).insts.empty()) {
          line(depth, "} else {");
          block(in.blocks[1], depth + 1);
        }
        line(depth, "}");
        return;
      case Op::For: {
        // The induction never wraps past 2^32 (docs/IR.md): a step that would pass the end ends the
        // loop. Where the end and the step are constants that cannot wrap, the plain form.
        const std::string& i = name(in.result);
        const Inst *end = constant(in.args[1]), *step = constant(in.args[2]);
        std::string next = end && step && (end->bits & 0xffffffffu) + (step->bits & 0xffffffffu) <= 0x100000000ull
                               ? fmt::format("{} += {}", i, arg(in, 2))
                               : fmt::format("{0} = {1} - {0} > {2} ? {0} + {2} : {1}", i, arg(in, 1), arg(in, 2));
        line(depth,
             fmt::format("for ({} {} = {}; {} < {}; {}) {{", vtype(ST::u32), i, arg(in, 0), i, arg(in, 1), next));
        block(in.blocks.at(0), depth + 1);
        line(depth, "}");
        return;
      }
      case Op::ShuffleDown:
        if (!constant(in.args[1])) {
          // Lanes whose source lane lane + d is past 31 keep their own value; the lane operand
          // may differ between lanes, so the source lane is computed and read by index.
          const std::string lane = op(in, Op::SimdLane), &dv = arg(in, 1);
          std::string src = fmt::format("{1} < 32u - {0} ? {0} + {1} : {0}", lane, dv);
          line(depth, fmt::format("{} {} = {};", vtype(in.type), name(in.result), shuffle(in, d_.shuffle_lane, src)));
          return;
        }
        break;
      default: break;
    }
    if (in.result == ir::kNoId) fail(in, "unsupported instruction");
    if (in.op == Op::LocalGet && reads_local_in_place(in)) {
      expr_[in.result] = name(in.param);
      return;
    }
    std::string rhs = value(in);
    if (in.op == Op::Atomic && use_count_[in.result] == 0) {  // the old value unread: a statement
      line(depth, rhs + ";");
      return;
    }
    bool copy = ir::is_builtin(in.op) && is_name(rhs);  // threadIdx.x, mt_tid
    for (Id a : in.args) copy |= rhs == name(a);        // a no-op in C: bf16 -> f32 widening, a shuffle of no lanes
    if (copy) {                                         // no `float v18 = v17;` line: uses read the expression itself
      expr_[in.result] = rhs;
      return;
    }
    line(depth, fmt::format("{} {} = {};", vtype(in.type), name(in.result), rhs));
  }

  // The element type of the memory an access reaches (the instruction's type is its value type).
  ST memory_type(const Inst& in) const {
    if (in.space == ir::MemSpace::Threadgroup) return array_type_.at(in.param);
    return f_.params.at(in.param).elem;
  }

  std::string element(const Inst& in) const {
    const std::string& base = in.space == ir::MemSpace::Threadgroup ? name(in.param) : uses_.param_names.at(in.param);
    return fmt::format("{}[{}]", base, arg(in, 0));
  }

  // The dialect's spelling of in's cache hint for a load (or store), null where it has none or
  // the access has no hint: then the access prints plain.
  const std::string* hinted(const Inst& in, bool store) const {
    if (ir::cache_hint(in) == ir::CacheHint::Normal) return nullptr;
    const auto& table = store ? d_.hinted_store : d_.hinted_load;
    auto it = table.find(ir::cache_hint(in));
    return it == table.end() ? nullptr : &it->second;
  }
  // The element a scalar Load reads, as an expression of its storage type.
  std::string loaded_element(const Inst& in) const {
    if (const std::string* h = hinted(in, false)) return spell(*h, at(d_.storage_type, memory_type(in)), pointer(in));
    return element(in);
  }

  std::string round(ST t, const std::string& e) const { return spell(at(d_.round, t), e); }

  // Vector memory; see Dialect::vector_stem. 16-bit elements are taken out of a word by a C cast
  // to their storage type, which must therefore be a 16-bit integer type.
  static bool halves(ST t) { return storage_bytes(t) == 2; }
  std::string packed_type(const Inst& in, unsigned lanes) const {
    ST t = in.type;
    const std::string& stem = at(d_.vector_stem, t);
    if (stem.empty())
      fail(in,
           "this language takes no {}-lane {} access: lower the kernel for its target (run_pipeline), "
           "which forms none",
           lanes, type_name(t));
    unsigned words = halves(t) ? lanes / 2 : lanes;
    if (words > 1) return fmt::format("{}{}", stem, words);
    return at(d_.storage_type, halves(t) ? ST::u32 : t);
  }
  std::string pointer(const Inst& in) const {
    const std::string& base = in.space == ir::MemSpace::Threadgroup ? name(in.param) : uses_.param_names.at(in.param);
    return fmt::format("{} + {}", base, arg(in, 0));
  }
  void load_vector(const Inst& in, int depth) {
    std::string packed = packed_type(in, in.lanes);
    const std::string* h = hinted(in, false);
    line(depth,
         fmt::format("{} {} = {};", packed, name(in.result), spell(h ? *h : d_.vector_load, packed, pointer(in))));
  }

  // An async copy: the dialect's (cp.async on CUDA), or `lanes` plain assignments.
  void copy_async(const Inst& in, int depth) {
    const std::string &dst = name(in.param), &src = uses_.param_names.at(static_cast<size_t>(in.bits));
    const std::string& tmpl = op(in, Op::CopyAsync);
    if (!tmpl.empty()) {
      line(depth, spell(tmpl, fmt::format("&{}[{}]", dst, arg(in, 0)), fmt::format("&{}[{}]", src, arg(in, 1)),
                        in.lanes * storage_bytes(in.type)) +
                      ";");
      return;
    }
    auto at_offset = [&](size_t a, unsigned k) { return k ? fmt::format("{} + {}u", arg(in, a), k) : arg(in, a); };
    for (unsigned k = 0; k < in.lanes; ++k)
      line(depth, fmt::format("{}[{}] = {}[{}];", dst, at_offset(0, k), src, at_offset(1, k)));
  }

  // Word `k` of a vector value (LoadVector, LoadMatrix): 32 bits, two 16-bit elements a word.
  std::string word(const Inst& v, unsigned k) const {
    const std::string& vec = name(v.result);
    if (v.op == Op::LoadMatrix) return fmt::format("{}.w[{}]", vec, k);
    unsigned words = halves(v.type) ? v.lanes / 2u : v.lanes;
    return words == 1 ? vec : fmt::format("{}.{}", vec, "xyzw"[k]);
  }

  void require_async_mma(const Inst& in) const {
    if (!d_.mma_async)
      fail(in,
           "mma_async (a warpgroup MMA over threadgroup memory, wgmma of sm_90a) has no lowering for this "
           "target: a kernel's rule picks mma where the target has no async_mma");
  }

  // Arguments first .. end as a comma-separated list.
  std::string args_from(const Inst& in, size_t first) const {
    std::string out;
    for (size_t i = first; i < in.args.size(); ++i) out += (i > first ? ", " : "") + arg(in, i);
    return out;
  }

  std::string extract(const Inst& in) const {
    auto lane = static_cast<unsigned>(in.bits);
    if (accumulators_.count(in.args[0])) return fmt::format("{}[{}]", name(in.args[0]), lane);
    if (mma_.count(in.args[0])) return fmt::format("{}.{}", name(in.args[0]), "xyzw"[lane]);  // f32 lanes of mma_type
    const Inst& v = *vectors_.at(in.args.at(0));
    if (!halves(in.type)) return spell(at(d_.load, in.type), word(v, lane));
    std::string w = word(v, lane / 2), bits = lane % 2 ? fmt::format("({} >> 16)", w) : w;
    return spell(at(d_.load, in.type), spell(d_.storage_from_bits, bits, at(d_.storage_type, in.type)));
  }

  // Mma operands i and i + 1 as one word: the vector's word itself where they are its lanes 2k and
  // 2k + 1 (a fragment pair loaded together), else packed from the two values.
  std::string mma_word(const Inst& mma, size_t i) const {
    auto lo = extracts_.find(mma.args[i]), hi = extracts_.find(mma.args[i + 1]);
    if (lo != extracts_.end() && hi != extracts_.end()) {
      const Inst &a = *lo->second, &b = *hi->second;
      auto v = vectors_.find(a.args[0]);
      if (v != vectors_.end() && a.args[0] == b.args[0] && a.bits % 2 == 0 && b.bits == a.bits + 1 &&
          halves(v->second->type))
        return word(*v->second, static_cast<unsigned>(a.bits / 2));
    }
    return spell(d_.mma_pack, type_name(arg_type(mma, 0)), arg(mma, i), arg(mma, i + 1));
  }

  void store_vector(const Inst& in, int depth) {
    auto stored = [&](unsigned l) { return spell(at(d_.store, in.type), arg(in, 1 + l)); };
    std::string packed = packed_type(in, in.lanes);
    std::vector<std::string> words;
    if (halves(in.type)) {
      const std::string& u = at(d_.storage_type, ST::u32);
      for (unsigned l = 0; l < in.lanes; l += 2)
        words.push_back(fmt::format("({0}){1} | (({0}){2} << 16)", u, stored(l), stored(l + 1)));
    } else {
      for (unsigned l = 0; l < in.lanes; ++l) words.push_back(stored(l));
    }
    std::string value =
        words.size() == 1 ? words[0] : spell(d_.vector_make, packed, fmt::format("{}", fmt::join(words, ", ")));
    const std::string* h = hinted(in, true);
    line(depth, spell(h ? *h : d_.vector_store, packed, pointer(in), value) + ";");
  }

  // The right-hand side of a value-defining instruction.
  std::string value(const Inst& in) {
    ST t = in.type;
    if (ir::is_builtin(in.op)) return spell(op(in, in.op), "xyz"[in.bits % 3]);
    if (ir::is_unary(in.op)) return unary(in, t, arg(in, 0));
    if (ir::is_binary(in.op)) {
      std::string e = binary(in, arg_type(in, 0), arg(in, 0), arg(in, 1));
      return is_float(t) && rounds(in.op) ? round(t, e) : e;
    }
    switch (in.op) {
      case Op::Select: return fmt::format("{} ? {} : {}", arg(in, 0), arg(in, 1), arg(in, 2));
      case Op::Fma: return round(t, spell(op(in, Op::Fma), arg(in, 0), arg(in, 1), arg(in, 2)));
      case Op::Load: {
        std::string e = spell(at(d_.load, memory_type(in)), loaded_element(in));
        // Masked: the conditional reads memory only where the mask holds.
        return in.args.size() == 3 ? fmt::format("{} ? {} : {}", arg(in, 1), e, arg(in, 2)) : e;
      }
      case Op::Atomic: {
        auto a = static_cast<ir::AtomicOp>(in.bits);
        auto it = d_.atomic.find(a);
        if (it == d_.atomic.end()) fail(in, "the dialect has no atomic {}", ir::atomic_name(a));
        std::string ptr = spell(d_.atomic_pointer, in.space == ir::MemSpace::Threadgroup ? "threadgroup" : "device",
                                t == ST::f32   ? "float"
                                : t == ST::i32 ? "int"
                                               : "uint",
                                "&" + element(in));
        return spell(it->second, ptr, arg(in, 1), in.args.size() > 2 ? arg(in, 2) : "");
      }
      case Op::Extract: return extract(in);
      case Op::LocalGet: return name(in.param);
      case Op::SimdSum:
      case Op::SimdMax:
      case Op::SimdMin: {
        std::string e = spell(d_.simd_reduce, arg(in, 0), reduce_name(in.op), type_name(t));
        return in.op == Op::SimdSum && !d_.simd_reduce_rounds_each_step ? round(t, e) : e;
      }
      case Op::ShuffleXor: {
        uint64_t m = constant(in.args[1]) ? constant(in.args[1])->bits & 31u : 32;
        if (m < 32) return shuffle(in, op(in, Op::ShuffleXor), fmt::format("{}u", m));
        return shuffle(in, d_.shuffle_lane, fmt::format("{} ^ ({} & 31u)", op(in, Op::SimdLane), arg(in, 1)));
      }
      case Op::ShuffleDown: {
        uint64_t delta = constant(in.args[1])->bits & 0xffffffffu;
        if (delta >= 32) return arg(in, 0);  // every lane's source is past the last lane
        return shuffle(in, op(in, Op::ShuffleDown), fmt::format("{}u", delta));
      }
      default: fail(in, "unsupported instruction");
    }
  }

  // Shuffles move 32-bit values; bools travel as 0/1.
  std::string shuffle(const Inst& in, const std::string& tmpl, const std::string& lane) const {
    if (in.type != ST::boolean) return spell(tmpl, arg(in, 0), lane);
    return spell(tmpl, fmt::format("({} ? 1u : 0u)", arg(in, 0)), lane) + " != 0u";
  }

  // The unsigned type of t's width, through which signed arithmetic wraps without UB.
  const std::string& unsigned_of(ST t) const { return vtype(is_64bit(t) ? ST::u64 : ST::u32); }
  static std::string zero(ST t) { return is_64bit(t) ? "0ull" : "0u"; }

  std::string unary(const Inst& in, ST t, const std::string& a) {
    bool is_signed = t == ST::i32 || t == ST::i64;
    const std::string& u = unsigned_of(t);
    switch (in.op) {
      case Op::Neg: return is_signed ? fmt::format("({})({} - ({}){})", vtype(t), zero(t), u, a) : "-" + a;
      case Op::Not: return t == ST::boolean ? "!" + a : "~" + a;
      case Op::Abs:
        if (is_float(t)) return spell(op(in, Op::Abs), a);
        if (is_signed) return fmt::format("{0} < 0 ? ({1})({3} - ({2}){0}) : {0}", a, vtype(t), u, zero(t));
        return a;
      case Op::Cast: return cast(arg_type(in, 0), t, a);
      case Op::Bitcast: return spell(d_.bitcast, a, vtype(t));
      case Op::IsNan:
      case Op::IsInf: return spell(op(in, in.op), a);     // bool: nothing to round
      default: return round(t, spell(op(in, in.op), a));  // float math
    }
  }

  std::string cast(ST from, ST to, const std::string& a) const {
    if (from == to) return a;
    switch (to) {
      case ST::boolean: return fmt::format("{} != {}", a, is_float(from) ? "0.0f" : literal(from, 0, d_));
      case ST::u32:
      case ST::i32:
      case ST::u64:
      case ST::i64:
        // Floats truncate toward zero and saturate, NaN -> 0; between integers C's conversions
        // (keep the low bits, sign- or zero-extend) are the IR's.
        if (is_float(from))
          return spell(to == ST::u32   ? d_.f32_to_u32
                       : to == ST::i32 ? d_.f32_to_i32
                       : to == ST::u64 ? d_.f32_to_u64
                                       : d_.f32_to_i64,
                       a);
        return fmt::format("({}){}", vtype(to), a);
      default:
        // f16/bf16 values already are floats; integers convert to f32, then round to the type.
        return round(to, is_float(from) ? a : fmt::format("({}){}", vtype(ST::f32), a));
    }
  }

  std::string binary(const Inst& in, ST t, const std::string& a, const std::string& b) {
    Op o = in.op;
    if (ir::is_comparison(o)) {
      static const std::map<Op, const char*> cmp = {{Op::Lt, "<"},  {Op::Le, "<="}, {Op::Gt, ">"},
                                                    {Op::Ge, ">="}, {Op::Eq, "=="}, {Op::Ne, "!="}};
      return fmt::format("{} {} {}", a, cmp.at(o), b);
    }
    if (is_float(t)) return spell(op(in, o), a, b);  // Add .. Max, Rem: dialect spellings
    if (t == ST::boolean) {
      switch (o) {
        case Op::BitAnd:
        case Op::Min: return fmt::format("{} && {}", a, b);
        case Op::BitOr:
        case Op::Max: return fmt::format("{} || {}", a, b);
        case Op::BitXor: return fmt::format("{} != {}", a, b);
        default: fail(in, "on bool");
      }
    }
    const std::string& u = unsigned_of(t);
    bool is_signed = t == ST::i32 || t == ST::i64;
    const char* sym = nullptr;
    switch (o) {
      case Op::Add: sym = "+"; break;
      case Op::Sub: sym = "-"; break;
      case Op::Mul: sym = "*"; break;
      case Op::Div:
      case Op::Rem: {
        // By zero: undefined (the CPU engine reports it). A signed MIN / -1 wraps to MIN
        // (remainder 0) as on the CPU engine, instead of C++'s undefined behaviour.
        std::string e = fmt::format("{} {} {}", a, o == Op::Div ? "/" : "%", b);
        const Inst* c = constant(in.args[1]);
        bool minus_one =
            c && (t == ST::i64 ? static_cast<int64_t>(c->bits) == -1 : static_cast<int32_t>(c->bits) == -1);
        if (!is_signed || (c && !minus_one)) return e;
        std::string wrapped =
            o == Op::Div ? fmt::format("({})({} - ({}){})", vtype(t), zero(t), u, a) : literal(t, 0, d_);
        return c ? wrapped : fmt::format("{} == {} ? {} : {}", b, literal(t, uint64_t(-1), d_), wrapped, e);
      }
      case Op::Min: return fmt::format("{0} < {1} ? {0} : {1}", a, b);
      case Op::Max: return fmt::format("{0} > {1} ? {0} : {1}", a, b);
      case Op::BitAnd: return fmt::format("{} & {}", a, b);
      case Op::BitOr: return fmt::format("{} | {}", a, b);
      case Op::BitXor: return fmt::format("{} ^ {}", a, b);
      case Op::Shl:
      case Op::Shr: {
        // The count is taken modulo the width; signed values shift left through their unsigned type
        // (no UB), right arithmetically.
        uint64_t width_mask = is_64bit(t) ? 63u : 31u;
        const Inst* c = constant(in.args[1]);
        std::string n =
            c ? literal(t, c->bits & width_mask, d_) : fmt::format("({} & {})", b, literal(t, width_mask, d_));
        if (o == Op::Shr) return fmt::format("{} >> {}", a, n);
        if (!is_signed) return fmt::format("{} << {}", a, n);
        return fmt::format("({})(({}){} << {})", vtype(t), u, a, n);
      }
      default: fail(in, "on {}", type_name(t));
    }
    // Unsigned types wrap; signed add/sub/mul wrap too, computed unsigned because signed overflow
    // is UB in C++.
    if (!is_signed) return fmt::format("{} {} {}", a, sym, b);
    return fmt::format("({})(({}){} {} ({}){})", vtype(t), u, a, sym, u, b);
  }

  const ir::Function& f_;
  std::vector<TileMap> maps_;  // copy_tile's tensor maps, once one is printed
  const Dialect& d_;
  KernelUses uses_;
  std::unordered_map<Id, std::string> named_;  // the author's names, made safe
  std::unordered_map<Id, int> use_count_, last_use_, position_;
  std::unordered_set<Id> unprinted_;
  std::unordered_map<Id, std::vector<int>> local_sets_;
  std::unordered_map<Id, std::string> expr_;  // C expression of each id: a name or a literal
  std::unordered_map<Id, ST> type_;
  std::unordered_map<Id, const Inst*> consts_;
  std::unordered_map<Id, const Inst*> vectors_;   // LoadVector and LoadMatrix by their id
  std::unordered_map<Id, const Inst*> extracts_;  // Extract by its id
  std::set<Id> mma_;                              // Mma results
  std::set<Id> accumulators_;                     // MmaAsync and MmaWait results: f32 arrays
  struct AWord {                                  // a word of an mma_async's A from registers
    std::string name;
    const ir::Block* block;  // where it is declared
    const Inst* mma;
  };
  std::vector<AWord> a_words_;                 // in flight: held by each mma_wait until one of 0
  std::vector<const ir::Block*> open_blocks_;  // the blocks being printed, outermost first
  std::unordered_map<Id, ST> array_type_;      // threadgroup arrays' element types
  std::vector<const Inst*> arrays_;
  std::string out_;
};

}  // namespace

uint64_t threadgroup_layout_bytes(const ir::Function& f) {
  const std::set<Id> atom_aligned = atom_aligned_arrays(f);
  uint64_t bytes = 0;
  ir::for_each_inst(f.body, [&](const Inst& in) {
    if (in.op != Op::TgArrayDecl) return;
    const uint64_t align = array_alignment(atom_aligned, in);
    bytes = (bytes + align - 1) / align * align + padded_bytes(in);
  });
  return bytes;
}

std::string print_kernel(const ir::Function& f, const Dialect& d) {
  ir::verify(f);
  return Printer(f, d).run();
}

std::string entry_name(const ir::Function& f) {
  if (!is_identifier(f.name) || f.name.rfind("__", 0) == 0)
    throw Error(fmt::format("codegen: kernel name '{}' is not a C identifier", f.name));
  return fmt::format("{}_{}", f.name, type_name(f.dtype));
}

std::string param_summary(const ir::Function& f) {
  std::string s;
  for (const ir::Param& p : f.params) {
    if (!s.empty()) s += ", ";
    if (p.kind == ir::ParamKind::Tensor)
      s += fmt::format("{}: {} {}*", p.name, ir::role_name(p.role), type_name(p.elem));
    else if (p.kind == ir::ParamKind::Scalar)
      s += fmt::format("{}: scalar {}", p.name, type_name(p.elem));
    else
      s += fmt::format("{}: constexpr u32", p.name);
  }
  return s;
}

}  // namespace mtile::codegen
