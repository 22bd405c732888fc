// views.cc: see views.h.
#include "views.h"

#include <new>

#include "errors.h"

namespace shmbus::python {

struct BufferObject {
  PyObject_HEAD
  std::byte* data;
  Py_ssize_t size;
  Py_ssize_t exports;        // Py_buffers handed out and not yet released
  PyObject* view;            // the memoryview cached by .data / Claim.data
  PyObject* copy;            // bytes owning the payload (copied records), else null
  bool expired;
  bool writable;
  bool making_view;          // inside our own PyMemoryView_FromObject(self)
  bool pinned;               // exported to someone else: keep the mapping until dealloc
  uint64_t seq, ts_ns;
  uint32_t type;
  LiveRecords* list;         // set while linked (an unexpired ring record)
  BufferObject* prev;
  BufferObject* next;
  std::shared_ptr<void> keep;  // keeps the C++ handle, and so the mapping, alive
  // An unexpired ring record: its Python Consumer (a reference), so that the consumer is
  // not collected, closed and committed past the record while the record is in use
  // (`shmbus.Consumer(...).poll()` handed out a record already expired, and its group
  // skipped it: a review).  Dropped when the record expires.
  PyObject* owner;
};

struct ListAccess {
  static BufferObject*& head(LiveRecords* l) { return l->head_; }
};

namespace {

PyTypeObject* g_record_type = nullptr;
PyTypeObject* g_claim_buffer_type = nullptr;

BufferObject* alloc(PyTypeObject* type) {
  auto* b = reinterpret_cast<BufferObject*>(type->tp_alloc(type, 0));  // zero-filled
  if (!b) throw py::error_already_set();
  new (&b->keep) std::shared_ptr<void>();
  return b;
}

void unlink(BufferObject* b) noexcept {
  if (!b->list) return;
  if (b->prev) b->prev->next = b->next;
  else ListAccess::head(b->list) = b->next;
  if (b->next) b->next->prev = b->prev;
  b->list = nullptr;
  b->prev = b->next = nullptr;
}

// May the mapping go when this object no longer needs it?  Not while a buffer is
// exported, and never once the object was exported to someone else: numpy releases its
// Py_buffer at once and keeps only a reference to the object (its `base`), so a
// foreign export is a raw pointer we cannot see.  Our own cached memoryview is the one
// export we can account for: it holds a buffer (exports > 0) for as long as it lives.
void maybe_let_go(BufferObject* b) noexcept {
  if (b->expired && b->exports == 0 && !b->pinned) b->keep.reset();
}

// Thread: GIL held; the caller holds a reference to b.
void expire(BufferObject* b) noexcept {
  if (b->expired) return;
  b->expired = true;
  unlink(b);
  // The cached memoryview is released when nothing was exported from it (then a write
  // through it raises); arrays made from it point into the ring with only a reference to
  // it, so then it must stay valid (and keep the mapping) for as long as anyone holds it
  // (release() refuses: BufferError).  Dropping our reference frees it when nobody else
  // does.  Only a claim's view (a record's view is read-only anyway).
  if (b->view && b->writable) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);  // an exception may be on its way (a with block)
    PyObject* r = PyObject_CallMethod(b->view, "release", nullptr);
    if (r) Py_DECREF(r);
    else PyErr_Clear();
    PyErr_Restore(type, value, tb);
  }
  Py_CLEAR(b->view);
  maybe_let_go(b);
  // Last: this may drop the consumer's last reference, and so close it (the caller holds
  // a reference to b; expire_all() re-reads its list's head at every step).
  Py_CLEAR(b->owner);
}

int getbuffer(PyObject* self, Py_buffer* view, int flags) {
  auto* b = reinterpret_cast<BufferObject*>(self);
  if (b->expired) {
    view->obj = nullptr;
    if (Py_TYPE(self) == g_record_type)
      PyErr_Format(PyExc_ValueError,
                   "record %llu has expired: the consumer committed past it (the next "
                   "poll, read_batch, iteration step, commit() or close()), so producers may "
                   "reuse its bytes; copy it with rec.bytes() before then",
                   static_cast<unsigned long long>(b->seq));
    else
      PyErr_SetString(PyExc_ValueError,
                      "the claim was committed or aborted: its buffer can no longer be used");
    return -1;
  }
  if (PyBuffer_FillInfo(view, self, b->data, b->size, b->writable ? 0 : 1, flags) != 0) return -1;
  ++b->exports;
  if (!b->making_view) b->pinned = true;
  return 0;
}

void releasebuffer(PyObject* self, Py_buffer*) {
  auto* b = reinterpret_cast<BufferObject*>(self);
  --b->exports;
  maybe_let_go(b);
}

// Our memoryview of b (cached; new reference).  Raises ValueError once expired.
PyObject* cached_view(BufferObject* b) {
  // One the user released (view.release(), a `with memoryview` block) is of no use any
  // more: a new one (it raised ValueError for good though the record had not expired).
  if (b->view && (reinterpret_cast<PyMemoryViewObject*>(b->view)->flags & _Py_MEMORYVIEW_RELEASED) != 0)
    Py_CLEAR(b->view);
  if (!b->view) {
    b->making_view = true;
    b->view = PyMemoryView_FromObject(reinterpret_cast<PyObject*>(b));
    b->making_view = false;
    if (!b->view) return nullptr;
  }
  Py_INCREF(b->view);
  return b->view;
}

void dealloc(PyObject* self) {
  auto* b = reinterpret_cast<BufferObject*>(self);
  PyTypeObject* type = Py_TYPE(self);
  if (PyType_IS_GC(type)) PyObject_GC_UnTrack(self);
  unlink(b);
  Py_XDECREF(b->view);
  Py_XDECREF(b->copy);
  PyObject* owner = b->owner;  // let go of last (below)
  b->owner = nullptr;
  b->keep.~shared_ptr<void>();
  type->tp_free(self);
  Py_DECREF(type);
  // Last, once this record holds nothing of the consumer's: dropping the consumer may
  // close it, and a close that still saw this record's hold on its core warned that
  // views of its records were alive (a review).
  Py_XDECREF(owner);
}

// A Record is tracked by the garbage collector for its references to its Consumer and to
// its cached memoryview: a record kept where its consumer reaches it (an attribute of the
// consumer, a Future the consumer holds) made a cycle the collector could not see, and
// the consumer, never closed, held its group for good (a review).
int rec_traverse(PyObject* self, visitproc visit, void* arg) {
  auto* b = reinterpret_cast<BufferObject*>(self);
  Py_VISIT(b->owner);
  Py_VISIT(b->view);
  Py_VISIT(Py_TYPE(self));  // (a heap type)
  return 0;
}

int rec_clear(PyObject* self) {
  auto* b = reinterpret_cast<BufferObject*>(self);
  Py_CLEAR(b->view);
  Py_CLEAR(b->owner);  // may close the consumer, which expires this record (alive here)
  return 0;
}

// ---- Record attributes -------------------------------------------------------------

PyObject* rec_seq(PyObject* self, void*) {
  return PyLong_FromUnsignedLongLong(reinterpret_cast<BufferObject*>(self)->seq);
}
PyObject* rec_ts(PyObject* self, void*) {
  return PyLong_FromUnsignedLongLong(reinterpret_cast<BufferObject*>(self)->ts_ns);
}
PyObject* rec_type(PyObject* self, void*) {
  return PyLong_FromUnsignedLong(reinterpret_cast<BufferObject*>(self)->type);
}
PyObject* rec_expired(PyObject* self, void*) {
  return PyBool_FromLong(reinterpret_cast<BufferObject*>(self)->expired);
}
PyObject* rec_data(PyObject* self, void*) {
  auto* b = reinterpret_cast<BufferObject*>(self);
  if (b->copy) return PyMemoryView_FromObject(self);  // a private copy: nothing to track
  return cached_view(b);
}
PyObject* rec_bytes(PyObject* self, PyObject*) {
  auto* b = reinterpret_cast<BufferObject*>(self);
  if (b->copy) {
    Py_INCREF(b->copy);
    return b->copy;
  }
  if (b->expired) {
    Py_buffer probe;
    getbuffer(self, &probe, PyBUF_SIMPLE);  // sets the ValueError
    return nullptr;
  }
  return PyBytes_FromStringAndSize(reinterpret_cast<const char*>(b->data), b->size);
}
Py_ssize_t rec_len(PyObject* self) { return reinterpret_cast<BufferObject*>(self)->size; }
PyObject* rec_repr(PyObject* self) {
  auto* b = reinterpret_cast<BufferObject*>(self);
  return PyUnicode_FromFormat("Record(seq=%llu, type=%lu, timestamp_ns=%llu, size=%zd%s)",
                              static_cast<unsigned long long>(b->seq),
                              static_cast<unsigned long>(b->type),
                              static_cast<unsigned long long>(b->ts_ns), b->size,
                              b->expired ? ", expired" : "");
}

PyGetSetDef g_record_getset[] = {
    {"seq", rec_seq, nullptr, "Sequence number: consecutive per stream, from 0.", nullptr},
    {"timestamp_ns", rec_ts, nullptr,
     "Publish time, nanoseconds since the Unix epoch (CLOCK_REALTIME).", nullptr},
    {"type", rec_type, nullptr, "The 32-bit type tag given to publish().", nullptr},
    {"data", rec_data, nullptr,
     "The payload as a read-only memoryview.\n\n"
     "Zero-copy for durable consumers: it points into the ring and its content is valid "
     "until the consumer commits past the record (with auto_commit: the next poll, "
     "read_batch or iteration step; always: commit() and close()).  After that, rec.data, "
     "rec.bytes() and memoryview(rec) raise ValueError; views and arrays obtained before "
     "stay readable (the mapping stays alive for them) but may show a later record's "
     "bytes: copy what you keep (rec.bytes(), arr.copy()).  Tailing consumers and "
     "copy=True give a view of a private copy that never expires.",
     nullptr},
    {"expired", rec_expired, nullptr,
     "True once the payload is no longer readable (see data).", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyMethodDef g_record_methods[] = {
    {"bytes", rec_bytes, METH_NOARGS,
     "bytes() -> bytes\n\nA copy of the payload that stays valid forever (no copy is made "
     "when the record is already a copy)."},
    // bytes(rec) copies through here, not through a buffer export: an export to anyone but
    // our own memoryview pins the mapping until the record is freed (maybe_let_go()), and
    // so kept a closed durable consumer's group held by a record merely copied (a review).
    {"__bytes__", rec_bytes, METH_NOARGS,
     "__bytes__() -> bytes\n\nbytes(rec): the same as rec.bytes(), without a buffer export."},
    {nullptr, nullptr, 0, nullptr}};

PyType_Slot g_record_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(rec_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(rec_clear)},
    {Py_tp_repr, reinterpret_cast<void*>(rec_repr)},
    {Py_tp_getset, g_record_getset},
    {Py_tp_methods, g_record_methods},
    {Py_sq_length, reinterpret_cast<void*>(rec_len)},
    {Py_bf_getbuffer, reinterpret_cast<void*>(getbuffer)},
    {Py_bf_releasebuffer, reinterpret_cast<void*>(releasebuffer)},
    {Py_tp_doc, const_cast<char*>(
                    "A record read from a stream: seq, timestamp_ns, type and data.\n\n"
                    "Supports the buffer protocol (numpy.frombuffer(rec) works) and len(). "
                    "Made by Consumer, never by user code.")},
    {0, nullptr}};

PyType_Spec g_record_spec = {"shmbus.Record", sizeof(BufferObject), 0,
                             Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_HAVE_GC,
                             g_record_slots};

PyType_Slot g_claim_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(dealloc)},
    {Py_bf_getbuffer, reinterpret_cast<void*>(getbuffer)},
    {Py_bf_releasebuffer, reinterpret_cast<void*>(releasebuffer)},
    {Py_tp_doc, const_cast<char*>("The writable bytes of a claim (see Claim.data).")},
    {0, nullptr}};

PyType_Spec g_claim_spec = {"shmbus._ClaimBuffer", sizeof(BufferObject), 0,
                             Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
                            g_claim_slots};

BufferObject* new_record(const Record& r) {
  BufferObject* b = alloc(g_record_type);
  b->seq = r.seq;
  b->ts_ns = r.ts_ns;
  b->type = r.type;
  b->size = static_cast<Py_ssize_t>(r.data.size());
  return b;
}

}  // namespace

void LiveRecords::expire_all() noexcept {
  while (BufferObject* b = head_) {
    Py_INCREF(b);
    expire(b);  // unlinks b
    Py_DECREF(b);
  }
}

PyObject* new_ring_record(const Record& r, LiveRecords* list, std::shared_ptr<void> keep,
                          PyObject* owner) {
  BufferObject* b = new_record(r);
  b->data = const_cast<std::byte*>(r.data.data());
  b->keep = std::move(keep);
  Py_XINCREF(owner);
  b->owner = owner;
  b->list = list;
  b->next = ListAccess::head(list);
  if (b->next) b->next->prev = b;
  ListAccess::head(list) = b;
  return reinterpret_cast<PyObject*>(b);
}

PyObject* new_copied_record(const Record& r) {
  PyObject* copy = PyBytes_FromStringAndSize(reinterpret_cast<const char*>(r.data.data()),
                                             static_cast<Py_ssize_t>(r.data.size()));
  if (!copy) throw py::error_already_set();
  BufferObject* b;
  try {
    b = new_record(r);
  } catch (...) {
    Py_DECREF(copy);
    throw;
  }
  b->copy = copy;
  b->data = reinterpret_cast<std::byte*>(PyBytes_AS_STRING(copy));
  return reinterpret_cast<PyObject*>(b);
}

PyObject* new_claim_buffer(MutableBytes bytes, std::shared_ptr<void> keep) {
  BufferObject* b = alloc(g_claim_buffer_type);
  b->data = bytes.data();
  b->size = static_cast<Py_ssize_t>(bytes.size());
  b->writable = true;
  b->keep = std::move(keep);
  return reinterpret_cast<PyObject*>(b);
}

PyObject* claim_buffer_view(PyObject* buffer) {
  PyObject* v = cached_view(reinterpret_cast<BufferObject*>(buffer));
  if (!v) throw py::error_already_set();
  return v;
}

void expire_claim_buffer(PyObject* buffer) noexcept {
  Py_INCREF(buffer);
  expire(reinterpret_cast<BufferObject*>(buffer));
  Py_DECREF(buffer);
}

void expire_record(PyObject* record) noexcept { expire_claim_buffer(record); }

void register_view_types(py::module_& m) {
  g_record_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&g_record_spec));
  if (!g_record_type) throw py::error_already_set();
  g_claim_buffer_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&g_claim_spec));
  if (!g_claim_buffer_type) throw py::error_already_set();
  // The globals keep the references PyType_FromSpec returned (never released: records
  // may outlive the module object); the module attributes take their own.
  m.add_object("Record", py::reinterpret_borrow<py::object>(
                             reinterpret_cast<PyObject*>(g_record_type)));
  m.add_object("_ClaimBuffer", py::reinterpret_borrow<py::object>(
                                   reinterpret_cast<PyObject*>(g_claim_buffer_type)));
}

}  // namespace shmbus::python
