// soak_driver.h: the driver of the system soak (shmbus_soak), internal to it: the
// children it runs, its bookkeeping, and the Soak class, whose parts live in
// soak_main.cc (starting, killing and reaping children; the run), soak_checks.cc (what
// each child saw, checked as it ends; memory samples) and soak_summary.cc (the checks
// at the end and the summary).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "shmbus/shmbus.h"
#include "soak_roles.h"

#ifndef SHMBUS_CLI
#define SHMBUS_CLI "shmbus"
#endif

namespace shmbus::soak {

using Clock = std::chrono::steady_clock;

struct Config {
  double minutes = 60;
  std::string cli = SHMBUS_CLI;
  double rate = 0;          // total records/s; 0: half the measured peak
  uint64_t seed = 0;
  double kill_every = 2.0;  // mean seconds between kills
  int producers = 3, tailing = 3;
};

// ---- bookkeeping -------------------------------------------------------------------

struct Violations {
  std::vector<std::string> list;
  void add(const std::string& s) {
    if (list.size() < 1000) list.push_back(s);
    std::fprintf(stderr, "soak: VIOLATION: %s\n", s.c_str());
  }
};

struct Child {
  Role role;
  std::string name;     // p0, d1, t2, persister, replay
  bool steady = false;  // long-lived: never killed, memory sampled
  pid_t pid = 0;
  uint32_t inc = 0;
  Clock::time_point restart_at{};  // when dead: when to start again (max: never)
  bool killed = false;             // the current death was our kill -9
  uint32_t group = 0;
  std::string out, err;  // replay: its stdout and stderr files
};

struct MemSample {
  uint64_t rss_kb = 0;
  uint64_t fds = 0;
};

// Memory probes (soak_checks.cc).
uint64_t rss_kb(pid_t pid);
uint64_t open_fds(pid_t pid);
// Bytes of the namespace's objects in /dev/shm (allocated blocks).
uint64_t shm_bytes(const std::string& ns, uint64_t* objects);
uint64_t dir_bytes(const std::string& dir);

// ---- the driver --------------------------------------------------------------------

class Soak {
 public:
  explicit Soak(Config c) : cfg_(std::move(c)), rng_(cfg_.seed) {}
  int run();

 private:
  uint32_t new_incarnation(Role r);
  void start(Child& c);
  void kill9(Child& c);
  void reap();
  void on_exit(Child& c, int status);
  void check_tailing(uint32_t inc);
  void check_replay(Child& c, bool final_replay = false);
  void check_persister_log(Child& c);
  std::string fsck_now();
  void sample_memory();
  StreamInfo info();
  void stop_all(Role r);
  double peak_rate();
  // The end: the checks of the shared bookkeeping and memory, and the summary
  // (soak_summary.cc).  fin: the stream when producers stopped; last: after the drain.
  int finish(const StreamInfo& fin, const StreamInfo& last, Clock::time_point t0);

  Config cfg_;
  std::mt19937_64 rng_;
  std::string ns_, stream_ = "s", data_dir_, work_dir_;
  Shared* sh_ = nullptr;
  std::vector<Child> kids_;
  Violations v_;
  double rate_ = 0;
  std::map<std::string, uint64_t> kills_, starts_;
  uint64_t tail_delivered_ = 0, tail_lost_ = 0, tail_gaps_ = 0, tail_laps_ = 0;
  uint64_t replay_records_ = 0, replay_gap_seqs_ = 0, replays_ = 0;
  uint64_t tail_checked_ = 0;
  std::map<std::string, std::pair<MemSample, MemSample>> mem_;  // first, last
  uint64_t shm_first_ = 0, shm_last_ = 0, store_first_ = 0, store_last_ = 0, store_max_ = 0;
  bool mem_started_ = false;
  bool stall_dumped_ = false;
  std::vector<std::string> persister_warnings_;
  std::map<std::string, uint64_t> gap_reasons_;  // replay gap notes by reason
  uint64_t final_first_ = 0, final_last_ = 0, final_n_ = 0;
  uint64_t persister_warning_count_ = 0;
};

}  // namespace shmbus::soak
