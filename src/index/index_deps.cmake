# Packages of the index and server layers (issue 7): FAISS, SQLite, cpp-httplib (header + shared lib).
if(CLIPKIT_STANDALONE_GPU)
  return()  # not in the standalone GPU build (cmake/standalone_gpu.cmake)
endif()
find_package(faiss REQUIRED GLOBAL)
find_package(SQLite3 REQUIRED GLOBAL)
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET GLOBAL cpp-httplib)
