// atomics.h: the few named accessors every atomic of the ring goes through (in the
// spirit of Aeron's aeron_atomic64_* / aeron_get_acquire / aeron_put_ordered), so that
// the order of each access is in its name and stated once, here.  They are inline
// wrappers around one std::atomic member call with exactly that order: the generated
// code is that of the raw call (no extra load, store or fence).
//
// Each call site still says which access it pairs with ("acquire: pairs with the
// release in X"); what each order guarantees is said here:
//
//   relaxed   atomicity only, no order.  For statistics and diagnostics read racily,
//             single-writer fields whose readers need only a recent value, and fields
//             published by a later release or seq_cst access to another word.
//   acquire   a load that sees a value written by a release (or seq_cst) access to the
//             same word also sees everything its writer wrote before that access.
//   release   the counterpart: everything this thread wrote before is visible to an
//             acquire load that sees this value.
//   seq_cst   all seq_cst accesses form one total order: used where two sides each write
//             one word and then read the other's (the futex sleeper handshakes: either
//             the waker sees the sleeper's bit or the sleeper sees the waker's data) and
//             for the commit and claim CASes that come before such a read.
//
// For plain (non-atomic) record fields that lapped readers may read while a producer
// rewrites them, see load_relaxed(const T*) / store_relaxed(T*, T) in layout.h.
#pragma once

#include <atomic>
#include <type_traits>

namespace shmbus::detail {

// ---- relaxed ----------------------------------------------------------------
template <class T>
[[gnu::always_inline]] inline T load_relaxed(const std::atomic<T>& a) noexcept {
  return a.load(std::memory_order_relaxed);
}
template <class T>
[[gnu::always_inline]] inline void store_relaxed(std::atomic<T>& a, std::type_identity_t<T> v) noexcept {
  a.store(v, std::memory_order_relaxed);
}
// A statistics counter: relaxed fetch_add (read racily by `stat`, orders nothing).
template <class T>
[[gnu::always_inline]] inline T stat_add(std::atomic<T>& a, std::type_identity_t<T> n) noexcept {
  return a.fetch_add(n, std::memory_order_relaxed);
}

// ---- acquire / release ------------------------------------------------------
template <class T>
[[gnu::always_inline]] inline T load_acquire(const std::atomic<T>& a) noexcept {
  return a.load(std::memory_order_acquire);
}
template <class T>
[[gnu::always_inline]] inline void store_release(std::atomic<T>& a, std::type_identity_t<T> v) noexcept {
  a.store(v, std::memory_order_release);
}
// Release on success (what this thread wrote before is published with `desired`),
// relaxed on failure (`expected` gets the current value, only to be compared again).
// Weak: may fail spuriously; call it in a loop.
template <class T>
[[gnu::always_inline]] inline bool cas_weak_release(std::atomic<T>& a, T& expected, std::type_identity_t<T> desired) noexcept {
  return a.compare_exchange_weak(expected, desired, std::memory_order_release,
                                 std::memory_order_relaxed);
}

// ---- seq_cst ----------------------------------------------------------------
template <class T>
[[gnu::always_inline]] inline T load_seq_cst(const std::atomic<T>& a) noexcept {
  return a.load(std::memory_order_seq_cst);
}
template <class T>
[[gnu::always_inline]] inline void store_seq_cst(std::atomic<T>& a, std::type_identity_t<T> v) noexcept {
  a.store(v, std::memory_order_seq_cst);
}
// seq_cst on success and failure (a locked instruction: a full fence either way).
template <class T>
[[gnu::always_inline]] inline bool cas_seq_cst(std::atomic<T>& a, T& expected, std::type_identity_t<T> desired) noexcept {
  return a.compare_exchange_strong(expected, desired, std::memory_order_seq_cst);
}

// Weak: may fail spuriously; call it in a loop.
template <class T>
[[gnu::always_inline]] inline bool cas_weak_seq_cst(std::atomic<T>& a, T& expected, std::type_identity_t<T> desired) noexcept {
  return a.compare_exchange_weak(expected, desired, std::memory_order_seq_cst);
}
template <class T>
[[gnu::always_inline]] inline T fetch_add_seq_cst(std::atomic<T>& a, std::type_identity_t<T> n) noexcept {
  return a.fetch_add(n, std::memory_order_seq_cst);
}

// ---- the futex sleeper handshake --------------------------------------------
// A sleeper announces itself by its bit in a sleepers word (data_sleepers,
// space_sleepers, durable_sleepers), re-checks the condition it waits for, sleeps on
// the futex word, and withdraws its bit when it wakes.  A waker changes the condition,
// then loads the sleepers word (seq_cst) and wakes if a bit is set.  All four steps are
// seq_cst, so in their one total order either the sleeper's re-check sees the change or
// the waker's load sees the bit: no wake-up is lost.
[[gnu::always_inline]] inline void announce_sleeper(std::atomic<uint64_t>& sleepers, uint64_t bit) noexcept {
  sleepers.fetch_or(bit, std::memory_order_seq_cst);
}
[[gnu::always_inline]] inline void withdraw_sleeper(std::atomic<uint64_t>& sleepers, uint64_t bit) noexcept {
  sleepers.fetch_and(~bit, std::memory_order_seq_cst);
}

}  // namespace shmbus::detail
