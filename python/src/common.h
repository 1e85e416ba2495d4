// Shared by the binding files: the exceptions Python sees, numpy arrays over C++ buffers, and the
// compute-thread setting applied on the calling thread.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <mutex>
#include <stdexcept>
#include <string>

#include "core/tensor.h"
#include "image/preprocess.h"
#include "backend/backend.h"
#include "pipeline/embedder.h"

namespace clipkit::py {

namespace pyb = pybind11;

// Raised as clipkit.FileNotFoundError (a clipkit.Error and a builtins.FileNotFoundError).
struct NotFound : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Raised as clipkit.ValueError (a clipkit.Error and a builtins.ValueError): bad arguments, or a
// checkpoint whose configuration clipkit does not support.
struct BadValue : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Held (with the GIL released) around every forward pass, training run and index embedding: one
// oneDNN primitive must not run on two threads at once (its scratchpad is the library's, and
// primitives are shared by shape across models), so concurrent Python callers take turns on the
// model while their decoding and tokenizing still run side by side.
std::mutex& compute_mutex();

// "fp32" | "bf16" | "int8", and "pil" | "torchvision" (image_backend=), as ValueError otherwise.
backend::Precision precision_arg(const std::string& name);
image::ImageBackend image_backend_arg(const std::string& name);

// A numpy array viewing the tensor's buffer, which the array keeps alive (no copy).
pyb::array to_numpy(Tensor t);

// A _clipkit.Model's embedder and compute threads (TypeError when `model` is not one), and a new
// _clipkit.Model owning `e`.
const pipeline::Embedder& embedder_of(pyb::handle model);
int threads_of(pyb::handle model);
pyb::object wrap_embedder(std::unique_ptr<pipeline::Embedder> e, int threads);

// The registration functions of each binding file.
void bind_errors(pyb::module_& m);
void bind_model(pyb::module_& m);
void bind_index(pyb::module_& m);
void bind_train(pyb::module_& m);

}  // namespace clipkit::py
