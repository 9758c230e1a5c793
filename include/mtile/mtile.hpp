// Everything a kernel author uses: the DSL, rules and specs, registration, the Context and
// launches, the harness, and the compiler's passes and code generators.
#pragma once
#include "mtile/compile.hpp"
#include "mtile/dsl.hpp"
#include "mtile/dsl_matrix.hpp"
#include "mtile/harness.hpp"
#include "mtile/registry.hpp"
#include "mtile/rule.hpp"
#include "mtile/runtime.hpp"
#include "mtile/spec.hpp"
#include "mtile/target.hpp"
