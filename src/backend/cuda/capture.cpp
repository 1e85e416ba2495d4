#include "backend/cuda/capture.h"

#include <cstring>

namespace clipkit::cuda {

void HostRanges::add(const void* p, size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  ranges_[reinterpret_cast<uintptr_t>(p)] = bytes;
}

void HostRanges::remove(const void* p) {
  std::lock_guard<std::mutex> lock(mu_);
  ranges_.erase(reinterpret_cast<uintptr_t>(p));
}

bool HostRanges::contains(const void* p, size_t bytes) const {
  std::lock_guard<std::mutex> lock(mu_);
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = ranges_.upper_bound(a);  // the first range starting after p
  if (it == ranges_.begin()) return false;
  --it;
  return a - it->first <= it->second && bytes <= it->second - (a - it->first);
}

CaptureLog::CaptureLog(Allocator a) : a_(a) {}

CaptureLog::~CaptureLog() {
  for (void* p : owned_) a_.free(p);
}

void* CaptureLog::own(size_t bytes) {
  void* p = a_.alloc(bytes ? bytes : 1);
  owned_.push_back(p);
  return p;
}

const void* CaptureLog::record_input(const void* host, const void* dst, size_t bytes, bool live) {
  void* snap = nullptr;
  if (!live) {
    snap = own(bytes);
    if (bytes) std::memcpy(snap, host, bytes);
  }
  ins_.push_back({host, dst, bytes, snap});
  return live ? host : snap;
}

void* CaptureLog::record_download(const void* src, size_t bytes) {
  void* c = own(bytes);
  outs_.push_back({src, bytes, c});
  return c;
}

void CaptureLog::begin_replay() { in_ = out_ = 0; }

void CaptureLog::check_input(const void* host, const void* dst, size_t bytes) const {
  if (in_ >= ins_.size()) throw ReplayMismatch("an input the recorded pass did not have");
  const In& r = ins_[in_];
  if (r.dst != dst || r.bytes != bytes) throw ReplayMismatch("an input of another size or device address");
  if (!r.snapshot && r.host != host) throw ReplayMismatch("an input from another host buffer");
  if (r.snapshot && bytes && std::memcmp(r.snapshot, host, bytes) != 0)
    throw ReplayMismatch("an index input with other values");
}

const void* CaptureLog::check_download(const void* src, size_t bytes) const {
  if (out_ >= outs_.size()) throw ReplayMismatch("a download the recorded pass did not have");
  const Out& r = outs_[out_];
  if (r.src != src || r.bytes != bytes) throw ReplayMismatch("a download of another size or device address");
  return r.copy;
}

void CaptureLog::end_replay() const {
  if (in_ != ins_.size() || out_ != outs_.size()) throw ReplayMismatch("the pass stopped short of the recorded one");
}

}  // namespace clipkit::cuda
