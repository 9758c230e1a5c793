// Several GPUs: NCCL communicators over mtile's CUDA backends (tensor parallelism). NCCL is loaded
// at run time, as the driver and NVRTC are: mtile builds without it and a machine without it can
// still run everything else. NVLink multicast (NVLS) is never used: NCCL_NVLS_ENABLE=0 is set
// before the first communicator unless the caller set it.
//
//   std::vector<Backend*> ranks = {&ctx.backend("cuda:0"), &ctx.backend("cuda:1")};
//   std::vector<Communicator> comms = Communicator::init_all(ranks);   // one process, 2 GPUs
//   all_reduce_sum(comms, send, recv);                                  // every rank, one group
#pragma once
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "mtile/runtime.hpp"

namespace mtile {

// Why NCCL can't be loaded here ("" when it can): libnccl.so.2 (or $MTILE_NCCL_LIBRARY) absent,
// or too old for a function mtile calls.
std::string nccl_unavailable_reason();
std::string nccl_version();  // "2.21.5"

// An opaque NCCL id that every process of a communicator shares (rank 0 makes it, the caller
// sends it to the others: a file, a socket, torch.distributed's store).
using NcclUniqueId = std::array<char, 128>;

// One rank's NCCL communicator, bound to that rank's CUDA backend. Move-only; destroys the NCCL
// communicator with it.
class Communicator {
 public:
  // One process driving every device of `ranks` (ncclCommInitAll): communicator r is rank r on
  // ranks[r], which must be distinct CUDA devices.
  static std::vector<Communicator> init_all(const std::vector<Backend*>& ranks);
  // One process per GPU: each process calls this with the same id, its rank and the count.
  static NcclUniqueId unique_id();
  static Communicator init_rank(Backend& device, const NcclUniqueId& id, int ranks, int rank);

  Communicator(Communicator&&) noexcept;
  Communicator& operator=(Communicator&&) noexcept;
  ~Communicator();
  int rank() const;
  int size() const;
  Backend& backend() const;

  // recv = the sum over ranks of every rank's send (the same element type and count on all;
  // recv may be send). Stream-ordered on `stream` (default: the backend's), capturable into a
  // CUDA graph. A process that drives several ranks calls it for each of them between
  // group_start() and group_end() (or uses all_reduce_sum below).
  void all_reduce_sum(const Buffer& send, Buffer& recv, const Stream* stream = nullptr);

 private:
  struct Impl;
  explicit Communicator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ncclGroupStart / ncclGroupEnd: collectives of several ranks issued by one thread.
void nccl_group_start();
void nccl_group_end();
// Every rank's all_reduce_sum in one group: send[r], recv[r] and streams[r] (nullptr entries or an
// empty vector: the backends' own streams) belong to comms[r].
void all_reduce_sum(std::vector<Communicator>& comms, const std::vector<const Buffer*>& send,
                    const std::vector<Buffer*>& recv, const std::vector<const Stream*>& streams = {});

}  // namespace mtile
