# gradeq-web: its library (src/web/, linked only by gradeq-web and its unit
# test) and the page's files (web/) embedded as byte arrays in a generated
# source; configure runs again when one of them changes.
pkg_check_modules(MICROHTTPD REQUIRED IMPORTED_TARGET libmicrohttpd)
pkg_check_modules(LIBCRYPT REQUIRED IMPORTED_TARGET libcrypt)
find_package(Threads REQUIRED)

set(GRADEQ_WEB_FILES index.html app.js style.css)
set(GRADEQ_WEB_C "/* Generated from web/ by cmake/web.cmake: do not edit. */\n")
string(APPEND GRADEQ_WEB_C "#include \"web/internal.h\"\n")
set(GRADEQ_WEB_TABLE "")
set(GRADEQ_WEB_N 0)
foreach(fname ${GRADEQ_WEB_FILES})
  set(f ${CMAKE_SOURCE_DIR}/web/${fname})
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${f})
  file(READ ${f} hex HEX)
  string(LENGTH "${hex}" hexlen)
  math(EXPR len "${hexlen} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(APPEND GRADEQ_WEB_C "static const unsigned char web_${GRADEQ_WEB_N}[] = {${bytes}0};\n")
  string(APPEND GRADEQ_WEB_TABLE "\t{\"${fname}\", (const char *)web_${GRADEQ_WEB_N}, ${len}},\n")
  math(EXPR GRADEQ_WEB_N "${GRADEQ_WEB_N} + 1")
endforeach()
string(APPEND GRADEQ_WEB_C "const struct gradeq_web_file gradeq_web_files[] = {\n"
  "${GRADEQ_WEB_TABLE}};\nconst size_t gradeq_web_nfiles = ${GRADEQ_WEB_N};\n")
file(WRITE ${CMAKE_BINARY_DIR}/gradeq_web_files.c.new "${GRADEQ_WEB_C}")
configure_file(${CMAKE_BINARY_DIR}/gradeq_web_files.c.new ${CMAKE_BINARY_DIR}/gradeq_web_files.c COPYONLY)

file(GLOB GRADEQ_WEB_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/web/*.c)
add_library(gradeq_web STATIC ${GRADEQ_WEB_SOURCES} ${CMAKE_BINARY_DIR}/gradeq_web_files.c)
target_include_directories(gradeq_web PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(gradeq_web PUBLIC gradeq PkgConfig::MICROHTTPD PkgConfig::LIBCRYPT
  Threads::Threads)
