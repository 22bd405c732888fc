// chaos.h: hooks at each numbered step of the ring protocol, for the chaos harness
// (tests/chaos).  The steps and their numbers are listed in shm/FORMAT.md ("Protocol
// steps"); each SHMBUS_CHAOS_POINT(kName) in shm/src sits where that list says.
//
// In an ordinary build (SHMBUS_CHAOS not defined) every hook expands to nothing: no
// branch, no call, no data; the objects are the same as without the hooks.  The library
// built with SHMBUS_CHAOS (the shmbus_shm_chaos target) calls a process-local handler
// that the harness installs, which may sleep, yield, spin or kill -9 its own process
// there, and counts the futex system calls this thread makes.
#pragma once

#include <cstdint>

namespace shmbus::detail {

// The protocol steps, numbered as in shm/FORMAT.md.  Appending is free; the numbers are
// only names for people (the doc and the code point at each other through them).
enum class ChaosStep : uint8_t {
  // Claim (Producer::Impl::reserve)
  kClaimRead,        // C1 claim cursor read, room not yet checked
  kClaimAdvertised,  // C2 slot's claiming word stored, before the claim CAS16
  kClaimTaken,       // C3 CAS16 done: bytes and seqs ours, no header written yet
  kClaimPadded,      // C4 the pad record's tag written (only when the claim wraps)
  // Fill (begin, claimed, the payload)
  kFillFields,       // F1 owner label and header fields written, no pending tag yet
  kFillPending,      // F2 the pending tag swapped in
  kFillClaimed,      // F3 claiming word cleared: every header of the claim is labelled
  kFillPayload,      // F4 payload copied, before the commit store
  // Commit
  kCommitted,        // M1 commit store done (pending -> data), before waking consumers
  kCommitWoken,      // M2 consumers woken (if any slept)
  // Abort (Claim::abort)
  kAbortBefore,      // A1 before the pending -> gap CAS
  kAborted,          // A2 gap CAS done, before waking consumers
  // Batch (publish_batch)
  kBatchBegun,       // B1 after each record's pending tag
  kBatchPayloads,    // B2 every payload copied, before the first commit
  kBatchCommitted,   // B3 after each record's commit store
  // Registration
  kRegLocked,        // R1 registry lock taken
  kRegSlotHeld,      // R2 a slot's liveness lock held, its fields not yet written
  kRegPublished,     // R3 consumer position stored and slot ready, before the floor re-check
  kRegLeaving,       // R4 close(): under the registry lock, before the slot is released
  // Eviction
  kEvictFound,       // E1 a dead durable consumer found, before the registry lock
  kEvicted,          // E2 its evicted flag stored
  kRejoin,           // E3 an evicted consumer stored its new position, before its floor re-check
  // Abandon
  kAbandonDead,      // X1 a claim's owner found dead, before the gap CAS
  kAbandonHeld,      // X2 hold stored and head re-read (not past the claim), before the gap CAS
  kAbandoned,        // X3 gap CAS done, before the dead owner is recorded
  // Resync (tailing readers)
  kResyncCopied,     // S1 payload copied, before the lap check
  kResync,           // S2 lapped: before reading floor
  // Head and floor
  kHeadScanned,      // H1 head scan done, before raising head
  kFloorRaised,      // H2 floor raised, before re-reading the consumer slots
  // Waiting
  kDataSleep,        // W1 consumer's sleeper bit set, before its re-check and futex wait
  kSpaceSleep,       // W2 producer's sleeper bit set, before its re-check and futex wait
  kTailFields,       // S3 a tailing reader read a record's tag and fields, before its copy
  kCount
};

// "C1".."W2" and a short name, for reports.
const char* chaos_step_code(ChaosStep s) noexcept;
const char* chaos_step_name(ChaosStep s) noexcept;

// The handler a chaos build calls at every step.  Thread: called on the thread that
// reaches the step; must be async-signal-safe enough to run anywhere in the library (no
// locks a hooked step may hold, no allocation from the hooks' callers' locks).
using ChaosHandler = void (*)(ChaosStep) noexcept;
// Installs (or with nullptr removes) the process-local handler.  Thread: any.
void set_chaos_handler(ChaosHandler h) noexcept;
// Whether this library was built with SHMBUS_CHAOS (hooks and counters live).
bool chaos_enabled() noexcept;
// futex system calls (wait and wake) made by the calling thread / by this process, as
// counted in the futex wrappers (chaos builds only; 0 otherwise).
uint64_t chaos_futex_calls_this_thread() noexcept;
uint64_t chaos_futex_calls() noexcept;

#ifdef SHMBUS_CHAOS
void chaos_point(ChaosStep s) noexcept;
void chaos_count_futex() noexcept;
#define SHMBUS_CHAOS_POINT(step) ::shmbus::detail::chaos_point(::shmbus::detail::ChaosStep::step)
#define SHMBUS_CHAOS_FUTEX() ::shmbus::detail::chaos_count_futex()
#else
#define SHMBUS_CHAOS_POINT(step) static_cast<void>(0)
#define SHMBUS_CHAOS_FUTEX() static_cast<void>(0)
#endif

}  // namespace shmbus::detail
