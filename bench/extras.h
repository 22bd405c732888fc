// bench/extras.h: the measurements of shmbus-bench's second table, each against a
// baseline taken in the same run: CPU of an idle blocked consumer (against a raw futex
// sleeper), producer cost by number of registered durable consumers (against one), and
// footprint (ring bytes per record, RSS of idle producer and consumer processes, and the
// time and RSS of `shmbus stat` / `shmbus ls` on a 1 GiB ring against a 1 MiB one).
#pragma once

#include <string>
#include <vector>

#include "placement.h"
#include "report.h"
#include "workloads.h"

namespace bench {

struct ExtrasOptions {
  Budget budget;
  int reps = 3;
  bool quick = false;
  bool idle = true, scaling = true, footprint = true;
  std::string cli;  // the shmbus CLI for the stat/ls rows; empty: those rows are n/a
  // The scaling measurements run under it (placement.h); null: unguarded.
  PlacementGuard* guard = nullptr;
};

// Runs the selected measurements and appends their rows to *out.
// Thread: main only; forks for every measurement.
void run_extras(const ExtrasOptions& o, std::vector<Extra>* out);

// The shmbus CLI next to this executable in a build tree or an install, or empty.
std::string find_cli();

}  // namespace bench
