# Installation (`cmake --install build [--prefix P]`):
#   bin/clipkit                          the command-line tool
#   lib/libclipkit.so*                   the public API (include/clipkit/clipkit.h)
#   include/clipkit/*.h                  its headers
#   lib/cmake/clipkit/                   find_package(clipkit) -> clipkit::clipkit
#   lib/pkgconfig/clipkit.pc             pkg-config --cflags --libs clipkit
#   share/clipkit/assets/                the bundled tokenizer files (clipkit init)
# and a Debian package of the same (`cd build && cpack -G DEB`), its Depends computed from the
# binaries by dpkg-shlibdeps.
include(CMakePackageConfigHelpers)

install(TARGETS clipkit RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS clipkit_api EXPORT clipkitTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/clipkit DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/assets/ DESTINATION ${CMAKE_INSTALL_DATADIR}/clipkit/assets)

set(_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/clipkit)
install(EXPORT clipkitTargets NAMESPACE clipkit:: DESTINATION ${_cmake_dir})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/clipkitConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/clipkitConfig.cmake INSTALL_DESTINATION ${_cmake_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/clipkitConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/clipkitConfig.cmake ${PROJECT_BINARY_DIR}/clipkitConfigVersion.cmake
        DESTINATION ${_cmake_dir})
file(RELATIVE_PATH CLIPKIT_PC_TO_PREFIX /root/${CMAKE_INSTALL_LIBDIR}/pkgconfig /root)  # relocatable: via ${pcfiledir}
configure_file(${PROJECT_SOURCE_DIR}/cmake/clipkit.pc.in ${PROJECT_BINARY_DIR}/clipkit.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/clipkit.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The Debian changelog a package needs (native package: one entry per version).
string(TIMESTAMP _date "%a, %d %b %Y %H:%M:%S +0000" UTC)
set(CLIPKIT_PACKAGE_CONTACT "clipkit maintainers <clipkit@localhost>" CACHE STRING "Maintainer of the .deb")
file(WRITE ${PROJECT_BINARY_DIR}/debian/changelog
     "clipkit (${PROJECT_VERSION}) unstable; urgency=medium\n\n  * Release ${PROJECT_VERSION}.\n\n -- ${CLIPKIT_PACKAGE_CONTACT}  ${_date}\n")
file(WRITE ${PROJECT_BINARY_DIR}/debian/triggers "activate-noawait ldconfig\n")  # libclipkit.so in /usr/lib
find_program(GZIP_EXECUTABLE gzip REQUIRED)
execute_process(COMMAND ${GZIP_EXECUTABLE} -9nf ${PROJECT_BINARY_DIR}/debian/changelog)
install(FILES ${PROJECT_BINARY_DIR}/debian/changelog.gz DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME clipkit)
set(CPACK_PACKAGE_VENDOR "clipkit")
set(CPACK_PACKAGE_CONTACT "${CLIPKIT_PACKAGE_CONTACT}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "CLIP models in one C++ toolkit: embed, train, index, search, serve")
set(CPACK_PACKAGE_DESCRIPTION
    "clipkit loads Hugging Face CLIP checkpoints as they are, tokenizes and
preprocesses exactly like transformers, embeds images and texts on the CPU,
trains, builds FAISS indexes and serves search over HTTP. This package holds
the clipkit command, libclipkit (a small C++ API), its headers, CMake package
and pkg-config file.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # Depends: from the libraries the binaries link (dpkg-shlibdeps)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_BINARY_DIR}/debian/triggers)
set(CPACK_STRIP_FILES ON)
include(CPack)
