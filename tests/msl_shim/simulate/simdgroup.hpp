// A functional stand-in for the few Metal SIMD-group functions mtile's MSL helpers use, so that a
// helper (the Mma and load_matrix lowerings of src/codegen/msl/msl_preamble.hpp) can run on the host: 32
// std::threads are the 32 lanes of one simdgroup, and every cross-lane call is a rendezvous of all
// 32 (std::barrier). simdgroup_matrix<float, 8, 8> gives lane l the elements (fm, fn) and
// (fm, fn + 1), q = l / 4, fm = (q & 4) + (l / 2) % 4, fn = (q & 2) * 2 + (l % 2) * 2: the layout
// MLX's steel GEMM relies on, which the Metal lowering assumes.
#pragma once
#include <barrier>
#include <thread>

typedef unsigned int uint;
typedef unsigned short ushort;

struct float4 {
  float4(float x_, float y_, float z_, float w_) : x(x_), y(y_), z(z_), w(w_) {}
  float x, y, z, w;
};

namespace sim {
struct Simdgroup {
  std::barrier<> sync{32};
  double slot[32][3][2];  // what each lane puts on the table for the others
};
inline Simdgroup* group = nullptr;
inline thread_local unsigned lane = 0;
inline void element_coords(unsigned l, unsigned& fm, unsigned& fn) {
  unsigned q = l / 4;
  fm = (q & 4) + (l / 2) % 4;
  fn = (q & 2) * 2 + (l % 2) * 2;
}
}  // namespace sim

// Address-space qualifiers vanish; as_type reinterprets bits (mtile's load_matrix helper).
#define threadgroup
template <class T, class U>
T as_type(U bits) {
  static_assert(sizeof(T) == sizeof(U));
  T t;
  __builtin_memcpy(&t, &bits, sizeof t);
  return t;
}

template <class T>
T simd_shuffle(T v, ushort from) {
  sim::group->slot[sim::lane][0][0] = v;
  sim::group->sync.arrive_and_wait();
  T r = static_cast<T>(sim::group->slot[from % 32][0][0]);
  sim::group->sync.arrive_and_wait();
  return r;
}

template <class T, int Cols, int Rows>
struct simdgroup_matrix {
  T e[2] = {T(0), T(0)};
  T* thread_elements() { return e; }
};

// d = a b + c over the 8 x 8 matrices the 32 lanes hold, each element summed in double and
// rounded once to T (Metal sums in T in an order it leaves open).
template <class T>
void simdgroup_multiply_accumulate(simdgroup_matrix<T, 8, 8>& d, const simdgroup_matrix<T, 8, 8>& a,
                                   const simdgroup_matrix<T, 8, 8>& b, const simdgroup_matrix<T, 8, 8>& c) {
  sim::Simdgroup& g = *sim::group;
  for (int e = 0; e < 2; ++e) {
    g.slot[sim::lane][0][e] = a.e[e];
    g.slot[sim::lane][1][e] = b.e[e];
    g.slot[sim::lane][2][e] = c.e[e];
  }
  g.sync.arrive_and_wait();
  double m[3][8][8];
  for (unsigned l = 0; l < 32; ++l) {
    unsigned fm, fn;
    sim::element_coords(l, fm, fn);
    for (int k = 0; k < 3; ++k)
      for (int e = 0; e < 2; ++e) m[k][fm][fn + e] = g.slot[l][k][e];
  }
  g.sync.arrive_and_wait();
  unsigned fm, fn;
  sim::element_coords(sim::lane, fm, fn);
  for (int e = 0; e < 2; ++e) {
    double sum = m[2][fm][fn + e];
    for (int k = 0; k < 8; ++k) sum += m[0][fm][k] * m[1][k][fn + e];
    d.e[e] = static_cast<T>(sum);
  }
}
