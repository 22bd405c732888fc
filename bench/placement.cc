#include "placement.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "stats.h"

namespace bench {
namespace {

std::string ns_text(double ns) { return fmt("%.0f ns", ns); }

}  // namespace

Budget PlacementGuard::probe_budget() const {
  Budget b = b_;
  b.lat_warmup = 2000;
  b.lat_warmup_max_s = 0.005;
  b.lat_round_trips = 10000;
  b.lat_max_s = 0.01;
  b.timeout = std::chrono::milliseconds(5000);
  return b;
}

double PlacementGuard::probe() const {
  LatencyRun r = run_raw_pingpong(probe_budget());
  return r.ok ? summarize(r.samples_ns).p50 : 0;
}

bool PlacementGuard::at_reference(double ns) const {
  return ns > 0 && ns <= ref_ns_ * o_.tolerance && ns * o_.tolerance >= ref_ns_;
}

bool PlacementGuard::start() {
  on_ = false;
  if (o_.tolerance <= 0) return false;
  std::vector<double> p;
  for (int i = 0; i < 3; ++i)
    if (const double ns = probe(); ns > 0) p.push_back(ns);
  if (p.size() < 3) return false;  // no reference: unguarded (summary() says so)
  std::sort(p.begin(), p.end());
  ref_ns_ = p[1];
  on_ = true;
  std::fprintf(stderr, "  placement guard: reference cache line %s\n", ns_text(ref_ns_).c_str());
  return true;
}

// A probe; while it finds another placement, waits for the reference one to come back:
// wait_each_s at most per call, wait_s in all.  Half a second between probes for the
// first 3 s of a wait, 5 s after (a patient wait, --placement-wait, probes a few ms in
// every 5 s rather than keep both cores busy).
double PlacementGuard::wait_for_reference() {
  double ns = probe();
  double waited = 0;
  while (!at_reference(ns) && waited < o_.wait_each_s && waited_s_ < o_.wait_s) {
    const double step = std::min({waited < 3 ? 0.5 : 5.0, o_.wait_each_s - waited, o_.wait_s - waited_s_});
    std::this_thread::sleep_for(std::chrono::duration<double>(step));
    waited += step;
    waited_s_ += step;
    ns = probe();
  }
  misses_ = at_reference(ns) ? 0 : misses_ + 1;
  return ns;
}

bool PlacementGuard::restart() {
  history_ += (history_.empty() ? "" : ", ") + ns_text(ref_ns_);
  ++restarts_;
  misses_ = 0;
  waited_s_ = 0;
  remeasured_ = kept_off_ = 0;
  return start();
}

std::string PlacementGuard::run(const std::string& what, const std::function<bool()>& measure,
                                const std::function<void()>& discard) {
  if (!on_) {
    (void)measure();
    return {};
  }
  std::string discarded;  // where the measurement last discarded ran
  for (int attempt = 0;; ++attempt) {
    const double before = wait_for_reference();
    const bool measured = measure();
    const double after = probe();
    // A retry that measured nothing (its failure is the caller's to report): the one it
    // replaced is gone, and the note says so.
    if (!measured)
      return discarded.empty() ? std::string()
                               : "discarded at another placement (" + discarded + "), and measuring it again failed";
    if (at_reference(before) && at_reference(after)) return {};
    const std::string where = "cache line " + ns_text(before) + " before, " + ns_text(after) +
                              " after (reference " + ns_text(ref_ns_) + ")";
    if (attempt >= o_.retries || waited_s_ >= o_.wait_s) {
      ++kept_off_;
      return "kept at another placement: " + where;
    }
    ++remeasured_;
    std::fprintf(stderr, "    %s: placement moved (%s): measured again\n", what.c_str(),
                 where.c_str());
    discard();
    discarded = where;
  }
}

std::string PlacementGuard::summary() const {
  if (o_.tolerance <= 0) return {};
  if (!on_)
    return "placement guard: off (the reference probes failed" +
           (restarts_ == 0 ? std::string(")")
                           : " when the run started over after the placement moved for good "
                             "from " + history_ + "; the cells were measured again unguarded)");
  return "placement guard: reference cache line one-way p50 " + ns_text(ref_ns_) +
         " (the median of 3 probes of " + std::to_string(probe_budget().lat_round_trips) +
         " round trips before the first cell); every cell and every scaling measurement ran "
         "between two such probes and was measured again when either differed from the "
         "reference by more than " + fmt("%.2fx", o_.tolerance) + " (at most " + std::to_string(o_.retries) +
         " times, waiting up to " + fmt("%.0f s", o_.wait_each_s) +
         (o_.wait_each_s < o_.wait_s ? " at a time and " + fmt("%.0f s", o_.wait_s) + " in all" : std::string(" in all")) +
         " for the placement to come back): " +
         std::to_string(remeasured_) + " measurements discarded and taken again, " +
         std::to_string(kept_off_) + " kept off the reference placement (noted in their rows), " +
         fmt("%.1f s", waited_s_) + " waited" +
         (restarts_ == 0 ? std::string()
                         : "; the run started over " + std::to_string(restarts_) +
                               (restarts_ == 1 ? " time" : " times") +
                               " when the placement moved for good (references given up: " +
                               history_ + "), and these counts are the last start's");
}

}  // namespace bench
