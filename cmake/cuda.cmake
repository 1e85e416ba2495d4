# The CUDA toolchain for -DCLIPKIT_CUDA=ON: nvcc (the toolkit's, /usr/local/cuda by default), native
# code for compute capability 9.0 (H100/H200) plus its PTX (so a newer GPU JIT-compiles it), cuBLASLt
# and cuBLAS; NCCL when the toolkit has it (multi-GPU data parallel: src/dist/nccl_comm).
if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
  set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
endif()
if(NOT CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 90)  # "90" = sm_90 SASS + compute_90 PTX
endif()
enable_language(CUDA)
# C++20 in .cu files, as in the C++ build. CMake 3.25 does not know nvcc's flag for it yet (later
# versions do): tell it.
if(NOT CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
  set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
  set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
endif()
set(CMAKE_CUDA_STANDARD 20)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
set(CMAKE_CUDA_EXTENSIONS OFF)
set(CMAKE_CUDA_FLAGS_RELEASE "-O3 -DNDEBUG")
find_package(CUDAToolkit REQUIRED)
message(STATUS "clipkit: CUDA ${CUDAToolkit_VERSION} (${CMAKE_CUDA_COMPILER}), architectures ${CMAKE_CUDA_ARCHITECTURES}")
if(NOT TARGET CUDA::cublasLt)
  message(FATAL_ERROR "clipkit: -DCLIPKIT_CUDA=ON needs cuBLASLt (libcublasLt) from the CUDA toolkit in ${CUDAToolkit_LIBRARY_DIR}")
endif()
find_library(CLIPKIT_NCCL_LIB nccl HINTS ${CUDAToolkit_LIBRARY_DIR})
find_path(CLIPKIT_NCCL_INCLUDE nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
if(CLIPKIT_NCCL_LIB AND CLIPKIT_NCCL_INCLUDE)
  message(STATUS "clipkit: NCCL ${CLIPKIT_NCCL_LIB}")
else()
  message(STATUS "clipkit: no NCCL (multi-GPU data parallel will be left out)")
endif()
# nvcc's flags: warnings in device and host code (errors where CLIPKIT_WERROR, as in the C++ build);
# constexpr host functions (core/tensor.h's bf16 rounding, ops/dropout_mask.h's hash) callable from
# device code; line info for compute-sanitizer and ncu.
set(CLIPKIT_CUDA_FLAGS --expt-relaxed-constexpr -lineinfo "SHELL:-Xcompiler=-Wall,-Wextra,-Wno-unused-parameter")
if(CLIPKIT_WERROR)
  list(APPEND CLIPKIT_CUDA_FLAGS "SHELL:--Werror all-warnings" "SHELL:-Xcompiler=-Werror")
endif()
