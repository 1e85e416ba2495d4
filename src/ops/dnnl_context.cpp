#include "ops/dnnl_context.h"

#include "core/error.h"
#include "ops/precision.h"

namespace clipkit::ops {

dnnl::engine& cpu_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& cpu_stream() {
  static dnnl::stream s(cpu_engine());
  return s;
}

Precision precision_from_name(const std::string& s) {
  if (s == "fp32" || s == "f32" || s == "float32") return Precision::F32;
  if (s == "bf16" || s == "bfloat16") return Precision::BF16;
  fail("unknown precision \"{}\" (use fp32 or bf16)", s);
}

const char* precision_name(Precision p) { return p == Precision::F32 ? "fp32" : "bf16"; }

}  // namespace clipkit::ops
