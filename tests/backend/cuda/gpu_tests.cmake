# gpu_tests: the CUDA kernels against the CPU ops (or float64 references) on odd shapes, forward and
# backward, plus host-side checks of the runtime that need no GPU. Label "gpu"; every test that
# needs a device skips (GTEST_SKIP) without one. Needs no fixtures from tests/data.
#
# The CPU references are the oneDNN-free CPU ops and the training loss / optimizer, compiled here
# from their sources so that the standalone GPU build (no oneDNN) has them too.
add_library(clipkit_cpu_ref STATIC
  ${PROJECT_SOURCE_DIR}/src/ops/activation.cpp ${PROJECT_SOURCE_DIR}/src/ops/dropout_mask.cpp
  ${PROJECT_SOURCE_DIR}/src/ops/embedding.cpp ${PROJECT_SOURCE_DIR}/src/ops/layernorm.cpp
  ${PROJECT_SOURCE_DIR}/src/ops/pooling.cpp ${PROJECT_SOURCE_DIR}/src/ops/tanh.cpp
  ${PROJECT_SOURCE_DIR}/src/train/clip_loss.cpp ${PROJECT_SOURCE_DIR}/src/train/optimizer.cpp)
target_include_directories(clipkit_cpu_ref PUBLIC ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(clipkit_cpu_ref PUBLIC clipkit_core)

file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*_test.cpp)
add_executable(gpu_tests ${srcs})
target_link_libraries(gpu_tests PRIVATE clipkit_cuda clipkit_cpu_ref clipkit_image GTest::gtest GTest::gtest_main)
target_include_directories(gpu_tests PRIVATE ${PROJECT_SOURCE_DIR}/tests)
gtest_discover_tests(gpu_tests DISCOVERY_MODE PRE_TEST PROPERTIES LABELS "gpu")
