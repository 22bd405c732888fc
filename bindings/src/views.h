// views.h: the objects through which Python reaches a stream's memory.
//
// Two small CPython types export buffers (pybind11's buffer hook cannot report an error,
// and these must refuse to export once expired):
//  - shmbus.Record: a consumed record.  Its payload is either a view into the ring (a
//    durable consumer, zero-copy) or a bytes copy (tailing consumers, copy=True).
//  - the claim buffer behind Claim.data: a writable view of a claimed, uncommitted record.
// A ring view *expires* when the consumer commits past it (a claim buffer: when the claim
// is committed or aborted): it refuses new exports (ValueError) from then on.
//
// Lifetime: each object holds a reference to the C++ handle (and so the mapping) and
// lets go only when no pointer into the mapping can be left: expired, no buffer
// exported, and never exported to anyone but its own cached memoryview.  Memoryviews
// are never release()d behind the user's back, because numpy keeps only a reference to
// the memoryview it was made from, not a buffer export; a memoryview keeps its exporter
// alive, the exporter keeps the mapping.  So no Python object can point at unmapped
// memory; the price is that a durable consumer stays attached after close() while
// arrays or memoryviews of its records are alive.
#pragma once

#include <memory>

#include "common.h"

namespace shmbus::python {

struct BufferObject;

// The ring records a durable consumer has handed out and not yet committed.
// Thread: GIL held for every call.
class LiveRecords {
 public:
  LiveRecords() = default;
  LiveRecords(const LiveRecords&) = delete;
  LiveRecords& operator=(const LiveRecords&) = delete;
  bool empty() const noexcept { return head_ == nullptr; }
  // Expires every record.  The caller keeps the list's owner alive across the call (an
  // expiring record may drop the last other reference to it).
  void expire_all() noexcept;

 private:
  friend struct ListAccess;
  BufferObject* head_ = nullptr;
};

// New references.  Thread: GIL held.
// `owner`: the Python Consumer, referenced until the record expires (may be null).
PyObject* new_ring_record(const Record& r, LiveRecords* list, std::shared_ptr<void> keep,
                          PyObject* owner);
PyObject* new_copied_record(const Record& r);
PyObject* new_claim_buffer(MutableBytes bytes, std::shared_ptr<void> keep);
// The memoryview of a claim buffer (one per buffer, cached).
PyObject* claim_buffer_view(PyObject* buffer);
void expire_claim_buffer(PyObject* buffer) noexcept;
// Expires a ring record at once (unlinked, its Consumer let go); the caller holds it.
void expire_record(PyObject* record) noexcept;

void register_view_types(py::module_& m);

}  // namespace shmbus::python
