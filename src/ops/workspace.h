// Reusable scratch buffers for inference: each slot grows to the largest size asked and is kept,
// so steady-state forward passes allocate nothing (and don't page-fault fresh memory).
// One workspace per thread (thread_local), so concurrent callers never share buffers.
#pragma once
#include <cstddef>
#include <memory>
#include <vector>

namespace clipkit::ops {

class Workspace {
 public:
  // An uninitialized float buffer of at least n elements for `slot` (valid until the slot is asked again).
  float* get(int slot, size_t n);
  static Workspace& local();

 private:
  struct Buf {
    std::unique_ptr<float[]> p;
    size_t n = 0;
  };
  std::vector<Buf> bufs_;
};

}  // namespace clipkit::ops
