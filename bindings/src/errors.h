// errors.h: the library's errors as Python exceptions (classes in shmbus/errors.py).
//
// Errc -> class: kInvalidArgument InvalidArgumentError, kNotFound NotFoundError,
// kExists ExistsError, kIncompatible IncompatibleError, kCorrupt and kTruncated
// CorruptError, kNoSpace NoSpaceError, kPermission PermissionDeniedError, kBusy BusyError,
// kTimeout TimeoutError, kTooLarge RecordTooLargeError, kFull FullError, kClosed
// ClosedError, kIo IoError.  Publish and read statuses map onto the same classes, plus
// AbandonedError, LappedError, EvictedError and GapError, which have no Errc.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "common.h"

namespace shmbus::python {

// Imports shmbus.errors and keeps its classes.  Thread: GIL held, at module import.
void load_error_classes();
// _shmbus._error_classes(): the C++ side's list of the classes, which the tests check
// shmbus/errors.py, __init__.py and __init__.pyi against.
void bind_errors(py::module_& m);

// Sets the Python exception for `code` with `message` and throws error_already_set.
[[noreturn]] void throw_error(Errc code, const std::string& message);
[[noreturn]] inline void throw_error(const Error& e) { throw_error(e.code, e.message); }
[[noreturn]] void throw_abandoned(const std::string& message);
[[noreturn]] void throw_lapped(const std::string& message, uint64_t lost);
// EvictedError with .lost, .from_seq, .to_seq: records a durable group lost.
[[noreturn]] void throw_evicted(const std::string& message, uint64_t from_seq, uint64_t to_seq,
                                uint64_t lost);
// TimeoutError with .seq: the published record that is not durable yet.
[[noreturn]] void throw_durable_timeout(const std::string& message, uint64_t seq);
// NotPersistedError with .seq: the record the persister recorded as lost.
[[noreturn]] void throw_not_persisted(const std::string& message, uint64_t seq);
// GapError(from_seq, to_seq, reason).
[[noreturn]] void throw_gap(uint64_t from_seq, uint64_t to_seq, const std::string& reason);

// A library message that tells the caller to use a `shmbus` command-line flag, in
// Python's spelling: each pair is {phrase, replacement} ("use --force to" -> "use
// force=True to").  Whole words only: a phrase inside a name or path ("x--force",
// "/a--new-store") stays, and so does a shell command the message quotes ("shmbus rm
// --force": not a phrase given).
std::string python_spelling(std::string message,
                            std::initializer_list<std::pair<std::string_view, std::string_view>> flags);

inline void check(const Result<void>& r) {
  if (!r) throw_error(r.error());
}
template <class T>
T unwrap(Result<T> r) {
  if (!r) throw_error(r.error());
  return std::move(r).value();
}

}  // namespace shmbus::python
