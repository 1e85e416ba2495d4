# The standalone GPU build (-DCLIPKIT_STANDALONE_GPU=ON) for a bare GPU machine that has a C++
# compiler, CMake, Ninja and the CUDA toolkit and none of the Debian -dev packages:
#   - the small libraries come from .gpudeps/ (bench/gpu/gather_deps.sh unpacks them from Debian
#     packages here): nlohmann-json, CLI11, fmt, libjpeg-turbo, libpng + zlib, libwebp, giflib,
#     utf8proc, and googletest's sources (built here, clipkit_standalone_gtest());
#   - oneDNN, FAISS, FFmpeg, SQLite, cpp-httplib and MPI are not looked for: every module that needs
#     one is left out with a message (cmake/clipkit_module.cmake), and so are the CLI and benchmarks.
set(CLIPKIT_GPUDEPS "${PROJECT_SOURCE_DIR}/.gpudeps" CACHE PATH "unpacked Debian packages of the standalone GPU build")
if(EXISTS "${CLIPKIT_GPUDEPS}/usr")
  list(PREPEND CMAKE_PREFIX_PATH "${CLIPKIT_GPUDEPS}/usr")
  include_directories(SYSTEM "${CLIPKIT_GPUDEPS}/usr/include")  # (utf8proc.h: linked by path, no target)
  message(STATUS "clipkit: standalone GPU build, libraries from ${CLIPKIT_GPUDEPS}")
else()
  message(STATUS "clipkit: standalone GPU build, no ${CLIPKIT_GPUDEPS}: libraries from the system")
endif()
message(STATUS "clipkit: standalone GPU build leaves out oneDNN, FAISS, FFmpeg, SQLite, cpp-httplib and MPI, "
               "and the modules that need them")
set(DNNL_LIB DNNL_LIB-NOTFOUND)

# libwebp without pkg-config (a bare machine may not have it): the target the image layer links.
find_path(CLIPKIT_WEBP_INCLUDE webp/decode.h REQUIRED)
find_library(CLIPKIT_WEBP_LIB webp REQUIRED)
add_library(PkgConfig::WEBP INTERFACE IMPORTED)
target_include_directories(PkgConfig::WEBP INTERFACE ${CLIPKIT_WEBP_INCLUDE})
target_link_libraries(PkgConfig::WEBP INTERFACE ${CLIPKIT_WEBP_LIB})

# GTest::gtest / GTest::gtest_main: the installed package if there is one, else googletest built
# from the sources Debian's libgtest-dev ships (usr/src/googletest), without our warning flags.
macro(clipkit_standalone_gtest)
  find_package(GTest QUIET)
  if(NOT GTest_FOUND)
    find_path(CLIPKIT_GTEST_SOURCE CMakeLists.txt PATHS "${CLIPKIT_GPUDEPS}/usr/src/googletest" /usr/src/googletest
              NO_DEFAULT_PATH REQUIRED)
    get_directory_property(_clipkit_opts COMPILE_OPTIONS)
    set_directory_properties(PROPERTIES COMPILE_OPTIONS "")
    set(BUILD_GMOCK OFF CACHE BOOL "" FORCE)
    set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
    add_subdirectory(${CLIPKIT_GTEST_SOURCE} ${CMAKE_BINARY_DIR}/googletest EXCLUDE_FROM_ALL)
    set_directory_properties(PROPERTIES COMPILE_OPTIONS "${_clipkit_opts}")
    if(NOT TARGET GTest::gtest)  # (googletest 1.11+ defines these itself)
      add_library(GTest::gtest ALIAS gtest)
      add_library(GTest::gtest_main ALIAS gtest_main)
    endif()
    message(STATUS "clipkit: googletest from ${CLIPKIT_GTEST_SOURCE}")
  endif()
endmacro()
