// common.h: what every part of the Python module shares.
//
// bindings/ owns the Python package `shmbus`: this extension module (_shmbus) over the
// public C++ API (shmbus/shmbus.h, nothing from shm/src), and the pure-Python parts in
// bindings/shmbus/.  Rules that hold in every file here:
//  - Nothing waits with the GIL held, and nothing waits longer than a slice (kSlice,
//    kPublishSlice) without taking the GIL back to run signal handlers (Ctrl-C) and
//    notice a close().
//  - A mutex that guards a C++ handle is only ever *blocked on* with the GIL released;
//    with the GIL held it is only try_lock()ed.  So holding such a mutex while taking
//    the GIL back cannot deadlock.
//  - Memory of a stream is reachable from Python only through objects that keep the
//    C++ handle (and so the mapping) alive: see views.h.
#pragma once

#include <pybind11/pybind11.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "shmbus/shmbus.h"

namespace shmbus::python {

namespace py = pybind11;

// The longest read wait without the GIL between two checks for signals and close().
inline constexpr std::chrono::milliseconds kSlice{50};
// The same for a producer waiting for room.  Longer, because the library counts every
// C++ call that ends without room in the stream's producer_waits and producer_full
// (there is no other way to interrupt its wait): at most 4 a second this way.
inline constexpr std::chrono::milliseconds kPublishSlice{250};

// Bumped in the child after fork().  A handle made in an older generation belongs to
// the parent process: using it raises ClosedError, and dropping it leaks the C++ object
// on purpose, because closing it would unregister the parent's producer or consumer.
uint64_t fork_generation() noexcept;

void install_fork_handler();

// For py::custom_type_setup of a GC-tracked pybind11 class (dynamic_attr, or tp_traverse
// of its own): its instances are untracked before pybind11's dealloc runs.  pybind11 2.10
// (Debian 12) leaves a dying instance tracked, so a collection that its teardown starts
// (a finalizer of its __dict__, of the Consumer it frees) freed it a second time: the
// type's reference count fell by one per instance until the type itself was freed and
// the next Consumer() aborted (a review).  CPython's own deallocators untrack first.
void untrack_before_dealloc(PyHeapTypeObject* heap_type);

// A Python timeout in seconds: None means forever (nullopt), and so does any value above
// 1e9 s (~31 years; an int of any size).  An int, a float, or what converts to one
// (numpy.int64, numpy.float32, Decimal: through __float__; an integer-only type through
// __index__).  TypeError for a non-number (bool and numpy.bool_, str, bytes, sequences),
// InvalidArgumentError for a negative or NaN one.  `none_waits` false: for a duration that
// is not a wait (None is then a TypeError, and no message suggests it).
std::optional<std::chrono::nanoseconds> to_timeout(py::handle seconds, const char* what, bool none_waits = true);

// An integer argument: an int, or what converts to one exactly through __index__
// (numpy.int64, ...; a TypeError before: a review), never a bool (Python's or numpy's)
// or a float.
bool is_index(const py::handle& v) noexcept;
// An integer argument (the caller checked is_index) as a uint64: InvalidArgumentError
// when negative or above 2**64 - 1 (pybind11's cast said only "Unable to cast Python
// instance", as a RuntimeError: a review).
uint64_t uint64_arg(const py::handle& v, const std::string& what);
// A count argument (max_records, max_batch): an int (is_index, else TypeError) of at
// least 1, else InvalidArgumentError; any size (an int64_t parameter raised pybind11's
// "incompatible function arguments" TypeError above 2**63 - 1: a review).
uint64_t count_arg(const py::handle& v, const char* what);

// A size argument: an int of bytes or a str like "64M" (parse_size).  TypeError for
// other types, InvalidArgumentError for a negative int or a bad str.
uint64_t size_arg(const py::object& v, const char* what);

// A path argument: None -> "", a str or os.PathLike of str -> its text; TypeError else.
std::string path_arg(const py::object& path, const char* what);

// "block" | "spin" | "yield".
WaitStrategy to_wait_strategy(std::string_view s);

// NameState as Python sees it: "same" | "removed" | "replaced".
const char* name_state_text(NameState s) noexcept;

// The namespace argument of every call: None (or "") -> $SHMBUS_NAMESPACE -> "default".
std::string namespace_of(const py::object& ns);

// A deadline on the steady clock; nullopt timeout = never.
class Deadline {
 public:
  explicit Deadline(std::optional<std::chrono::nanoseconds> timeout);
  bool forever() const noexcept { return forever_; }
  bool passed() const noexcept;
  // What to wait next: min(slice, time left), never negative.
  std::chrono::nanoseconds next_slice(std::chrono::nanoseconds slice = kSlice) const noexcept;

 private:
  bool forever_;
  std::chrono::steady_clock::time_point at_;
};

// Runs pending signal handlers (main thread only); a raised KeyboardInterrupt or any
// handler's exception propagates as py::error_already_set.  Thread: GIL held.
void check_signals();

// Owns a Py_buffer of a C-contiguous object for the scope (bytes, bytearray, memoryview,
// numpy array, mmap...).  TypeError for anything that is not a buffer.
class BufferArg {
 public:
  BufferArg() = default;
  explicit BufferArg(py::handle obj, bool writable = false);
  BufferArg(BufferArg&& o) noexcept;
  BufferArg& operator=(BufferArg&&) = delete;
  BufferArg(const BufferArg&) = delete;
  ~BufferArg();
  Bytes bytes() const noexcept {
    return Bytes(static_cast<const std::byte*>(view_.buf), static_cast<size_t>(view_.len));
  }
  size_t size() const noexcept { return static_cast<size_t>(view_.len); }

 private:
  Py_buffer view_{};
  bool held_ = false;
};

}  // namespace shmbus::python
