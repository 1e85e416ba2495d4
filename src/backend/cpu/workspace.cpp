#include "backend/cpu/workspace.h"

namespace clipkit::backend::cpu {

float* Workspace::get(int slot, size_t n) {
  if (static_cast<size_t>(slot) >= bufs_.size()) bufs_.resize(static_cast<size_t>(slot) + 1);
  Buf& b = bufs_[static_cast<size_t>(slot)];
  if (b.n < n) {
    b.p.reset(new float[n]);
    b.n = n;
  }
  return b.p.get();
}

Workspace& Workspace::local() {
  thread_local Workspace w;
  return w;
}

}  // namespace clipkit::backend::cpu
