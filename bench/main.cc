// shmbus-bench: one run, one markdown table of IPC latency and throughput, shmbus
// against its baselines, with ratios to shmbus and the targets. See harness.h for what
// bench/ owns and workloads.h for how each number is measured.
//
//   shmbus-bench [--reps N] [--quick] [--json FILE] [--only a,b] [--cores A,B] [--cli PATH]
//                [--placement-tolerance X] [--placement-wait S] [--strict]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "clock.h"
#include "report.h"
#include "suite.h"

namespace {

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: shmbus-bench [options]\n"
               "  --reps N      repetitions per cell (default 3; median and min..max)\n"
               "  --quick       short smoke run (< 20 s): 1 repetition, short cells\n"
               "  --json FILE   also write the results as JSON\n"
               "  --only LIST   only rows whose name contains one of these (comma list),\n"
               "                e.g. --only shmbus,spsc (the raw cache line always runs)\n"
               "  --cores A,B   producer / consumer cores (default 0,1)\n"
               "  --cli PATH    the shmbus CLI timed by the footprint rows (default: the\n"
               "                one next to this executable)\n"
               "  --strict      exit 1 when a cell or measurement could not be taken (an\n"
               "                error, not a missed target; n/a baselines do not count)\n"
               "  --placement-tolerance X\n"
               "                measure a cell again when a cache-line probe before or\n"
               "                after it differs from the run's first probes by more than\n"
               "                X times either way: the vCPUs moved (default 1.4; 0: off)\n"
               "  --placement-wait S\n"
               "                wait up to S seconds in all for the first probes' placement\n"
               "                (default 120, at most 3 s per wait); above 120 each wait\n"
               "                lasts until it comes back or the S s are spent, and a cell\n"
               "                is measured again up to 5 times (a host that holds the\n"
               "                reference placement a few minutes at a time; up to 86400)\n");
}

bool parse_int(const char* s, int* out) {
  char* end = nullptr;
  const long v = std::strtol(s, &end, 10);
  if (end == s || *end != '\0' || v < 0 || v > 1000000) return false;
  *out = int(v);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  bench::SuiteOptions o;
  std::string json_path;
  bool strict = false;
  int reps = -1;
  double placement_wait = -1;  // --placement-wait (-1: the default, or --quick's)
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "shmbus-bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    } else if (a == "--quick") {
      o.quick = true;
    } else if (a == "--reps") {
      if (!parse_int(value(), &reps) || reps < 1) {
        std::fprintf(stderr, "shmbus-bench: --reps wants a positive number\n");
        return 2;
      }
    } else if (a == "--json") {
      json_path = value();
    } else if (a == "--placement-tolerance") {
      const char* v = value();
      char* end = nullptr;
      const double x = std::strtod(v, &end);
      // (1 itself would take every probe but an exact match as another placement.)
      if (end == v || *end != '\0' || !(x == 0 || (x > 1 && x <= 100))) {
        std::fprintf(stderr, "shmbus-bench: --placement-tolerance wants 0 (off) or a factor above 1, up to 100\n");
        return 2;
      }
      o.placement.tolerance = x;
    } else if (a == "--placement-wait") {
      const char* v = value();
      char* end = nullptr;
      const double s = std::strtod(v, &end);
      if (end == v || *end != '\0' || !(s >= 0 && s <= 86400)) {
        std::fprintf(stderr, "shmbus-bench: --placement-wait wants seconds, 0 to 86400\n");
        return 2;
      }
      placement_wait = s;
    } else if (a == "--strict") {
      strict = true;
    } else if (a == "--cli") {
      o.cli = value();
    } else if (a == "--only") {
      o.only = value();
    } else if (a == "--cores") {
      const std::string v = value();
      const size_t comma = v.find(',');
      if (comma == std::string::npos ||
          !parse_int(v.substr(0, comma).c_str(), &o.budget.core_a) ||
          !parse_int(v.substr(comma + 1).c_str(), &o.budget.core_b)) {
        std::fprintf(stderr, "shmbus-bench: --cores wants A,B (e.g. 0,1)\n");
        return 2;
      }
    } else {
      std::fprintf(stderr, "shmbus-bench: unknown option %s\n", a.c_str());
      usage(stderr);
      return 2;
    }
  }
  if (o.quick) {
    o.reps = 1;
    o.budget.lat_warmup_max_s = 0.1;
    o.budget.lat_round_trips = 20000;
    o.budget.lat_max_s = 0.15;
    o.budget.tput_s = 0.08;
    o.budget.stream_s = 0.15;
    o.budget.sleep_s = 0.1;
    o.budget.timeout = std::chrono::milliseconds(8000);
    o.placement.retries = 1;
    o.placement.wait_s = 3;
    o.placement.restarts = 0;
  }
  if (reps > 0) o.reps = reps;
  if (placement_wait >= 0) {
    o.placement.wait_s = placement_wait;
    o.placement.wait_each_s = std::min(placement_wait, o.placement.wait_each_s);
    if (placement_wait > 120) {  // patient
      o.placement.wait_each_s = placement_wait;
      o.placement.retries = 5;
    }
  }

  bench::calibrate_ticks();
  const bench::Report report = bench::run_suite(o);
  std::printf("\n");
  bench::print_markdown(stdout, report);
  std::fflush(stdout);
  if (!json_path.empty()) {
    std::string err;
    if (!bench::write_json(json_path, report, &err)) {
      std::fprintf(stderr, "shmbus-bench: %s\n", err.c_str());
      return 1;
    }
    std::fprintf(stderr, "wrote %s\n", json_path.c_str());
  }
  if (strict) {
    const int errors = bench::count_errors(report);
    if (errors > 0) {
      std::fprintf(stderr, "shmbus-bench: %d cells or measurements failed (see the notes)\n",
                   errors);
      return 1;
    }
  }
  return 0;
}
