# clipkit_module(NAME DIR DEPS ...): a static library from every .cpp in src/DIR.
# A module whose dependency is missing from this configuration (a dependency named without a path
# that is no target -- a clipkit_* library, an imported target --, or a library variable that is
# *-NOTFOUND: the standalone GPU build leaves oneDNN, FAISS, FFmpeg, SQLite, cpp-httplib and MPI out)
# is left out with a message naming what it lacks, and so is everything built on it.
function(clipkit_module name dir)
  cmake_parse_arguments(M "" "" "DEPS" ${ARGN})
  foreach(dep ${M_DEPS})
    if(dep MATCHES "-NOTFOUND$" OR (NOT dep MATCHES "/" AND NOT TARGET ${dep}))
      string(REGEX REPLACE "-NOTFOUND$" "" dep "${dep}")
      message(STATUS "clipkit: ${name} (src/${dir}) left out of this build: it needs ${dep}")
      return()
    endif()
  endforeach()
  file(GLOB srcs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${dir}/*.cpp)
  add_library(${name} STATIC ${srcs})
  # position-independent: the Python extension module (python/) links these into a shared object
  set_target_properties(${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC ${M_DEPS})
endfunction()

# clipkit_tests(NAME DIR DEPS ...): one GoogleTest binary from every *_test.cpp in tests/DIR.
function(clipkit_tests name dir)
  cmake_parse_arguments(T "" "" "DEPS;LABELS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/${dir}/*_test.cpp)
  if(NOT srcs)
    return()
  endif()
  add_executable(${name} ${srcs})
  target_link_libraries(${name} PRIVATE ${T_DEPS} GTest::gtest GTest::gtest_main)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_compile_definitions(${name} PRIVATE CLIPKIT_TEST_DATA="${PROJECT_SOURCE_DIR}/tests/data"
                                             CLIPKIT_BINARY="$<TARGET_FILE:clipkit>")
  add_dependencies(${name} clipkit)
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST PROPERTIES LABELS "${dir};${T_LABELS}")
endfunction()
