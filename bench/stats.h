// bench/stats.h: percentiles of latency samples and medians over repetitions.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace bench {

struct Latency {
  double p50 = 0, p99 = 0, p999 = 0, max = 0;  // ns
  size_t n = 0;
};

// Nearest-rank percentiles of one run's samples (the vector is sorted in place).
Latency summarize(std::vector<float>& samples_ns);
// Over repetitions: median of each percentile, max of the maxima, total n.
Latency combine(const std::vector<Latency>& reps);

struct Spread {
  double median = 0, min = 0, max = 0;
};
Spread spread(std::vector<double> values);

// One double through a printf format ("%.2f"): the tables' numbers.
std::string fmt(const char* f, double v);

}  // namespace bench
