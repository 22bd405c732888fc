// module.cc: the _shmbus extension module (imported by the shmbus package).
#include "bindings.h"
#include "errors.h"
#include "views.h"

#ifndef SHMBUS_VERSION
#define SHMBUS_VERSION "0"
#endif

PYBIND11_MODULE(_shmbus, m) {
  namespace sp = shmbus::python;
  m.doc() = "The C++ half of the shmbus package: import shmbus, not this.";
  m.attr("__version__") = SHMBUS_VERSION;
  sp::load_error_classes();
  sp::bind_errors(m);
  sp::install_fork_handler();
  sp::register_view_types(m);
  sp::bind_streams(m);
  sp::bind_producer(m);
  sp::bind_consumer(m);
  sp::bind_persister(m);
}
