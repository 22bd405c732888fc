// bench/suite.h: which rows run, in which order, and with how many repetitions.
#pragma once

#include <string>

#include "report.h"
#include "workloads.h"

namespace bench {

struct SuiteOptions {
  Budget budget;
  int reps = 3;
  bool quick = false;
  std::string only;  // comma-separated substrings of row names; empty: every row
  std::string cli;   // the shmbus CLI for the footprint rows (default: next to the bench)
  // The placement guard.  The VM moves its vCPUs between placements where a cache-line
  // hand-off costs ~35, ~60 or ~300 ns, within minutes and within a run, and every row's
  // ratio to its baselines holds only at one placement.  So each cell (but the raw cache
  // line's own first and last rows) runs between two short probes of the cache line; a
  // cell whose probes differ from the run's reference (the median of three probes taken
  // before the first cell) by more than this factor either way is measured again, after
  // waiting a little for the placement to come back, at most placement_retries times
  // (then kept, and noted).  0: no guard (every cell measured once, as it falls).
  double placement_tolerance = 1.4;
  int placement_retries = 2;
  double placement_wait_s = 120;  // the most a run waits, in total, for the placement
};

// Runs every row (the raw cache line first and last) and fills the report.
// Thread: main only; forks for every measurement.
Report run_suite(const SuiteOptions& o);

}  // namespace bench
