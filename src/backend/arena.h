// A reusable region of device memory for the tensors of one pass (activations, what a training
// forward saves for its backward, scratch). Allocation bumps a pointer; a Scope gives back
// everything allocated inside it. The first passes grow it block by block; when everything has
// been given back, the blocks are merged into one of the largest size used, so steady-state
// passes allocate nothing. Tensors from an arena do not own their memory: they are valid until
// the Scope that allocated them ends.
#pragma once
#include <cstddef>
#include <memory>
#include <vector>

#include "backend/tensor.h"

namespace clipkit::backend {

class Backend;

class Arena {
 public:
  explicit Arena(Backend& be) : be_(be) {}
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  Tensor alloc(DType t, Shape s);  // uninitialized, 64-byte aligned
  Backend& backend() const { return be_; }
  size_t high_water() const { return high_; }  // most bytes in use at once so far

  struct Mark {
    size_t block = 0, offset = 0, used = 0;
  };
  Mark mark() const { return {cur_, off_, used_}; }
  void release(const Mark& m);

  class Scope {
   public:
    explicit Scope(Arena& a) : a_(a), m_(a.mark()) {}
    ~Scope() { a_.release(m_); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Arena& a_;
    Mark m_;
  };

 private:
  struct Block {
    std::shared_ptr<void> mem;
    size_t size = 0;
  };
  Backend& be_;
  std::vector<Block> blocks_;
  size_t cur_ = 0, off_ = 0, used_ = 0, high_ = 0;
};

}  // namespace clipkit::backend
