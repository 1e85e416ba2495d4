// A backend tensor: dtype + shape + storage on the backend's device, allocated by the backend
// (Backend::alloc, or an Arena). The model layer passes these to backend ops and never reads or
// writes their elements: only backend implementations touch data().
#pragma once
#include <cstdint>
#include <memory>

#include "core/tensor.h"

namespace clipkit::backend {

class Tensor {
 public:
  Tensor() = default;
  Tensor(DType t, Shape s, void* data, std::shared_ptr<void> storage)
      : dtype_(t), shape_(std::move(s)), data_(data), storage_(std::move(storage)) {}

  bool defined() const { return data_ != nullptr || !shape_.empty(); }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t numel() const { return clipkit::numel(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  int64_t dim(int i) const { return shape_.at(i < 0 ? shape_.size() + i : i); }
  int64_t cols() const { return shape_.empty() ? 1 : shape_.back(); }  // the last dimension
  int64_t rows() const { return cols() ? numel() / cols() : 0; }       // the product of the others

  // The same storage seen with another shape of as many elements.
  Tensor view(Shape s) const;
  // Rows [begin, end) of the first dimension (a view).
  Tensor slice(int64_t begin, int64_t end) const;
  bool same_storage(const Tensor& o) const { return data_ == o.data_; }

  // For backend implementations only: the device address of the first element.
  void* data() const { return data_; }
  template <typename T> T* as() const { return static_cast<T*>(data_); }

 private:
  DType dtype_ = DType::F32;
  Shape shape_;
  void* data_ = nullptr;
  std::shared_ptr<void> storage_;  // keeps data_ alive
};

}  // namespace clipkit::backend
