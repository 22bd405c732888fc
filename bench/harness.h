// bench/: shmbus-bench, the pinned two-process IPC benchmark.
//
// bench/ owns one executable that measures shmbus and its baselines (raw cache line,
// SPSC ring, pipe, Unix socket, Boost message_queue, ZeroMQ, iceoryx) in one run and
// prints one markdown table.  This header is the process harness: every measurement
// forks its roles into separate processes, pins each to a core, meets at a barrier in an
// anonymous shared mapping, and reports through that mapping.  The parent never spins:
// it sleeps until a child exits or the cell's deadline passes (then it kills them).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace bench {

inline constexpr int kMaxRoles = 4;

// One role's report. Thread: written by that role's process only; read by the parent
// after the process exited (waitpid orders the accesses).
struct RoleReport {
  char error[240];
  uint32_t pinned_core;   // core it ran on, or ~0u if pinning failed
  uint64_t count;         // records sent (sender) or received (receiver), end markers excluded
  uint64_t lost;          // losses the transport itself reported (tailing-reader laps)
  uint64_t missing;       // gaps in a producer's sequence seen by the receiver
  uint64_t disorder;      // a producer's sequence went backwards or repeated
  uint64_t corrupt;       // the tail word did not match the head word
  uint64_t ts_bad;        // library timestamps outside [send stamp, receive time]
  uint64_t t_start_ns;    // CLOCK_MONOTONIC
  uint64_t t_end_ns;
  uint64_t nsamples;      // latency samples written to SharedArea::samples
  // Disturbances after Ctx::mark_measuring() (or after the start): page faults and
  // involuntary context switches (preemptions) of this process.
  // Voluntary context switches (sleeps: a futex wait, a blocking read) the same way.
  uint64_t mark_faults, mark_preempts, mark_sleeps;
  uint64_t faults, preempts, sleeps;
  uint64_t extra[5];      // results of a measurement of extras.cc (its own meaning)
};

// Lives in a MAP_SHARED | MAP_ANONYMOUS mapping made before any fork.
struct SharedArea {
  alignas(128) std::atomic<uint32_t> arrived;  // barrier count
  alignas(128) std::atomic<uint32_t> phase;    // barrier generation
  alignas(128) RoleReport reports[kMaxRoles];
  uint32_t nroles;
  // Latency samples in ns. Thread: written by the single measuring role of a run.
  static constexpr size_t kMaxSamples = size_t(1) << 21;
  alignas(128) float samples[kMaxSamples];
};

SharedArea* shared_area();  // created on first use (parent, before fork)

// What a role's process sees.
class Ctx {
 public:
  Ctx(int role, SharedArea* area) : role_(role), area_(area) {}
  int role() const noexcept { return role_; }
  RoleReport& report() noexcept { return area_->reports[role_]; }
  float* samples() noexcept { return area_->samples; }
  size_t max_samples() const noexcept { return SharedArea::kMaxSamples; }
  // Waits for every role; false if a peer did not arrive within 15 s.
  bool barrier() noexcept;
  // The warm-up is over: faults and preemptions are counted from here.
  void mark_measuring() noexcept;
  // Records the first error and returns a non-zero exit code.
  int fail(const std::string& what) noexcept;

 private:
  int role_;
  SharedArea* area_;
};

struct Role {
  int core;                        // -1: not pinned
  std::function<int(Ctx&)> body;   // runs in the child; its result is the exit code
};

struct RunOutcome {
  bool ok = false;
  std::string error;  // first role error, an abnormal exit, or the timeout
};

// Forks one process per role, runs them, waits at most `timeout`, kills stragglers.
// Reports are left in shared_area()->reports.
RunOutcome run_roles(const std::vector<Role>& roles, std::chrono::milliseconds timeout);

// Pins the calling process; returns the core or -1.
int pin_to_core(int core) noexcept;

}  // namespace bench
