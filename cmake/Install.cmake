# `cmake --install BUILD [--prefix PREFIX]`: what a user of shmbus gets (and the .deb holds,
# cmake/Packaging.cmake):
#   lib/libshmbus{,-persist,-bridge}.so.VERSION (SONAME .so.MAJOR) and .a
#   include/shmbus/...          the public headers only (shmbus/detail/ is internal)
#   bin/shmbus                  the command (linked with the static libraries)
#   share/man/man1/shmbus.1.gz  generated with help2man, when it is installed
#   share/doc/shmbus/copyright  the licence statement (cmake/copyright)
#   lib/cmake/shmbus/           find_package(shmbus CONFIG): shmbus::shmbus, shmbus::persist,
#                               shmbus::bridge (shared); COMPONENTS static adds
#                               shmbus::shmbus_static, ::persist_static, ::bridge_static
#   lib/pkgconfig/shmbus{,-persist,-bridge}.pc
#   lib/python3/dist-packages/shmbus   the Python package (bindings/CMakeLists.txt)
# Every path is relative to the prefix, so --prefix at install time relocates it all.
include(CMakePackageConfigHelpers)

set(SHMBUS_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/shmbus)
get_property(_static GLOBAL PROPERTY SHMBUS_STATIC_LIBRARIES)
get_property(_shared GLOBAL PROPERTY SHMBUS_SHARED_LIBRARIES)
get_property(_incdirs GLOBAL PROPERTY SHMBUS_INCLUDE_DIRS)

install(TARGETS ${_shared} EXPORT shmbusTargets COMPONENT libraries
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} NAMELINK_COMPONENT libraries)
install(TARGETS ${_static} EXPORT shmbusStaticTargets COMPONENT libraries
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
foreach(dir IN LISTS _incdirs)
  install(DIRECTORY ${dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT libraries
          FILES_MATCHING PATTERN "*.h" PATTERN "detail" EXCLUDE)
endforeach()
install(EXPORT shmbusTargets NAMESPACE shmbus:: DESTINATION ${SHMBUS_CMAKE_DIR}
        COMPONENT libraries)
install(EXPORT shmbusStaticTargets NAMESPACE shmbus:: DESTINATION ${SHMBUS_CMAKE_DIR}
        COMPONENT libraries)
configure_package_config_file(cmake/shmbusConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cmake/shmbusConfig.cmake INSTALL_DESTINATION ${SHMBUS_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmake/shmbusConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cmake/shmbusConfig.cmake
        ${PROJECT_BINARY_DIR}/cmake/shmbusConfigVersion.cmake
        DESTINATION ${SHMBUS_CMAKE_DIR} COMPONENT libraries)

# pkg-config: the prefix is found from the .pc file's own place (${pcfiledir}).
file(RELATIVE_PATH SHMBUS_PC_TO_PREFIX /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" SHMBUS_PC_TO_PREFIX "${SHMBUS_PC_TO_PREFIX}")
foreach(pc shmbus shmbus-persist shmbus-bridge)
  configure_file(cmake/${pc}.pc.in ${PROJECT_BINARY_DIR}/pkgconfig/${pc}.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/pkgconfig/${pc}.pc
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT libraries)
endforeach()

install(TARGETS shmbus_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT cli)

# The man page, from `shmbus --help`, `shmbus --version` and, in a COMMANDS section, each
# subcommand's --help (tools/man_commands.sh, help2man --include), gzipped as Debian
# policy wants it (gzip -n: no name or time stamp, the same bytes every build).
find_program(HELP2MAN help2man)
find_program(GZIP gzip)
if(HELP2MAN AND GZIP)
  set(_man ${PROJECT_BINARY_DIR}/man)
  add_custom_command(OUTPUT ${_man}/shmbus.1 ${_man}/shmbus.1.gz
    COMMAND ${CMAKE_COMMAND} -E make_directory ${_man}
    COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=0
            bash ${PROJECT_SOURCE_DIR}/tools/man_commands.sh $<TARGET_FILE:shmbus_cli> ${_man}/commands.h2m
    COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=0 ${HELP2MAN} --no-info --section=1 --name=${SHMBUS_SUMMARY}
            --include=${_man}/commands.h2m --output=${_man}/shmbus.1 $<TARGET_FILE:shmbus_cli>
    COMMAND ${GZIP} -9nkf ${_man}/shmbus.1
    DEPENDS shmbus_cli ${PROJECT_SOURCE_DIR}/tools/man_commands.sh
    COMMENT "shmbus.1.gz (help2man)")
  add_custom_target(shmbus_man ALL DEPENDS ${_man}/shmbus.1.gz)
  install(FILES ${_man}/shmbus.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT cli)
else()
  message(STATUS "help2man or gzip not found (Debian packages help2man, gzip): no man page for shmbus")
endif()

# Debian policy: every package has /usr/share/doc/PACKAGE/copyright.
install(FILES ${PROJECT_SOURCE_DIR}/cmake/copyright DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/shmbus COMPONENT cli)
