// io/safetensors: the header (length, JSON, dtypes, shapes, offsets) of an untrusted file.
#include "core/error.h"
#include "fuzz_util.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto f = clipkit::SafeTensorsFile::from_bytes(std::string(clipkit::fuzz::as_view(data, size)), "fuzz.safetensors");
    for (auto& [name, t] : f.tensors())
      if (t.nbytes() > 0) clipkit::fuzz::keep(static_cast<const uint8_t*>(t.data)[t.nbytes() - 1]);
  } catch (const clipkit::Error&) {
  }
  return 0;
}
