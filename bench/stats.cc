#include "stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace bench {
namespace {

double rank(const std::vector<float>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t i = size_t(std::ceil(q * double(sorted.size())));
  i = std::clamp<size_t>(i, 1, sorted.size());
  return sorted[i - 1];
}

double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

}  // namespace

Latency summarize(std::vector<float>& s) {
  std::sort(s.begin(), s.end());
  Latency l;
  l.n = s.size();
  l.p50 = rank(s, 0.50);
  l.p99 = rank(s, 0.99);
  l.p999 = rank(s, 0.999);
  l.max = s.empty() ? 0 : s.back();
  return l;
}

Latency combine(const std::vector<Latency>& reps) {
  Latency out;
  std::vector<double> p50, p99, p999;
  for (const Latency& l : reps) {
    p50.push_back(l.p50);
    p99.push_back(l.p99);
    p999.push_back(l.p999);
    out.max = std::max(out.max, l.max);
    out.n += l.n;
  }
  out.p50 = median_of(p50);
  out.p99 = median_of(p99);
  out.p999 = median_of(p999);
  return out;
}

Spread spread(std::vector<double> v) {
  Spread s;
  if (v.empty()) return s;
  s.median = median_of(v);
  s.min = *std::min_element(v.begin(), v.end());
  s.max = *std::max_element(v.begin(), v.end());
  return s;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace bench
