# shmbus_library(): one library of the project (shm/, persist/, bridge/), built once as
# position-independent objects and linked twice from them: a static library (the in-tree
# target TARGET, what the tools, tests and Python module link, unchanged) and a shared one
# (TARGET_shared, with SONAME and VERSION from the project version).  Both are installed
# and exported (cmake/Install.cmake): the shared one as shmbus::EXPORT, the static one as
# shmbus::EXPORT_static.
#
#   shmbus_library(TARGET OUTPUT_NAME NAME EXPORT_NAME NAME
#                  SOURCES src/a.cc ...
#                  COMPILE_OPTIONS ...      compile-only options (e.g. -mcx16)
#                  COMPILE_DEPS ...         needed to compile only (header-only: Boost)
#                  PUBLIC ...               in-tree libraries users link too (static names;
#                                           the shared library links their _shared twins)
#                  PRIVATE ...)             imported libraries linked, not in the headers
#
# The public headers live in include/ beside CMakeLists.txt; src/ is private.
function(shmbus_library target)
  cmake_parse_arguments(A "" "OUTPUT_NAME;EXPORT_NAME"
                        "SOURCES;COMPILE_OPTIONS;COMPILE_DEPS;PUBLIC;PRIVATE" ${ARGN})
  add_library(${target}_objects OBJECT ${A_SOURCES})
  target_include_directories(${target}_objects
    PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include> PRIVATE src)
  target_compile_options(${target}_objects PRIVATE ${A_COMPILE_OPTIONS})
  target_link_libraries(${target}_objects PUBLIC ${A_PUBLIC} PRIVATE ${A_COMPILE_DEPS} ${A_PRIVATE})

  add_library(${target} STATIC $<TARGET_OBJECTS:${target}_objects>)
  add_library(${target}_shared SHARED $<TARGET_OBJECTS:${target}_objects>)
  set(shared_public "")
  foreach(dep IN LISTS A_PUBLIC)
    if(TARGET ${dep}_shared)
      list(APPEND shared_public ${dep}_shared)
    else()
      list(APPEND shared_public ${dep})
    endif()
  endforeach()
  target_link_libraries(${target} PUBLIC ${A_PUBLIC} PRIVATE ${A_PRIVATE})
  target_link_libraries(${target}_shared PUBLIC ${shared_public} PRIVATE ${A_PRIVATE})
  foreach(t ${target} ${target}_shared)
    target_include_directories(${t} PUBLIC
      $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
      $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
    set_target_properties(${t} PROPERTIES OUTPUT_NAME ${A_OUTPUT_NAME})
  endforeach()
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${A_EXPORT_NAME}_static)
  set_target_properties(${target}_shared PROPERTIES EXPORT_NAME ${A_EXPORT_NAME}
    VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})
  set_property(GLOBAL APPEND PROPERTY SHMBUS_STATIC_LIBRARIES ${target})
  set_property(GLOBAL APPEND PROPERTY SHMBUS_SHARED_LIBRARIES ${target}_shared)
  set_property(GLOBAL APPEND PROPERTY SHMBUS_INCLUDE_DIRS ${CMAKE_CURRENT_SOURCE_DIR}/include)
endfunction()
