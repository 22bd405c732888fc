# `cpack -G DEB` (in the build directory; tools/dev.sh package): shmbus_VERSION_ARCH.deb,
# everything `cmake --install` puts under /usr (cmake/Install.cmake).
#
# One package, not Debian's usual libshmbusN / libshmbus-dev / shmbus / python3-shmbus
# split: the project is one version of one source, the command and the Python module
# link the static libraries (they depend on no shared library of the package), and there
# is no second consumer of a split yet.  Splitting is CPACK_DEB_COMPONENT_INSTALL over
# the components libraries, cli and python that the install rules already name.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME shmbus)
set(CPACK_PACKAGE_VENDOR "shmbus")
set(CPACK_PACKAGE_CONTACT "shmbus maintainers <shmbus@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${SHMBUS_SUMMARY}")
set(CPACK_PACKAGE_DESCRIPTION
"shmbus is a lock-free multi-producer stream bus in POSIX shared memory, with
durable consumer groups, a persister that writes streams to disk (libpmem2),
replay, and a bridge to and from Kafka (librdkafka).
This package holds the shmbus command and its man page, the shared and static
C++ libraries with their headers, CMake package (find_package(shmbus)) and
pkg-config files, and the Python 3 module (import shmbus).")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # shmbus_VERSION_ARCH.deb
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends from the shared objects' NEEDED entries (dpkg-shlibdeps, Debian dpkg-dev):
# libpmem2, libisal2, librdkafka, libspdlog, libfmt, libstdc++, libc.  The package's own
# libraries are found in the staging tree, and a shlibs file is generated for them.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY "=")
# The Python module is built for this interpreter's ABI and links no libpython, so
# dpkg-shlibdeps cannot see it: name the interpreter.
if(TARGET _shmbus)
  execute_process(COMMAND ${Python3_EXECUTABLE} -c
                  "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]};{sys.version_info[0]}.{sys.version_info[1] + 1}')"
                  OUTPUT_VARIABLE _py OUTPUT_STRIP_TRAILING_WHITESPACE COMMAND_ERROR_IS_FATAL ANY)
  list(GET _py 0 _py_this)
  list(GET _py 1 _py_next)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "python3 (>= ${_py_this}), python3 (<< ${_py_next})")
endif()
# What a static link (find_package(shmbus COMPONENTS static), pkg-config --static) needs.
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "libpmem2-dev, libisal-dev, libspdlog-dev, librdkafka-dev, pkg-config")
include(CPack)
