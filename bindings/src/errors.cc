// errors.cc: see errors.h.
#include "errors.h"

namespace shmbus::python {

namespace {

enum Cls {
  kInvalidArgument, kTooLarge, kNotFound, kExists, kPermission, kNoSpace, kIo, kTimeout,
  kIncompatible, kCorrupt, kBusy, kFull, kAbandoned, kLapped, kClosed, kBase, kCount
};
constexpr const char* kNames[kCount] = {
    "InvalidArgumentError", "RecordTooLargeError", "NotFoundError", "ExistsError",
    "PermissionDeniedError", "NoSpaceError", "IoError", "TimeoutError", "IncompatibleError",
    "CorruptError", "BusyError", "FullError", "AbandonedError", "LappedError", "ClosedError",
    "Error"};

// Strong references, never released: exceptions must outlive every handle, including
// the ones torn down while the interpreter finalizes.
PyObject* g_classes[kCount] = {};

Cls class_of(Errc c) {
  switch (c) {
    case Errc::kInvalidArgument: return kInvalidArgument;
    case Errc::kNotFound: return kNotFound;
    case Errc::kExists: return kExists;
    case Errc::kIncompatible: return kIncompatible;
    case Errc::kCorrupt:
    case Errc::kTruncated: return kCorrupt;
    case Errc::kNoSpace: return kNoSpace;
    case Errc::kPermission: return kPermission;
    case Errc::kBusy: return kBusy;
    case Errc::kTimeout: return kTimeout;
    case Errc::kTooLarge: return kTooLarge;
    case Errc::kFull: return kFull;
    case Errc::kClosed: return kClosed;
    case Errc::kIo: return kIo;
  }
  return kBase;
}

[[noreturn]] void raise(Cls cls, const std::string& message, const char* code,
                        const uint64_t* lost = nullptr) {
  PyObject* type = g_classes[cls];
  py::object exc = py::reinterpret_steal<py::object>(
      PyObject_CallOneArg(type, py::str(message).ptr()));
  if (!exc) throw py::error_already_set();
  if (PyObject_SetAttrString(exc.ptr(), "code", py::str(code).ptr()) != 0)
    throw py::error_already_set();
  if (lost && PyObject_SetAttrString(exc.ptr(), "lost", py::int_(*lost).ptr()) != 0)
    throw py::error_already_set();
  PyErr_SetObject(type, exc.ptr());
  throw py::error_already_set();
}

}  // namespace

void load_error_classes() {
  py::module_ errors = py::module_::import("shmbus.errors");
  for (int i = 0; i < kCount; ++i) g_classes[i] = py::object(errors.attr(kNames[i])).release().ptr();
}

void throw_error(Errc code, const std::string& message) {
  raise(class_of(code), message, errc_name(code));
}

void throw_abandoned(const std::string& message) { raise(kAbandoned, message, "abandoned"); }

void throw_lapped(const std::string& message, uint64_t lost) {
  raise(kLapped, message, "lapped", &lost);
}

}  // namespace shmbus::python
