#include <fmt/format.h>
#include <fmt/ranges.h>

#include "codegen/codegen.hpp"
#include "commands.hpp"
#include "passes/pipeline.hpp"

namespace mtile::cli {
namespace {

// What `emit` and `inspect` share: the kernel, dtype, target, Config and constexprs to bake.
struct Selection {
  std::string kernel, dtype, shape, arch;
  std::vector<std::string> sets, configs;
};

void add_selection(CLI::App& app, Selection& s) {
  app.add_option("kernel", s.kernel, "kernel name (see `mtile list`)")->required();
  app.add_option("--dtype", s.dtype, "element type T (default: the kernel's first)");
  app.add_option("--shape", s.shape,
                 "lower as a launch of this shape would: its Config, constexprs baked (default: Config chosen "
                 "for the kernel's example shape, constexprs left as parameters)");
  app.add_option("--config", s.configs, "set a meta-parameter, NAME=VALUE (repeatable; still checked)");
  app.add_option("--set", s.sets, "bake a constexpr into the code, NAME=VALUE (repeatable)");
  app.add_option("--arch", s.arch, "the part to lower for: sm_90a, sm_80, apple7, apple8, apple9, cpu");
}

struct Chosen {
  Kernel kernel;
  ScalarType dtype;
  Target target;
  Config config;
  std::map<std::string, uint32_t> bake;
  std::set<std::string> wide;  // tensors given 64-bit offsets at this shape
  uint32_t tpg = 0;            // the shape's threads per threadgroup
  std::string note;            // one comment line saying what was chosen
};

Chosen choose(const Selection& s, const std::string& print) {
  Chosen c{find_kernel(s.kernel), ScalarType::f32, emit_target(print, s.arch), {}, {}, {}, 0, ""};
  c.dtype = parse_dtype_option(s.dtype, c.kernel);
  const KernelSpec& k = c.kernel.spec();
  Config overrides = parse_assignments(s.configs, "--config", true);
  Shape shape = s.shape.empty() ? k.example_shape : parse_shape(s.shape);
  Resolved r = resolve(k, shape, c.target, overrides, {}, c.dtype);
  if (!s.shape.empty()) {
    check_contract(k, shape, r);
    c.bake = r.constexprs;
    c.wide = wide_tensors(r);
    c.tpg = r.geometry.tpg;
  }
  c.config = r.config;
  for (const auto& [name, value] : parse_assignments(s.sets, "--set")) c.bake[name] = value;
  c.note = fmt::format("// mtile emit {}<{}> for {}: config {} (chosen for shape {}){}{}\n", k.name(),
                       type_name(c.dtype), c.target.name, config_text(c.config), shape_text(shape),
                       c.bake.empty() ? "" : fmt::format(", baked {}", shape_text(c.bake)),
                       c.wide.empty() ? "" : fmt::format(", 64-bit offsets for {}", fmt::join(c.wide, ", ")));
  return c;
}

}  // namespace

Action add_emit(CLI::App& app) {
  struct Opts : Selection {
    std::string target = "ir", metal_version = "3.1";
    bool traced = false, constexpr_buffers = false;
  };
  auto o = std::make_shared<Opts>();
  add_selection(app, *o);
  app.add_option("--target", o->target, "what to print: ir (after the pass pipeline), cuda or msl")
      ->check(CLI::IsMember({"ir", "cuda", "msl"}));
  app.add_option("--metal-version", o->metal_version,
                 "msl: 3.1 (bfloat), 3.0 (bf16 held as ushort) or 3.2 (device-scope fences)")
      ->check(CLI::IsMember({"3.0", "3.1", "3.2"}));
  app.add_flag("--constexpr-buffers", o->constexpr_buffers, "msl: pass every constexpr as a constant buffer");
  app.add_flag("--traced", o->traced, "print the IR as traced, before the pass pipeline");
  return [o] {
    Chosen c = choose(*o, o->target);
    ir::Function traced = c.kernel->def.trace(c.dtype, c.config);
    mark_may_alias(c.kernel.spec(), traced);
    if (o->traced) {
      if (o->target != "ir") throw Error("--traced prints IR: use it with --target ir");
      if (!c.bake.empty()) traced = passes::specialize_constexprs(traced, c.bake);
      fmt::print("{}{}", c.note, ir::print(traced));
      return 0;
    }
    passes::PipelineOptions opts;
    opts.bake = c.bake;
    opts.wide = c.wide;
    opts.tpg = c.tpg;
    ir::Function lowered = passes::run_pipeline(traced, c.target, opts);
    if (o->target == "cuda") {
      fmt::print("{}{}", c.note, codegen::emit_cuda(lowered));
    } else if (o->target == "msl") {
      codegen::MslOptions mo;
      using V = codegen::MslOptions::Version;
      mo.version = o->metal_version == "3.0" ? V::V3_0 : o->metal_version == "3.2" ? V::V3_2 : V::V3_1;
      mo.constexprs_as_buffers = o->constexpr_buffers;
      fmt::print("{}{}", c.note, codegen::emit_msl(lowered, mo));
    } else {
      fmt::print("{}{}", c.note, ir::print(lowered));
    }
    return 0;
  };
}

Action add_inspect(CLI::App& app) {
  struct Opts : Selection {
    std::string pass = "all";
    bool stats = false;
  };
  auto o = std::make_shared<Opts>();
  add_selection(app, *o);
  app.add_option("--pass", o->pass, "'all', or the pass after which to print (trace, inline_calls, ...)");
  app.add_flag("--stats", o->stats, "print instruction counts after each pass instead of the IR");
  return [o] {
    Chosen c = choose(*o, "ir");
    const auto& names = passes::pipeline_pass_names();
    if (o->pass != "all" && o->pass != "trace" && std::find(names.begin(), names.end(), o->pass) == names.end())
      throw Error(fmt::format("--pass {}: not a pass (passes: trace, {})", o->pass, fmt::join(names, ", ")));
    passes::PipelineOptions opts;
    opts.bake = c.bake;
    opts.wide = c.wide;
    opts.tpg = c.tpg;
    fmt::print("{}", c.note);
    opts.after_each = [&](const std::string& pass, const ir::Function& f) {
      if (o->pass != "all" && o->pass != pass) return;
      if (o->stats) {
        size_t insts = 0, loads = 0, stores = 0, wide = 0, barriers = 0;
        ir::for_each_inst(f.body, [&](const ir::Inst& in) {
          ++insts;
          loads += in.op == ir::Op::Load || in.op == ir::Op::LoadVector || in.op == ir::Op::LoadMatrix;
          stores += in.op == ir::Op::Store || in.op == ir::Op::StoreVector;
          wide += in.op == ir::Op::LoadVector || in.op == ir::Op::StoreVector || in.op == ir::Op::LoadMatrix;
          barriers += in.op == ir::Op::Barrier;
        });
        fmt::print("{:<30} {:>5} instructions {:>4} loads {:>4} stores ({} vector) {:>3} barriers  hash {:016x}\n",
                   pass, insts, loads, stores, wide, barriers, ir::structural_hash(f));
      } else {
        fmt::print("// ---- after {} ----\n{}\n", pass, ir::print(f));
      }
    };
    ir::Function traced = c.kernel->def.trace(c.dtype, c.config);
    mark_may_alias(c.kernel.spec(), traced);
    passes::run_pipeline(traced, c.target, opts);
    return 0;
  };
}

}  // namespace mtile::cli
