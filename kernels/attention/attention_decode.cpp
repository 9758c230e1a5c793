// attention_decode: one query token per sequence against its KV cache, grouped-query attention.
//   out[b, h, :] = softmax_s(scale * q[b, h, :] . k[b, h / group, s, :]) @ v[b, h / group, :, :]
// over s < seq, group = heads / kv_heads; q, out = [batch, heads, d], k, v = [batch, kv_heads, seq,
// d], contiguous. Memory-bound: each threadgroup reads its rows of K and V once for all `group`
// query heads that share them.
//
// Threadgroup (split, kv head, b) takes the split's rows of the sequence (seq / splits of them,
// rounded up). A team of `team` lanes (d / 8 rounded up to a power of two, at most a simdgroup)
// takes a row at a time: each lane loads 8 * chunks of its d columns in 16-byte loads, multiplies
// them with the query heads' columns it holds (pre-scaled by scale * log2(e), so exp2 gives the
// softmax weights), and the team's shuffles add up the row's score for each head. A trip of the
// loop takes `tile` rows a team, consecutive teams reading consecutive rows; the online softmax
// (running max m, sum l and accumulator acc in f32, per head) is rescaled once a trip. Rows past
// the split's end (the last trip) read the split's last row again and count as -inf. With Config
// stages >= 2 a trip's rows of K and V come from that many threadgroup buffers, which copy_async
// fills stages - 1 trips ahead (the threadgroup's threads copy a trip's rows together), rather
// than from each lane's own loads: memory stays busy while the threadgroup computes. With Config
// own_copies 1 each thread copies the chunks it reads (lanes past d into places of their own) and
// the loop needs no barrier.
// With Config mma 1 the tensor-core body (decode_mma.hpp) takes the place of the teams: the group's
// heads as the rows of an mma A, each simdgroup a part of each staged block of K and V; it leaves
// the simdgroups' states where the teams' merge leaves theirs.
// Then the teams of a simdgroup merge their (m, l, acc) by shuffles, and the simdgroups through
// threadgroup memory. With one split that is the answer: out = acc / l. With more, each
// threadgroup writes its partial (acc, m, l) to `workspace`; one thread runs a fence and takes a
// ticket, atomic_add on the (b, kv head) counter, and a fence again; the threadgroup whose ticket
// is splits - 1, the last to arrive, merges every split's partial into out and sets the counter
// back to 0, so the kernel can be launched again (or replayed in a CUDA graph) with no reset. Its
// merge: each thread folds 4 columns of a head over the splits as the online softmax folds keys,
// 16 splits' (m, l) and columns loaded at once.
// workspace: acc [batch, heads, splits, d], then (m, l) [batch, heads, splits, 2], from element 0;
// its size holds any splits up to split_cap (see the spec). counters: batch * kv_heads u32, zero
// at launch and left zero.
#include <algorithm>
#include <cmath>
#include <deque>
#include <functional>
#include <utility>

#include "kernels/attention/attention.hpp"
#include "kernels/attention/decode_mma.hpp"
#include "kernels/row_loops.hpp"
#include "kernels/softmax/online_softmax.hpp"
#include "kernels/spec_helpers.hpp"

namespace mtile::lib {
namespace {

using namespace dsl;

constexpr uint32_t kChunk = 8;              // columns a lane loads at once: 16 bytes of bf16
constexpr uint32_t kMinSplitRows = 64;      // a split reads at least this many rows
constexpr uint32_t kMaxSplitGroups = 4096;  // threadgroups the splits of a launch may add up to
constexpr uint32_t kMaxSplits = 128;        // splits a threadgroup merges
constexpr uint32_t kMergeLoads = 16;        // splits whose partials a merging thread loads at once
constexpr double kLog2e = 1.4426950408889634;

// Running softmax state of one query head in one lane: max and sum (the same in a team's lanes)
// and the lane's columns of the accumulator.
struct HeadState {
  Var m, l;
  std::deque<Var> acc;  // [c * kChunk + e]
  HeadState() : m("run_max", lit(-INFINITY)), l("run_sum", lit(0.0f)) {}
};

// Folds state `o` (another lane's, with max mo and sum lo) into s: the max of both, each scaled.
void merge(HeadState& s, const Val& mo, const Val& lo, const std::vector<Val>& acc_o) {
  Val m_new = max(s.m.get(), mo), shift = finite_shift(m_new);
  Val a = exp2(s.m.get() - shift), b = exp2(mo - shift);
  s.l = s.l * a + lo * b;
  for (size_t i = 0; i < s.acc.size(); ++i) s.acc[i] = fma(s.acc[i].get(), a, acc_o[i] * b);
  s.m = m_new;
}

template <class T>
void attention_decode(In<T> q, In<T> k, In<T> v, Out<T> out, InOut<f32> workspace, InOut<u32> counters,
                      Scalar<f32> scale, Constexpr heads, Constexpr kv_heads, Constexpr seq, Constexpr d) {
  // Trace-time sizes (the contract pins each to its rule).
  const uint32_t group = config("group"), team = config("team"), chunks = config("chunks"), tile = config("tile");
  const uint32_t simdgroups = config("threads") / kSimdLanes, teams = config("threads") / team;
  const bool split = config("splits") != 1;
  const uint32_t per_lane = chunks * kChunk;

  Val part = named("split", program_id(0)), kvh = named("kv_head", program_id(1)), b = named("batch", program_id(2));
  Val splits = grid_size(0);
  // This split's rows: [begin, begin + rows) of the sequence; none where begin passes seq.
  Val per_split = named("per_split", seq / splits + select(seq % splits != 0u, lit(1u), lit(0u)));
  Val begin = named("begin", part * per_split);
  Val rows = named("rows", select(begin < seq, min(per_split, seq - begin), lit(0u)));
  Val kv_row0 = named("kv_row0", (b * kv_heads + kvh) * seq + begin);  // k's row of the split's first
  Val head0 = named("head0", b * heads + kvh * group);                 // the group's first query head

  // The simdgroups' states of each head merged (sm_acc rows `pitch` apart), then out, or with
  // splits the partial and the last threadgroup's merge.
  auto merge_and_finish = [&](const TgArray& sm_acc, const TgArray& sm_ml, uint32_t pitch) {
    // Head g's (m, l) and acc[i] over the simdgroups.
    Val acc_base = named("acc_base", (head0 * splits + part) * d);  // workspace acc of (b, head0, part)
    Val ml_base = named("ml_base", grid_size(2) * heads * splits * d);
    for (uint32_t g = 0; g < group; ++g) {
      Val m_all = load(sm_ml[lit(g * 2)]);
      for (uint32_t w = 1; w < simdgroups; ++w) m_all = max(m_all, load(sm_ml[lit((w * group + g) * 2)]));
      Val shift = named("shift", finite_shift(m_all));
      std::vector<Val> weight;
      Val l_all = lit(0.0f);
      for (uint32_t w = 0; w < simdgroups; ++w) {
        weight.push_back(exp2(load(sm_ml[lit((w * group + g) * 2)]) - shift));
        l_all = fma(load(sm_ml[lit((w * group + g) * 2 + 1)]), weight.back(), l_all);
      }
      for_(tid(), d, lsize(), [&](Val i) {
        Val a = lit(0.0f);
        for (uint32_t w = 0; w < simdgroups; ++w) a = fma(load(sm_acc[lit((w * group + g) * pitch) + i]), weight[w], a);
        if (!split) {
          store(out[(head0 + g) * d + i], cast<T>(a / l_all));
        } else {
          store(workspace[acc_base + g * splits * d + i], a);
        }
      });
      if (split)
        if_(tid() == 0u, [&] {
          Val at = ml_base + ((head0 + g) * splits + part) * 2u;
          store(workspace[at], m_all);
          store(workspace[at + 1u], l_all);
        });
    }
    if (!split) return;

    // The ticket: stores before it (by every thread: the barrier) happen before the last
    // threadgroup's loads after its own.
    barrier();
    TgArray ticket = threadgroup_array<u32>(1);
    Val counter = named("counter", b * kv_heads + kvh);
    if_(tid() == 0u, [&] {
      fence();
      store(ticket[0u], atomic_add(counters[counter], lit(1u)));
      fence();
    });
    barrier();
    if_(load(ticket[0u]) + 1u == splits, [&] {
      // out: 4 columns of one head a thread, the splits' partials folded in kMergeLoads at a time,
      // each batch's (m, l) and columns loaded together: one wait a batch, none for weights first.
      Val quads = named("quads", d / 4u);
      for_(tid(), quads * group, lsize(), [&](Val item) {
        Val g = item / quads, head = named("head", head0 + g), col = named("col", item % quads * 4u);
        Val at = named("acc_at", head * splits * d + col), ml = named("ml_head", ml_base + head * splits * 2u);
        Var m_run("m_run", lit(-INFINITY)), l_run("l_run", lit(0.0f));
        std::deque<Var> a;
        for (uint32_t e = 0; e < 4; ++e) a.emplace_back("a", lit(0.0f));
        for_(0u, splits, kMergeLoads, [&](Val s0) {
          std::vector<Vec> part, ml_s;
          std::vector<Val> live;
          for (uint32_t u = 0; u < kMergeLoads; ++u) {
            Val s = column(s0, u), clamped = min(s, splits - 1u);
            live.push_back(s < splits);
            part.push_back(load_n<4, f32>(workspace, at + clamped * d));
            ml_s.push_back(load_n<2, f32>(workspace, ml + clamped * 2u));
          }
          Val m_new = m_run.get();
          std::vector<Val> m_s;
          for (uint32_t u = 0; u < kMergeLoads; ++u) {
            m_s.push_back(select(live[u], ml_s[u][0], lit(-INFINITY)));
            m_new = max(m_new, m_s.back());
          }
          Val shift = named("shift", finite_shift(m_new)), alpha = exp2(m_run.get() - shift);
          std::vector<Val> w;
          Val l = l_run.get() * alpha;
          for (uint32_t u = 0; u < kMergeLoads; ++u) {
            w.push_back(exp2(m_s[u] - shift));
            l = fma(w[u], ml_s[u][1], l);
          }
          for (uint32_t e = 0; e < 4; ++e) {
            Val sum = a[e].get() * alpha;
            for (uint32_t u = 0; u < kMergeLoads; ++u) sum = fma(w[u], part[u][e], sum);
            a[e] = sum;
          }
          l_run = l;
          m_run = m_new;
        });
        Val inv = named("inv_sum", 1.0f / l_run.get());
        for (uint32_t e = 0; e < 4; ++e) store(out[column(head * d + col, e)], cast<T>(a[e].get() * inv));
      });
      if_(tid() == 0u, [&] { atomic_exchange(counters[counter], lit(0u)); });
    });
  };
  if (config("mma", 0)) {
    Val q_scale = named("q_scale", scale * static_cast<float>(kLog2e));
    const uint32_t dd = config("dtiles") * 16;
    const KvView view{seq, grid_size(2) * kv_heads, b * kv_heads + kvh, begin};
    DecodeMma<T> body(q, k, v, q_scale, head0, kv_row0, rows, dd, group, view);
    TgArray sm_acc = threadgroup_array<f32>(simdgroups * group * dd);
    TgArray sm_ml = threadgroup_array<f32>(simdgroups * group * 2);
    body.write_state(sm_acc, sm_ml);
    barrier();
    merge_and_finish(sm_acc, sm_ml, dd);
    return;
  }
  Val lane = named("team_lane", simd_lane() % team), team_id = named("team", tid() / team);
  std::vector<Val> col, valid_col;  // the lane's chunks: first column, inside d; clamped to d - 8
  for (uint32_t c = 0; c < chunks; ++c) {
    Val at = (lane + c * team) * kChunk;
    valid_col.push_back(at < d);
    col.push_back(select(valid_col.back(), at, d - kChunk));
  }

  // The query heads' columns, times scale * log2(e); 0 in columns past d.
  Val q_scale = named("q_scale", scale * static_cast<float>(kLog2e));
  std::vector<std::vector<Val>> qs(group);  // [g][c * kChunk + e]
  for (uint32_t g = 0; g < group; ++g)
    for (uint32_t c = 0; c < chunks; ++c) {
      Vec qv = load_n<kChunk, f32>(q, (head0 + g) * d + col[c]);
      for (uint32_t e = 0; e < kChunk; ++e) qs[g].push_back(select(valid_col[c], qv[e] * q_scale, lit(0.0f)));
    }
  std::deque<HeadState> st(group);
  for (HeadState& s : st)
    for (uint32_t i = 0; i < per_lane; ++i) s.acc.emplace_back("acc", lit(0.0f));

  // One trip of the loop: `tile` rows a team from r0 on, consecutive teams consecutive rows; `fetch`
  // gives the K and V chunk c of the trip's row u * teams + team (clamped into the split).
  auto trip = [&](const Val& r0,
                  const std::function<std::pair<Vec, Vec>(uint32_t u, const Val& row, uint32_t c)>& fetch) {
    std::vector<Val> valid;
    std::vector<Vec> kv, vv;  // [u * chunks + c]
    for (uint32_t u = 0; u < tile; ++u) {
      Val row = named("row", column(r0, u * teams) + team_id);
      valid.push_back(row < rows);
      for (uint32_t c = 0; c < chunks; ++c) {
        auto [kc, vc] = fetch(u, row, c);
        kv.push_back(std::move(kc));
        vv.push_back(std::move(vc));
      }
    }
    for (uint32_t g = 0; g < group; ++g) {
      HeadState& s = st[g];
      std::vector<Val> score;  // log2 units
      for (uint32_t u = 0; u < tile; ++u) {
        Val dot = lit(0.0f);
        for (uint32_t c = 0; c < chunks; ++c)
          for (uint32_t e = 0; e < kChunk; ++e) dot = fma(qs[g][c * kChunk + e], kv[u * chunks + c][e], dot);
        for (uint32_t mask = team / 2; mask >= 1; mask /= 2) dot = dot + simd_shuffle_xor(dot, mask);
        score.push_back(select(valid[u], dot, lit(-INFINITY)));
      }
      Val m_new = s.m.get();
      for (const Val& x : score) m_new = max(m_new, x);
      Val shift = finite_shift(m_new);
      Val alpha = exp2(s.m.get() - shift);
      std::vector<Val> p;
      Val l = s.l * alpha;
      for (const Val& x : score) {
        p.push_back(exp2(x - shift));
        l = l + p.back();
      }
      s.l = l;
      for (uint32_t c = 0; c < chunks; ++c)
        for (uint32_t e = 0; e < kChunk; ++e) {
          Val a = s.acc[c * kChunk + e] * alpha;
          for (uint32_t u = 0; u < tile; ++u) a = fma(p[u], vv[u * chunks + c][e], a);
          s.acc[c * kChunk + e] = a;
        }
      s.m = m_new;
    }
  };
  const uint32_t stages = config("stages", 0), trip_rows = teams * tile;
  if (stages == 0) {
    // Straight from device memory: each lane's loads of a trip in flight together.
    for_(0u, rows, trip_rows, [&](Val r0) {
      trip(r0, [&](uint32_t, const Val& row, uint32_t c) {
        Val at = named("kv_at", (kv_row0 + min(row, rows - 1u)) * d);
        return std::pair{load_n<kChunk, f32>(k, at + col[c]), load_n<kChunk, f32>(v, at + col[c])};
      });
    });
  } else {
    // Through `stages` threadgroup buffers of a trip's rows of K and V (pitch: the columns the
    // teams' lanes cover), filled by copy_async stages - 1 trips ahead, so that the threadgroup
    // keeps that many trips of K and V in flight while it computes one (gemm's pipeline).
    const bool own_copies = config("own_copies", 0);
    const uint32_t pitch = team * per_lane, copy_lanes = std::min<uint32_t>(kChunk, 16 / storage_bytes(k.elem));
    TgArray k_tile = threadgroup_array(k.elem, stages * trip_rows * pitch);
    TgArray v_tile = threadgroup_array(v.elem, stages * trip_rows * pitch);
    Val trips = named("trips", (rows + (trip_rows - 1)) / trip_rows), row_chunks = named("row_chunks", d / kChunk);
    // A lane's place in a buffer row: its own columns, past d for lanes past it (which copy the
    // clamped chunk there), so that with own_copies no two threads touch one element.
    std::vector<Val> slot;
    for (uint32_t c = 0; c < chunks; ++c) slot.push_back((lane + c * team) * kChunk);
    auto copy = [&](const Val& dst, const Val& src) {
      for (uint32_t h = 0; h < kChunk; h += copy_lanes) {
        copy_async(k_tile[column(dst, h)], k[column(src, h)], copy_lanes);
        copy_async(v_tile[column(dst, h)], v[column(src, h)], copy_lanes);
      }
    };
    auto fill = [&](const Val& step) {
      Val buf_row = named("buf_row", step % stages * trip_rows), r0 = named("fill_row", step * trip_rows);
      if (own_copies) {  // the chunks this thread reads in that trip
        for (uint32_t u = 0; u < tile; ++u) {
          Val r = column(team_id, u * teams);
          Val src = named("src_row", (kv_row0 + min(r0 + r, rows - 1u)) * d),
              dst = named("dst_row", (buf_row + r) * pitch);
          for (uint32_t c = 0; c < chunks; ++c) copy(dst + slot[c], src + col[c]);
        }
        return;
      }
      for_(tid(), row_chunks * trip_rows, lsize(), [&](Val item) {
        Val r = item / row_chunks, at = item % row_chunks * kChunk;
        copy((buf_row + r) * pitch + at, (kv_row0 + min(r0 + r, rows - 1u)) * d + at);
      });
    };
    // One group committed a trip (empty past the last), so waiting until stages - 2 are pending
    // leaves this trip's buffer complete.
    for (uint32_t s = 0; s + 1 < stages; ++s) {
      if_(lit(s) < trips, [&] { fill(lit(s)); });
      copy_async_commit();
    }
    for_(0u, trips, 1u, [&](Val step) {
      copy_async_wait(stages - 2);
      // Every thread's copies for this trip landed, every team is done with the buffer the fill
      // below takes. With own_copies a thread reads only its own copies: its wait is enough.
      if (!own_copies) barrier();
      if_(step + (stages - 1) < trips, [&] { fill(step + (stages - 1)); });
      copy_async_commit();
      Val buf_row = named("buf_row", step % stages * trip_rows);
      trip(step * trip_rows, [&](uint32_t u, const Val&, uint32_t c) {
        Val at = named("tile_at", (buf_row + (u * teams) + team_id) * pitch + (own_copies ? slot[c] : col[c]));
        Vec kc, vc;
        for (uint32_t e = 0; e < kChunk; ++e) {
          kc.lanes.push_back(load<f32>(k_tile[at + e]));
          vc.lanes.push_back(load<f32>(v_tile[at + e]));
        }
        return std::pair{kc, vc};
      });
    });
  }

  // The teams of a simdgroup: lanes at one place in their teams hold the same columns.
  for (uint32_t mask = team; mask < kSimdLanes; mask *= 2)
    for (HeadState& s : st) {
      std::vector<Val> acc_o;
      for (const Var& a : s.acc) acc_o.push_back(simd_shuffle_xor(a.get(), mask));
      merge(s, simd_shuffle_xor(s.m.get(), mask), simd_shuffle_xor(s.l.get(), mask), acc_o);
    }
  // The simdgroups, through threadgroup memory: the first team of each writes its state.
  TgArray sm_acc = threadgroup_array<f32>(simdgroups * group * team * per_lane);
  TgArray sm_ml = threadgroup_array<f32>(simdgroups * group * 2);
  if_(simd_lane() < team, [&] {
    for (uint32_t g = 0; g < group; ++g) {
      Val at = (simd_group() * group + g) * (team * per_lane);
      for (uint32_t c = 0; c < chunks; ++c)
        for (uint32_t e = 0; e < kChunk; ++e)
          store(sm_acc[at + ((lane + c * team) * kChunk + e)], st[g].acc[c * kChunk + e].get());
      if_(simd_lane() == 0u, [&] {
        store(sm_ml[(simd_group() * group + g) * 2u], st[g].m.get());
        store(sm_ml[(simd_group() * group + g) * 2u + 1u], st[g].l.get());
      });
    }
  });
  barrier();
  merge_and_finish(sm_acc, sm_ml, team * per_lane);
}

}  // namespace

KernelSpec attention_decode_spec() {
  KernelSpec k;
  k.def =
      define_generic_kernel("attention_decode", ir::Mode::Reduction,
                            {"q", "k", "v", "out", "workspace", "counters", "scale", "heads", "kv_heads", "seq", "d"},
                            MTILE_FLOAT_VARIANTS(attention_decode));
  k.family = "attention";
  k.summary = "one query token per sequence against its KV cache (GQA), online softmax in f32, split over seq";
  using rule::var;
  rule::Expr batch = var("batch"), heads = var("heads"), kv_heads = var("kv_heads"), seq = var("seq"), d = var("d"),
             simd = var("simd_width"), team = var("team"), splits = var("splits");
  rule::Expr pairs = batch * kv_heads;
  // The most splits a launch may take, from the dims alone (it sizes the workspace, which a caller
  // allocates without knowing the device): at least kMinSplitRows rows a split, no more splits
  // than kMaxSplitGroups threadgroups need, and kMaxSplits at most.
  rule::Expr split_cap =
      rule::min(rule::ceil_div(seq, kMinSplitRows), rule::min(rule::ceil_div(kMaxSplitGroups, pairs), kMaxSplits));
  k.dims = {"batch", "heads", "kv_heads", "seq", "d"};
  // 256 threads; 128 where the threadgroup arrays of group * d columns would pass 48 KiB, or
  // where batch * kv_heads is below the SM count and the split cap still lets four threadgroups
  // an SM fill 7/8 of their wave (finer parts: batch 2 to 16). 4 rows a team in flight (tile)
  // where a lane's columns for the group fit (group * chunks <= 4: about 128 registers, 16
  // simdgroups an SM). Splits: as many as one wave of such threadgroups holds, rounded down (a few
  // threadgroups past a wave cost a whole one), at least 1 and at most 32, whose partials the last
  // threadgroup merges. H100, 32/8 heads, d 128, seq 4096 (bench/NOTES.md), us: tile 4 against 2:
  // batch 64 374 against 410, batch 32 210 against 220; splits at tile 4 and 256 threads: batch 8
  // 66.4 with 4 against 70.4 with 8 and 76.2 with 16, batch 32 194.3 with 1 against 210.1 with 2;
  // 128 threads (a wave's splits) against 256: batch 2 24.4 / 26.3, 4 39.2 / 42.0, 8 63.8 / 66.5,
  // 16 108.6 / 113.1, but batch 32 197.2 / 193.9 and batch 1 at seq 32768 (32 splits at most)
  // 75.8 / 67.4. K and V through two threadgroup buffers (stages 2, copy_async a trip ahead) where
  // copies are asynchronous, a split has at least 4 trips and two threadgroups' buffers fit an
  // SM's threadgroup memory: H100, us, stages 0 / 2 / 3 (3 leaves one threadgroup an SM at tile 4):
  // batch 1 seq 32768 57.6 / 54.2 / 58.6, batch 8 54.0 / 52.5 / 65.0, batch 32 183.9 / 178.9 / 187.0,
  // batch 64 363.4 / 354.2 / 361.1, but batch 1 seq 4096 (2 trips a split) 16.0 / 16.3 / 20.8; tile 2
  // with 3 or 4 stages, or tile 1 with 4 or 6, no better than 2 at tile 4. own_copies (each thread
  // copies what it reads, no barrier a trip) wherever K and V are staged: H200, us, 0 / 1: batch 32
  // seq 4096 142.8 / 127.9, batch 64 276.1 / 248.9, batch 8 seq 32768 268.8 / 258.1; H100 within 0.8%.
  rule::Expr threads = var("threads"), split_room = rule::min(split_cap, 32);
  // The tensor-core body (mma 1, decode_mma.hpp) where the split's rows are few: H200, us, the FMA
  // body / mma at 16 and 32 splits (bench/NOTES.md nineteenth session): b1 s4096 14.72 / 13.02 /
  // 12.86, b2 s4096 17.92 / 16.45 / 20.38, b1 s8192 18.59 / 17.50 / 16.90, b2 s8192 25.44 / 24.64 /
  // 29.18, b1 s16384 26.02 / 26.53 / 25.02, b1 s2048 8.60 / 6.42 / 7.39; but b4 s4096 25.12 / 28.64 /
  // 29.44, b8 s4096 40.90 / 41.38 (6 splits), b1 s32768 40.67 / 43.58 (48), b32 s4096 130.1 / 133.8
  // (1): single-buffered K and V keep fewer bytes in flight than the FMA body's loads. At 168
  // registers (sm_90a) three threadgroups of 128 threads fit an SM; two a SM's worth of splits won.
  // Where the splits stream longer and batch * kv_heads <= sm_count / 2, the same body with K and V
  // in two buffers (stages 2; 150 registers, 80 KiB at d 128: two threadgroups an SM), H200, us, the
  // FMA body / mma stages 2 (twentieth session): b4 s4096 25.09 / 24.26, b8 s4096 40.86 / 39.90, b2
  // s16384 41.31 / 40.19, b4 s32768 135.84 / 134.27, b1 s32768 40.96 / 40.67, b2 s32768 72.38 /
  // 72.51, b8 s32768 258.34 / 259.36; but b32 s4096 (one split) 127.74 / 131.78.
  // Only where the target has a register file (the GPUs) and 16-bit inputs: mma rounds P to them.
  rule::Expr mma_splits = rule::clamp(2 * var("sm_count") / pairs, 1, split_room);
  // Its threadgroup memory at 128 threads and bn 16: K and V of 4 x 16 rows of d + 8 16-bit
  // elements a buffer and the simdgroups' states.
  rule::Expr mma_kv = 2 * 4 * 16 * (d + 8) * 2, mma_state = 4 * var("group") * d * 4 + 64;
  rule::Expr mma_fits = var("registers_per_sm") > 0 && var("async_copy") == 1 && var("dtype_bytes") == 2 &&
                        d % 16 == 0 && var("group") <= 16;
  rule::Expr mma_short =
      pairs * 8 <= var("sm_count") && seq <= 512 * mma_splits && mma_kv + mma_state <= var("shared_memory");
  rule::Expr mma_staged = pairs * 2 <= var("sm_count") && 2 * (2 * mma_kv + mma_state) <= var("shared_memory");
  // The FMA body at 256 threads where two threadgroups an SM's worth of splits fill 7/8 of their
  // wave and each split streams 2048 rows or more: H200, us, the rule before / 256 threads at
  // 2 * sm_count / pairs splits (twenty-first session): mma stages 2 before: b8 s32768 262.6 /
  // 251.5, b8 s16384 135.8 / 132.1, b8 s8192 72.5 / 71.0, b4 s32768 134.2 / 131.1, b4 s16384 71.7
  // / 70.9; FMA at 128 threads before: b16 s32768 500.3 / 490.3, b16 s16384 258.1 / 250.1, b16
  // s8192 135.5 / 132.6, b16 s4096 71.6-72.2 / 70.6-70.7; b2 s32768 (mma) 71.4-72.5 / 70.9-71.5.
  // Not at 1024 rows a split (b8 s4096 40.1 / 40.4) nor where 2 splits fill 192 of 264 places (b12
  // s32768 400.4 / 482.7).
  // Its buffers by tile copies (tma 1, decode_mma.hpp) wherever the target has them, d is a
  // multiple of 64 and two threadgroups of three buffers fit an SM (128 threads, blocks of 64 rows:
  // 96 KiB of K and V at d 128), two threadgroups an SM's worth of splits: H200, us, the rule before
  // / tma (twenty-third session): b32 s4096 128.3 / 122.4, b64 s4096 247.7 / 238.8, b8 s32768 251.9
  // / 238.4, b1 s32768 41.0 / 38.9, b8 s4096 40.3 / 38.2; two buffers lose at b64 (251.0: three
  // threadgroups an SM, 1.3 waves of 512).
  // Two buffers rather than three where the threadgroups fit one wave at two an SM (three fit with
  // two buffers): after the last block lands a threadgroup still computes the blocks it holds, up to
  // 1.5 us of tensor-core work past the reads (ncu's PM sampling, twenty-fifth session). H200, us,
  // three / two: b1 s32768 39.36, 39.30 / 38.59, 38.94; b8 s4096 38.72, 38.82 / 38.08, 38.14; b32
  // s1024 36.8 / 36.6; b2 s16384 38.6, 38.8 / 38.5, 38.2; b32 s4096 125.0 / 125.1. Past a wave, two
  // buffers' three threadgroups an SM lose (b64 s4096 238.8 / 251.0, twenty-third session).
  // Not where the single-buffered form above takes short splits (b1 s4096 12.96 / 13.76, b2 s512
  // 5.32 / 5.46: its first block waits for a whole buffer); elsewhere off the table too: b16 s4096
  // 71.3 / 68.3, b4 s32768 133.1 / 127.6, b64 s1024 70.4 / 68.2, b8 s4096 at d 64 (cp.async into
  // the same three buffers) 25.0 / 24.0.
  rule::Expr tma_kv = 3 * 2 * 64 * d * 2;
  rule::Expr tma_fits = mma_fits && !mma_short && var("tile_copy") == 1 && d % 64 == 0 &&
                        2 * (tma_kv + mma_state) <= var("shared_memory");
  rule::Expr wide_splits = rule::clamp(2 * var("sm_count") / pairs, 1, split_room);
  rule::Expr wide_long =
      var("group") * d <= 1024 && pairs * wide_splits * 8 >= 2 * var("sm_count") * 7 && seq >= 2048 * wide_splits;
  rule::Expr trip_rows = threads / team * var("tile"),
             elem_bytes = rule::select(var("dtype_bytes") == 0, 4, var("dtype_bytes"));
  k.config = {
      {"group", heads / kv_heads},
      {"team", rule::min(simd, rule::pow2_ceil(rule::ceil_div(d, kChunk)))},
      {"chunks", rule::ceil_div(d, kChunk * team)},
      {"tile", rule::select(var("group") * var("chunks") <= 4, 4, 1)},
      {"dtiles", d / 16},
      {"mma", rule::select(tma_fits || (mma_fits && (mma_short || (mma_staged && !wide_long))), 1, 0)},
      {"bn", 16},
      {"threads", rule::select(var("mma") == 1, 4 * simd,
                               rule::select(wide_long || (var("group") * d <= 1024 &&
                                                          !(pairs < var("sm_count") &&
                                                            pairs * split_room * 8 >= var("sm_count") * 4 * 7)),
                                            8 * simd, 4 * simd))},
      {"splits", rule::select(var("mma") == 1, mma_splits,
                              rule::clamp(var("sm_count") * (16 * simd / threads) / pairs, 1, split_room))},
      {"stages", rule::select(var("mma") == 1,
                              rule::select(tma_fits, rule::select(pairs * splits <= 2 * var("sm_count"), 2, 3),
                                           rule::select(!mma_short && mma_staged, 2, 0)),
                              rule::select(var("async_copy") == 1 && seq >= splits * 4 * trip_rows &&
                                               4 * trip_rows * var("team") * var("chunks") * kChunk * elem_bytes <=
                                                   var("shared_memory") / 2,
                                           2, 0))},
      {"own_copies", rule::select(var("mma") == 0 && var("stages") >= 2, 1, 0)},  // the FMA body's
      {"tma",
       rule::select(var("mma") == 1 && tma_fits && var("stages") >= 2 && threads / simd * var("bn") <= 256, 1, 0)}};
  k.dispatch = {.grid = splits, .grid_y = kv_heads, .grid_z = batch, .tpg = var("threads")};
  k.preconditions = {batch >= 1, kv_heads >= 1, heads % kv_heads == 0, heads >= kv_heads,
                     var("group") == heads / kv_heads, seq >= 1, d >= kChunk, d % kChunk == 0, d <= 512, team >= 1,
                     simd % team == 0, var("chunks") * team * kChunk >= d, var("tile") >= 1, var("tile") <= 8,
                     var("stages") == 0 || (var("stages") >= 2 && var("stages") <= 8), var("own_copies") <= 1,
                     var("mma") <= 1,
                     // The tensor-core body: 16-bit inputs, d whole k-steps, the group in one A's rows.
                     var("mma") == 0 || (var("dtype_bytes") == 2 && var("dtiles") * 16 == d && var("group") <= 16 &&
                                         var("bn") >= 16 && var("bn") % 16 == 0),
                     // Its buffers by tile copies: boxes of 64 columns, up to 256 rows.
                     var("tma") == 0 || (var("tma") == 1 && var("mma") == 1 && var("stages") >= 2 &&
                                         var("tile_copy") == 1 && d % 64 == 0 && threads / simd * var("bn") <= 256),
                     threads % simd == 0, splits >= 1, splits <= split_cap, var("grid") == splits,
                     var("grid_y") == kv_heads, var("grid_z") == batch, var("tpg") == var("threads")};
  k.sizes = {{"q", batch * heads * d},
             {"k", pairs * seq * d},
             {"v", pairs * seq * d},
             {"out", batch * heads * d},
             {"workspace", batch * heads * split_cap * (d + 2)},
             {"counters", pairs}};
  k.scratch = {"workspace"};
  k.launch_constexprs = {"seq"};  // a decode loop's seq grows by one a step: no compile per step
  // Scores of a few units (scale 0.3 on products of d values in [-1, 1]): the softmax is far from
  // uniform and the running max moves. The workspace starts as NaN, so a partial read before it is
  // written shows in out; the counters start at 0, as the contract asks, and must end at 0.
  k.inits = {{"scale", Init::constant(0.3)}, {"workspace", Init::constant(NAN)}, {"counters", Init::constant(0)}};
  k.reference = [](const Shape& s, HostTensors& t) {
    uint64_t batch = dim(s, "batch"), heads = dim(s, "heads"), kv_heads = dim(s, "kv_heads"), seq = dim(s, "seq"),
             d = dim(s, "d");
    uint64_t group = heads / kv_heads;
    const double scale = t["scale"][0];
    const auto &q = t["q"], &kk = t["k"], &v = t["v"];
    auto& out = t["out"];
    spec::parallel_for(batch * heads, batch * heads * seq * d * 2, [&](uint64_t bh) {
      uint64_t b = bh / heads, h = bh % heads;
      uint64_t qa = bh * d, kva = (b * kv_heads + h / group) * seq * d;
      std::vector<double> score(seq);
      attend_reference(&q[qa], &kk[kva], &v[kva], seq, d, scale, &out[qa], score);
    });
  };
  k.tolerance = float_tolerances();
  k.output_tolerance = {{"counters", {0, 0, 0}}};
  // The minimal traffic: q, k, v and out once (the partials are a few percent more).
  k.bytes = var("dtype_bytes") * (2 * batch * heads * d + 2 * pairs * seq * d);
  k.flops = 4 * batch * heads * seq * d;
  k.example_shape = {{"batch", 1}, {"heads", 32}, {"kv_heads", 8}, {"seq", 1024}, {"d", 128}};
  k.test_shapes = {
      {{"batch", 1}, {"heads", 1}, {"kv_heads", 1}, {"seq", 1}, {"d", 64}},
      {{"batch", 2}, {"heads", 4}, {"kv_heads", 1}, {"seq", 7}, {"d", 128}},
      {{"batch", 1}, {"heads", 2}, {"kv_heads", 2}, {"seq", 100}, {"d", 64}},
      {{"batch", 1}, {"heads", 8}, {"kv_heads", 2}, {"seq", 1000}, {"d", 128}},
      {{"batch", 3}, {"heads", 2}, {"kv_heads", 2}, {"seq", 1000}, {"d", 64}},
      {{"batch", 1}, {"heads", 2}, {"kv_heads", 1}, {"seq", 300}, {"d", 96}},
      {{"batch", 1}, {"heads", 1}, {"kv_heads", 1}, {"seq", 50}, {"d", 8}},
      {{"batch", 1}, {"heads", 3}, {"kv_heads", 1}, {"seq", 129}, {"d", 256}},
  };
  for (uint32_t batch_size : {1u, 8u, 32u, 64u})
    for (uint32_t len : {4096u, 32768u})
      k.bench_shapes.push_back({{"batch", batch_size}, {"heads", 32}, {"kv_heads", 8}, {"seq", len}, {"d", 128}});
  return k;
}

}  // namespace mtile::lib
