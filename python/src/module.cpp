// The _clipkit extension module: errors and array helpers here; each area in its own file.
#include <Python.h>

#include "common.h"
#include "core/error.h"

namespace clipkit::py {

std::mutex& compute_mutex() {
  static std::mutex m;
  return m;
}

backend::Precision precision_arg(const std::string& name) {
  try {
    return backend::precision_from_name(name);
  } catch (const Error& e) {
    throw BadValue(e.what());
  }
}

image::ImageBackend image_backend_arg(const std::string& name) {
  try {
    return image::image_backend_from_name(name, "image_backend");
  } catch (const Error& e) {
    throw BadValue(e.what());
  }
}

pyb::array to_numpy(Tensor t) {
  pyb::dtype dt;
  switch (t.dtype) {
    case DType::F32: dt = pyb::dtype::of<float>(); break;
    case DType::F64: dt = pyb::dtype::of<double>(); break;
    case DType::I64: dt = pyb::dtype::of<int64_t>(); break;
    case DType::I32: dt = pyb::dtype::of<int32_t>(); break;
    case DType::U8: dt = pyb::dtype::of<uint8_t>(); break;
    default: throw BadValue(std::string("a tensor of dtype ") + dtype_name(t.dtype) + " has no numpy equivalent here");
  }
  std::vector<pyb::ssize_t> shape(t.shape.begin(), t.shape.end()), strides(t.shape.size());
  pyb::ssize_t s = static_cast<pyb::ssize_t>(dtype_size(t.dtype));
  for (size_t i = t.shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= static_cast<pyb::ssize_t>(t.shape[i]);
  }
  void* data = t.data;
  auto* owner = new Tensor(std::move(t));
  pyb::capsule base(owner, [](void* p) { delete static_cast<Tensor*>(p); });
  return pyb::array(dt, shape, strides, data, base);
}

void bind_errors(pyb::module_& m) {
  // clipkit.Error (RuntimeError) and its FileNotFoundError / ValueError flavours, so both
  // `except clipkit.Error` and `except FileNotFoundError` catch what the library raises.
  static PyObject* error = PyErr_NewExceptionWithDoc("clipkit.Error", "An error clipkit's library reported.",
                                                     PyExc_RuntimeError, nullptr);
  static PyObject* not_found = PyErr_NewExceptionWithDoc(
      "clipkit.FileNotFoundError", "A file or folder clipkit was given does not exist.",
      pyb::make_tuple(pyb::handle(error), pyb::handle(PyExc_FileNotFoundError)).release().ptr(), nullptr);
  static PyObject* bad_value = PyErr_NewExceptionWithDoc(
      "clipkit.ValueError", "An argument or a checkpoint setting clipkit does not accept.",
      pyb::make_tuple(pyb::handle(error), pyb::handle(PyExc_ValueError)).release().ptr(), nullptr);
  m.attr("Error") = pyb::handle(error);
  m.attr("FileNotFoundError") = pyb::handle(not_found);
  m.attr("ValueError") = pyb::handle(bad_value);
  pyb::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const NotFound& e) {
      PyErr_SetString(not_found, e.what());
    } catch (const BadValue& e) {
      PyErr_SetString(bad_value, e.what());
    } catch (const Error& e) {
      PyErr_SetString(error, e.what());
    }
  });
}

}  // namespace clipkit::py

PYBIND11_MODULE(_clipkit, m) {
  m.doc() = "clipkit's C++ library (use the `clipkit` package, which wraps this module)";
  clipkit::py::bind_errors(m);
  clipkit::py::bind_model(m);
  clipkit::py::bind_index(m);
  clipkit::py::bind_train(m);
}
