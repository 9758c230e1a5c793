// mul: c = a * b over n elements, 8 a thread (binary.hpp).
#include "kernels/elementwise/binary.hpp"
#include "kernels/elementwise/elementwise.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

template <class T>
void mul(In<T> a, In<T> b, Out<T> c, Constexpr n) {
  binary_body<T>(a, b, c, n, [](const Val& x, const Val& y) { return x * y; });
}

}  // namespace

KernelSpec mul_spec() {
  return binary_spec(
      define_generic_kernel("mul", ir::Mode::Elementwise, {"a", "b", "c", "n"}, MTILE_FLOAT_VARIANTS(mul)),
      "c = a * b over n elements", [](double x, double y) { return x * y; });
}

}  // namespace mtile::lib
