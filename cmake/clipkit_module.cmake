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
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC ${M_DEPS})
endfunction()
