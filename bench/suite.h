// bench/suite.h: which rows run, in which order, and with how many repetitions.
#pragma once

#include <string>

#include "placement.h"
#include "report.h"
#include "workloads.h"

namespace bench {

struct SuiteOptions {
  Budget budget;
  int reps = 3;
  bool quick = false;
  std::string only;  // comma-separated substrings of row names; empty: every row
  std::string cli;   // the shmbus CLI for the footprint rows (default: next to the bench)
  // Cells (but the raw cache line's own first and last rows) and the scaling
  // measurements run under the placement guard (placement.h).
  PlacementOptions placement;
};

// Runs every row (the raw cache line first and last) and fills the report.
// Thread: main only; forks for every measurement.
Report run_suite(const SuiteOptions& o);

}  // namespace bench
