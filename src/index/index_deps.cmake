# Packages of the index and server layers (issue 7): FAISS, SQLite, cpp-httplib (header + shared lib).
find_package(faiss REQUIRED GLOBAL)
find_package(SQLite3 REQUIRED GLOBAL)
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET GLOBAL cpp-httplib)
# bench/index_bench.cpp needs the index library; bench/ is configured after src/, so link it once
# the whole project has been read.
function(_clipkit_link_index_bench)
  if(TARGET index_bench)
    target_link_libraries(index_bench PRIVATE clipkit_index)
  endif()
endfunction()
cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL _clipkit_link_index_bench)
