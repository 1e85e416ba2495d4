# gpu_tests: the CUDA kernels against the CPU backend's kernels (or float64 references) on odd
# shapes, forward and backward, plus host-side checks of the runtime that need no GPU. Label "gpu";
# every test that needs a device skips (GTEST_SKIP) without one. Needs no fixtures from tests/data.
#
# The CPU references are the CPU backend's oneDNN-free kernels (src/backend/cpu), compiled here
# from their sources so that the standalone GPU build (no oneDNN) has them too.
set(_cpu ${PROJECT_SOURCE_DIR}/src/backend/cpu)
add_library(clipkit_cpu_ref STATIC
  ${_cpu}/activation.cpp ${_cpu}/clip_loss.cpp ${_cpu}/dropout.cpp ${_cpu}/embedding.cpp
  ${_cpu}/im2col.cpp ${_cpu}/layernorm.cpp ${_cpu}/optimizer.cpp)
target_include_directories(clipkit_cpu_ref PUBLIC ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(clipkit_cpu_ref PUBLIC clipkit_backend)

file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*_test.cpp)
add_executable(gpu_tests ${srcs})
target_link_libraries(gpu_tests PRIVATE clipkit_cuda clipkit_cpu_ref clipkit_image GTest::gtest GTest::gtest_main)
target_include_directories(gpu_tests PRIVATE ${PROJECT_SOURCE_DIR}/tests)
gtest_discover_tests(gpu_tests DISCOVERY_MODE PRE_TEST PROPERTIES LABELS "gpu")
