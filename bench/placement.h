// bench/placement.h: the placement guard.  The VM moves its vCPUs between placements
// where a cache-line hand-off costs ~35, ~60 or ~300 ns, within minutes and within a run,
// and every ratio to a baseline holds only at one placement.  The guard takes a
// reference (the median of three short probes of the raw cache line) and runs each
// measurement between two probes; one whose probe before or after differs from the
// reference by more than `tolerance` either way is discarded and taken again, after
// waiting a little for the placement to come back.  bench/README.md, "The placement
// guard".
#pragma once

#include <functional>
#include <string>

#include "workloads.h"

namespace bench {

struct PlacementOptions {
  double tolerance = 1.4;  // 0: no guard (every measurement taken once, as it falls)
  int retries = 2;         // measurements taken again, at most, per measurement
  double wait_s = 120;     // the most a run waits, in total, for the placement
  double wait_each_s = 3;  // the most one wait lasts (--placement-wait: as wait_s)
  int restarts = 2;        // a run starts over at most this often (PlacementGuard::lost())
};

class PlacementGuard {
 public:
  PlacementGuard(const Budget& b, const PlacementOptions& o) : b_(b), o_(o) {}

  // Takes the reference.  False (and the guard off) when disabled or a probe failed.
  bool start();
  bool on() const { return on_; }

  // Runs `measure` (true: it measured something) between two probes, and again, after
  // `discard` undid what it recorded, while either probe is off the reference placement
  // (at most `retries` times).  Returns "" or, for a measurement kept off the placement,
  // a note saying where it ran.  `what` names it in the progress lines (stderr).
  std::string run(const std::string& what, const std::function<bool()>& measure,
                  const std::function<void()>& discard);

  // The reference placement seems gone for good: the last 3 waits for it (up to
  // wait_each_s each; single probes once the run's wait budget is spent) ended on another
  // placement.
  // A run can then start over at the placement it is on (restart()) rather than keep
  // every cell off the reference.
  bool lost() const { return on_ && misses_ >= 3; }
  // Takes a new reference (as start()) with a fresh wait budget; counted in summary().
  bool restart();
  int restarts() const { return restarts_; }
  bool may_restart() const { return lost() && restarts_ < o_.restarts; }

  // What the guard did, for the run's description ("" when disabled).
  std::string summary() const;

 private:
  Budget probe_budget() const;
  double probe() const;  // one-way p50 of a short cache-line ping-pong, ns (0: failed)
  bool at_reference(double ns) const;
  double wait_for_reference();

  Budget b_;
  PlacementOptions o_;
  bool on_ = false;
  double ref_ns_ = 0;
  int remeasured_ = 0, kept_off_ = 0;
  double waited_s_ = 0;
  int misses_ = 0;    // waits in a row that ended off the reference placement
  int restarts_ = 0;
  std::string history_;  // the references given up, for summary()
};

}  // namespace bench
