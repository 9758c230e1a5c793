#include <fmt/format.h>

#include "codegen/codegen.hpp"
#include "commands.hpp"
#include "passes/pipeline.hpp"

namespace mtile::cli {

Action add_emit(CLI::App& app) {
  struct Opts {
    std::string kernel, target = "ir", dtype, metal_version = "3.1";
    std::vector<std::string> sets;
    bool traced = false, constexpr_buffers = false;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("kernel", o->kernel, "kernel name (see `mtile list`)")->required();
  app.add_option("--target", o->target, "what to print: ir (after the pass pipeline), cuda or msl")
      ->check(CLI::IsMember({"ir", "cuda", "msl"}));
  app.add_option("--metal-version", o->metal_version, "msl: 3.1 (bfloat) or 3.0 (bf16 held as ushort)")
      ->check(CLI::IsMember({"3.0", "3.1"}));
  app.add_flag("--constexpr-buffers", o->constexpr_buffers, "msl: pass every constexpr as a constant buffer");
  app.add_option("--dtype", o->dtype, "element type T (default: the kernel's first)");
  app.add_option("--set", o->sets, "bake a constexpr into the code, NAME=VALUE (repeatable)");
  app.add_flag("--traced", o->traced, "print the IR as traced, before the pass pipeline");
  return [o] {
    const KernelSpec& k = find_kernel(o->kernel);
    ScalarType t = parse_dtype_option(o->dtype, k);
    ir::Function traced = k.def.trace(t);
    passes::PipelineOptions opts;
    opts.bake = parse_set_options(o->sets);
    if (o->traced) {
      if (o->target != "ir") throw Error("--traced prints IR: use it with --target ir");
      if (!opts.bake.empty()) traced = passes::specialize_constexprs(traced, opts.bake);
      fmt::print("{}", ir::print(traced));
      return 0;
    }
    ir::Function lowered = passes::run_pipeline(traced, opts);
    if (o->target == "cuda") {
      fmt::print("{}", codegen::emit_cuda(lowered));
    } else if (o->target == "msl") {
      codegen::MslOptions mo;
      mo.version = o->metal_version == "3.0" ? codegen::MslOptions::Version::V3_0 : codegen::MslOptions::Version::V3_1;
      mo.constexprs_as_buffers = o->constexpr_buffers;
      fmt::print("{}", codegen::emit_msl(lowered, mo));
    } else {
      fmt::print("{}", ir::print(lowered));
    }
    return 0;
  };
}

Action add_inspect(CLI::App& app) {
  struct Opts {
    std::string kernel, dtype, pass = "all";
    std::vector<std::string> sets;
    bool stats = false;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("kernel", o->kernel, "kernel name")->required();
  app.add_option("--dtype", o->dtype, "element type T");
  app.add_option("--pass", o->pass, "'all', or the pass after which to print (trace, inline_calls, ...)");
  app.add_option("--set", o->sets, "bake a constexpr, NAME=VALUE (repeatable)");
  app.add_flag("--stats", o->stats, "print instruction counts after each pass instead of the IR");
  return [o] {
    const KernelSpec& k = find_kernel(o->kernel);
    ScalarType t = parse_dtype_option(o->dtype, k);
    const auto& names = passes::pipeline_pass_names();
    if (o->pass != "all" && o->pass != "trace" && std::find(names.begin(), names.end(), o->pass) == names.end())
      throw Error(fmt::format("--pass {}: not a pass (passes: trace, {})", o->pass, fmt::join(names, ", ")));
    passes::PipelineOptions opts;
    opts.bake = parse_set_options(o->sets);
    opts.after_each = [&](const std::string& pass, const ir::Function& f) {
      if (o->pass != "all" && o->pass != pass) return;
      if (o->stats) {
        size_t insts = 0, loads = 0, stores = 0, wide = 0, barriers = 0;
        ir::for_each_inst(f.body, [&](const ir::Inst& in) {
          ++insts;
          loads += in.op == ir::Op::Load || in.op == ir::Op::LoadVector;
          stores += in.op == ir::Op::Store || in.op == ir::Op::StoreVector;
          wide += in.op == ir::Op::LoadVector || in.op == ir::Op::StoreVector;
          barriers += in.op == ir::Op::Barrier;
        });
        fmt::print("{:<30} {:>5} instructions {:>4} loads {:>4} stores ({} vector) {:>3} barriers  hash {:016x}\n",
                   pass, insts, loads, stores, wide, barriers, ir::structural_hash(f));
      } else {
        fmt::print("// ---- after {} ----\n{}\n", pass, ir::print(f));
      }
    };
    passes::run_pipeline(k.def.trace(t), opts);
    return 0;
  };
}

}  // namespace mtile::cli
