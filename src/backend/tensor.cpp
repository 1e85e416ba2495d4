#include "backend/tensor.h"

#include "core/error.h"

namespace clipkit::backend {

Tensor Tensor::view(Shape s) const {
  CLIPKIT_ASSERT(clipkit::numel(s) == numel());
  return Tensor(dtype_, std::move(s), data_, storage_);
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  CLIPKIT_ASSERT(!shape_.empty() && 0 <= begin && begin <= end && end <= shape_[0]);
  Shape s = shape_;
  s[0] = end - begin;
  const size_t row_bytes = shape_[0] ? nbytes() / static_cast<size_t>(shape_[0]) : 0;
  return Tensor(dtype_, std::move(s), static_cast<char*>(data_) + begin * row_bytes, storage_);
}

}  // namespace clipkit::backend
