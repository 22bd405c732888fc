// bindings.h: the parts of the _shmbus module, each bound by its own file.
#pragma once

#include "common.h"

namespace shmbus::python {

void bind_streams(py::module_& m);    // streams.cc: create, remove, ls, stat, namespaces
void bind_producer(py::module_& m);   // producer.cc: Producer, Claim
void bind_consumer(py::module_& m);   // consumer.cc: Consumer (ring or replay), ConsumerIterator
void bind_persister(py::module_& m);  // persister.cc: Persister, resolve_data_dir
// Record and the claim buffer: views.h (register_view_types).

}  // namespace shmbus::python
