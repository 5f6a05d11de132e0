# The Debian package (cpack -G DEB): the programs, the configuration as a
# conffile, the systemd units, the man pages, maintainer scripts that create
# the gradeq system user. Build packages with
#   cmake -DGRADEQ_DEFAULT_CONF=/etc/gradeq/gradeq.conf -DCMAKE_INSTALL_PREFIX=/usr ..
# so that the programs read the installed configuration without -c.

install(FILES ${CMAKE_SOURCE_DIR}/conf/gradeq.conf DESTINATION /etc/gradeq)
file(GLOB GRADEQ_UNITS ${CMAKE_SOURCE_DIR}/packaging/systemd/*.service
  ${CMAKE_SOURCE_DIR}/packaging/systemd/*.target)
install(FILES ${GRADEQ_UNITS} DESTINATION /lib/systemd/system)
# The man pages name the configuration file this build reads without -c
# (GRADEQ_DEFAULT_CONF), as --help does.
file(GLOB GRADEQ_MAN_SOURCES ${CMAKE_SOURCE_DIR}/packaging/man/*.[15])
foreach(page ${GRADEQ_MAN_SOURCES})
  get_filename_component(name ${page} NAME)
  file(READ ${page} text)
  string(REPLACE "/etc/gradeq/gradeq.conf" "${GRADEQ_DEFAULT_CONF}" text "${text}")
  file(WRITE ${CMAKE_BINARY_DIR}/man/${name} "${text}")
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${page})
  get_filename_component(section ${page} LAST_EXT)
  string(SUBSTRING ${section} 1 -1 section)
  install(FILES ${CMAKE_BINARY_DIR}/man/${name} DESTINATION share/man/man${section})
endforeach()
install(FILES ${CMAKE_SOURCE_DIR}/README.md DESTINATION share/doc/gradeq)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/rabbitmq/definitions.json
  DESTINATION share/gradeq/rabbitmq)
install(PROGRAMS ${CMAKE_SOURCE_DIR}/packaging/rabbitmq/setup
  DESTINATION share/gradeq/rabbitmq)

# dpkg keeps a conffile on remove and asks before replacing an edited one.
file(WRITE ${CMAKE_BINARY_DIR}/debian/conffiles "/etc/gradeq/gradeq.conf\n")
foreach(script postinst prerm postrm)
  configure_file(${CMAKE_SOURCE_DIR}/packaging/debian/${script}
    ${CMAKE_BINARY_DIR}/debian/${script} COPYONLY)
endforeach()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME gradeq)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "gradeq developers <dev@gradeq.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "grades an online-learning platform's learners over RabbitMQ into PostgreSQL")
set(CPACK_PACKAGE_DESCRIPTION
  "gradeq-publish cuts courses into grading jobs, gradeq-consumer grades them\nwith the platform's rules and writes the grades, gradeq-replay and\ngradeq-admin operate the queues, the releases and the schema.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION misc)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The runtime libraries by their Debian 12 package names (dpkg -S on each
# .so); libsystemd0 only when sd_notify is built in.
set(GRADEQ_DEB_DEPENDS
  "librabbitmq4, libpq5, libmsgpackc2, libconfig9, libjansson4, libssl3, libcurl4, libmicrohttpd12, libcrypt1, adduser")
if(SYSTEMD_FOUND)
  string(APPEND GRADEQ_DEB_DEPENDS ", libsystemd0")
endif()
set(CPACK_DEBIAN_PACKAGE_DEPENDS "${GRADEQ_DEB_DEPENDS}")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "rabbitmq-server, postgresql")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${CMAKE_BINARY_DIR}/debian/conffiles ${CMAKE_BINARY_DIR}/debian/postinst
  ${CMAKE_BINARY_DIR}/debian/prerm ${CMAKE_BINARY_DIR}/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
