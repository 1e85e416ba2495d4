#include "backend/cpu/dnnl_context.h"

namespace clipkit::backend::cpu {

dnnl::engine& cpu_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& cpu_stream() {
  static dnnl::stream s(cpu_engine());
  return s;
}

}  // namespace clipkit::backend::cpu
