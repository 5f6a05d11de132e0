# Checks of the tree besides the C sources' own tests.

# style.shellcheck: the shell scripts of tools/, tests/ and .ci/ (and the
# broker setup script) pass shellcheck, with .shellcheckrc's settings. Run
# from the top of the tree, where the scripts' "# shellcheck source=PATH"
# directives are rooted.
find_program(SHELLCHECK shellcheck)
if(SHELLCHECK)
  file(GLOB GRADEQ_SHELL_SCRIPTS CONFIGURE_DEPENDS
    ${CMAKE_SOURCE_DIR}/tools/*
    ${CMAKE_SOURCE_DIR}/.ci/*
    ${CMAKE_SOURCE_DIR}/tests/integration/*.sh
    ${CMAKE_SOURCE_DIR}/tests/style/*.sh
    ${CMAKE_SOURCE_DIR}/packaging/rabbitmq/setup)
  list(FILTER GRADEQ_SHELL_SCRIPTS EXCLUDE REGEX "\\.(py|md)$")
  add_test(NAME style.shellcheck COMMAND ${SHELLCHECK} -x ${GRADEQ_SHELL_SCRIPTS}
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(style.shellcheck PROPERTIES LABELS unit)
else()
  message(STATUS "shellcheck not found: no style.shellcheck test (tools/deps installs it)")
endif()

# style.sql-in-store: SQL text and libpq calls only in the store modules
# (src/store.c, src/store/, the migrations in src/sql/).
add_test(NAME style.sql-in-store COMMAND bash ${CMAKE_SOURCE_DIR}/tests/style/sql-in-store.sh
  ${CMAKE_SOURCE_DIR})
set_tests_properties(style.sql-in-store PROPERTIES LABELS unit)
