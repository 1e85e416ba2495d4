#include "core/parallel.h"

#include <omp.h>

namespace clipkit {

void set_num_threads(int n) {
  if (n <= 0) n = omp_get_num_procs();
  omp_set_num_threads(n);
}

int num_threads() { return omp_get_max_threads(); }
int num_cores() { return omp_get_num_procs(); }
int thread_index() { return omp_get_thread_num(); }

}  // namespace clipkit
