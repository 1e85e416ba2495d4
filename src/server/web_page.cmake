# The web page is compiled into the binary: src/server/web/index.html becomes a string constant in
# a generated header (re-generated whenever the page changes).
if(NOT TARGET clipkit_server)
  return()
endif()
set(_page ${CMAKE_CURRENT_SOURCE_DIR}/server/web/index.html)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_page})
file(READ ${_page} CLIPKIT_WEB_PAGE)
file(CONFIGURE OUTPUT ${CMAKE_BINARY_DIR}/generated/server/web_page.h
     CONTENT "// Generated from src/server/web/index.html by src/server/web_page.cmake. Do not edit.\n#pragma once\nnamespace clipkit::server {\ninline constexpr const char kWebPage[] = R\"CLIPKIT_WEB(@CLIPKIT_WEB_PAGE@)CLIPKIT_WEB\";\n}\n"
     @ONLY)
target_include_directories(clipkit_server PRIVATE ${CMAKE_BINARY_DIR}/generated)
