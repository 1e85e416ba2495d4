// io/npy: the header of an untrusted .npy (shape arithmetic, versions, dtypes).
#include "core/error.h"
#include "fuzz_util.h"
#include "io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    clipkit::Tensor t = clipkit::parse_npy(clipkit::fuzz::as_view(data, size), "fuzz.npy");
    if (t.nbytes() > 0) clipkit::fuzz::keep(static_cast<const uint8_t*>(t.data)[t.nbytes() - 1]);
  } catch (const clipkit::Error&) {
  }
  return 0;
}
