// The process-wide oneDNN CPU engine and stream (oneDNN runs on the same OpenMP runtime as our ops).
#pragma once
#include <dnnl.hpp>

namespace clipkit::ops {

dnnl::engine& cpu_engine();
dnnl::stream& cpu_stream();

}  // namespace clipkit::ops
