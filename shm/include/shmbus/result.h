// shmbus/result.h: the error vocabulary of every set-up and I/O call.
//
// Hot paths (publish, poll) return small [[nodiscard]] status structs and never
// allocate; everything else returns Result<T>: a value or an Error whose message
// a user can act on ("stream 'x' not found in namespace 'y'", not "ENOENT").
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace shmbus {

enum class Errc {
  kInvalidArgument,   // bad name, size, option
  kNotFound,          // stream or consumer does not exist
  kExists,            // stream already exists
  kIncompatible,      // wrong magic or layout version
  kCorrupt,           // header fields that cannot be right
  kTruncated,         // file shorter than its header says
  kNoSpace,           // /dev/shm (or disk) too small
  kPermission,        // EACCES / EPERM, or a write on a read-only mapping
  kBusy,              // held by a live process (consumer name, rm without --force)
  kTimeout,           // a bounded wait ran out
  kTooLarge,          // record larger than the stream's maximum
  kFull,              // no room and the policy says fail
  kClosed,            // handle was closed
  kIo,                // any other system error
};

const char* errc_name(Errc c) noexcept;

struct Error {
  Errc code;
  std::string message;
};

// A value or an Error. Small on purpose: C++20 has no std::expected.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T v) : v_(std::move(v)) {}                 // NOLINT: implicit by design
  Result(Error e) : v_(std::move(e)) {}             // NOLINT
  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T* operator->() { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const Error& error() const& { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error e) : e_(std::move(e)), ok_(false) {}  // NOLINT
  bool ok() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  const Error& error() const& { return e_; }

 private:
  Error e_{Errc::kIo, {}};
  bool ok_ = true;
};

inline Error make_error(Errc c, std::string msg) { return Error{c, std::move(msg)}; }

}  // namespace shmbus
