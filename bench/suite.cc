#include "suite.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <sstream>

#include "clock.h"
#include "extras.h"
#include "harness.h"
#include "placement.h"
#include "roudi.h"

#ifndef SHMBUS_BENCH_BUILD_TYPE
#define SHMBUS_BENCH_BUILD_TYPE "unknown"
#endif

namespace bench {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// `name` is the row's name plus any short keys ("zmq").
bool selected(const SuiteOptions& o, const std::string& name) {
  if (o.only.empty()) return true;
  std::stringstream parts(o.only);
  for (std::string p; std::getline(parts, p, ',');)
    if (!p.empty() && lower(name).find(lower(p)) != std::string::npos) return true;
  return false;
}

void progress(const std::string& what) {
  std::fprintf(stderr, "  %s\n", what.c_str());
}

std::string size_label(size_t s) {
  return s >= 1024 ? std::to_string(s / 1024) + " KiB" : std::to_string(s) + " B";
}

// One cell of the table, run once per repetition.
struct Job {
  int row = -1;
  int cell = -1;  // -1: the latency columns; else the throughput size kTputSizes[cell]
  std::string label;
  bool needs_roudi = false;
  std::function<LatencyRun()> latency;
  std::function<TputRun()> throughput;
  // Results over repetitions.
  std::vector<Latency> lat;
  std::vector<double> rates;
  std::vector<std::string> failures;
  Anomalies anomalies;
  std::vector<std::string> cleanup_problems;
  std::vector<std::string> placement;  // repetitions kept off the reference placement
  // The measurements only: a stream left behind (cleanup_problems) stays reported.
  void clear() {
    lat.clear();
    rates.clear();
    failures.clear();
    anomalies = Anomalies{};
    placement.clear();
  }
};

// Builds the rows and their jobs, runs the jobs round-robin (every repetition visits every
// row, so a vCPU placement change mid-run hits all rows alike), and fills the cells.
class Plan {
 public:
  Plan(const SuiteOptions& o, Report* r) : o_(o), r_(r), guard_(o.budget, o.placement) {}

  int add_row(const std::string& name, const std::string& na = {}) {
    Row row;
    row.name = name;
    row.na = na;
    r_->rows.push_back(std::move(row));
    return int(r_->rows.size()) - 1;
  }
  void add_latency(std::vector<Job>* list, int row, std::string label,
                   std::function<LatencyRun()> run, bool roudi = false) {
    Job j;
    j.row = row;
    j.label = std::move(label);
    j.latency = std::move(run);
    j.needs_roudi = roudi;
    list->push_back(std::move(j));
  }
  // Ping-pong latency and every throughput size of one transport.
  int add_transport(Transport& t, bool latency, bool throughput, int producers = 1,
                    const std::string& name = {}, bool roudi = false,
                    unsigned sizes = kSizesDefault) {
    const int row = add_row(name.empty() ? t.name() : name, t.unavailable());
    if (!t.unavailable().empty()) return row;
    if (latency)
      add_latency(&main_, row, "64 B ping-pong",
                  [this, &t] { return run_pingpong(t, 64, o_.budget); }, roudi);
    for (int k = 0; throughput && k < kNumTputSizes; ++k) {
      if (!(sizes & (1u << k))) continue;
      Job j;
      j.row = row;
      j.cell = k;
      j.label = size_label(kTputSizes[k]) + " throughput";
      j.needs_roudi = roudi;
      j.throughput = [this, &t, k, producers] {
        return run_throughput(t, kTputSizes[k], producers, o_.budget);
      };
      main_.push_back(std::move(j));
    }
    return row;
  }
  int add_stream(Transport& t) {
    const int row = add_row(t.name() + ", 64 B at " +
                            fmt("%.0f", o_.budget.stream_rate / 1e3) +
                            "k/s: now - stamp");
    add_latency(&main_, row, "fixed-rate stream",
                [this, &t] { return run_streaming(t, 64, o_.budget); });
    return row;
  }
  // Records spaced sleep_gap_s apart: wider than a kBlock consumer's spin window.
  int add_sleeping(Transport& t) {
    const double gap = o_.budget.sleep_gap_s;
    const int row = add_row(t.name() + ", 64 B every " + fmt("%.0f", gap * 1e3) +
                            " ms (receiver asleep): now - stamp");
    add_latency(&main_, row, "spaced stream", [this, &t, gap] {
      return run_streaming_at(t, 64, o_.budget, 1.0 / gap, o_.budget.sleep_s);
    });
    return row;
  }
  enum class When { kFirst, kRoundRobin, kLast };
  int add_raw(const char* what, When when) {
    const int row = add_row(std::string("raw cache line ping-pong (") + what + ")");
    std::vector<Job>* list =
        when == When::kFirst ? &first_ : when == When::kLast ? &last_ : &main_;
    add_latency(list, row, "cache line", [this] { return run_raw_pingpong(o_.budget); });
    return row;
  }

  void run_first() { run_rounds(first_, false); }
  // Under the guard, started over (every cell's results dropped) when the placement moves
  // for good (PlacementGuard::lost()), at most PlacementOptions::restarts times: one
  // run's cells share one placement.
  void run_main() {
    guard_.start();
    for (;;) {
      run_rounds(main_, guard_.on());
      if (!guard_.may_restart()) break;
      progress("placement guard: the placement moved for good: starting over");
      for (Job& j : main_) j.clear();
      // The raw cache line's first row again too: it shows where the kept pass began.
      for (Job& j : first_) j.clear();
      run_first();
      guard_.restart();
    }
  }
  void run_last() { run_rounds(last_, false); }
  PlacementGuard& guard() { return guard_; }

  // Turns the results into cells and notes.
  void finish() {
    for (auto* list : {&first_, &main_, &last_})
      for (Job& j : *list) finish_job(j);
  }

 private:
  void run_rounds(std::vector<Job>& jobs, bool guarded) {
    for (int rep = 0; rep < o_.reps; ++rep) {
      RoudiProcess roudi;  // only while iceoryx jobs run: its threads disturb the others
      bool roudi_up = false;
      for (Job& j : jobs) {
        if (guarded && guard_.may_restart()) return;
        Row& row = r_->rows[size_t(j.row)];
        if (!row.na.empty()) continue;
        if (j.needs_roudi && !roudi_up) {
          std::fprintf(stderr, "starting iox-roudi\n");
          if (std::string why = roudi.start(); !why.empty()) {
            row.na = why;
            continue;
          }
          roudi_up = true;
        }
        if (guarded) run_placed(j, rep);
        else run_job(j, rep);
      }
      roudi.stop();
    }
  }

  void run_job(Job& j, int rep) {
    const std::string tag = "[" + std::to_string(rep + 1) + "/" + std::to_string(o_.reps) +
                            "] " + r_->rows[size_t(j.row)].name + ": " + j.label;
    if (j.latency) {
      LatencyRun r = j.latency();
      j.anomalies.add(r.anomalies);
      if (!r.cleanup_problem.empty()) j.cleanup_problems.push_back(r.cleanup_problem);
      if (!r.ok) {
        j.failures.push_back("rep " + std::to_string(rep + 1) + ": " + r.error);
        progress(tag + ": FAILED: " + r.error);
        return;
      }
      j.lat.push_back(summarize(r.samples_ns));
      const Latency& l = j.lat.back();
      progress(tag + ": p50 " + fmt("%.0f", l.p50) + " ns, p99.9 " +
               fmt("%.0f", l.p999) + " ns, n " + std::to_string(l.n));
    } else {
      TputRun r = j.throughput();
      j.anomalies.add(r.anomalies);
      if (!r.cleanup_problem.empty()) j.cleanup_problems.push_back(r.cleanup_problem);
      if (!r.ok) {
        j.failures.push_back("rep " + std::to_string(rep + 1) + ": " + r.error);
        progress(tag + ": FAILED: " + r.error);
        return;
      }
      j.rates.push_back(r.records_per_s);
      progress(tag + ": " + fmt("%.3f", r.records_per_s / 1e6) + " M rec/s, " +
               fmt("%.2f", r.bytes_per_s / 1e9) + " GB/s");
    }
  }

  // run_job() under the placement guard (again while it finds another placement).
  void run_placed(Job& j, int rep) {
    size_t nlat = 0, nrates = 0, nfail = 0;
    Anomalies before;
    const std::string note = guard_.run(
        r_->rows[size_t(j.row)].name + ": " + j.label,
        [&] {
          nlat = j.lat.size(), nrates = j.rates.size(), nfail = j.failures.size();
          before = j.anomalies;
          run_job(j, rep);
          return j.lat.size() > nlat || j.rates.size() > nrates;
        },
        [&] {
          j.lat.resize(nlat);
          j.rates.resize(nrates);
          j.failures.resize(nfail);
          j.anomalies = before;
        });
    if (!note.empty()) j.placement.push_back("rep " + std::to_string(rep + 1) + " " + note);
  }

  void finish_job(Job& j) {
    Row& row = r_->rows[size_t(j.row)];
    if (!row.na.empty()) return;
    const bool any = j.latency ? !j.lat.empty() : !j.rates.empty();
    const std::string error = j.failures.empty() ? "no result" : j.failures.front();
    if (j.latency) {
      row.lat.measured = true;
      if (any) row.lat.lat = combine(j.lat);
      else row.lat.error = error;
    } else {
      TputCell& c = row.tput[j.cell];
      c.measured = true;
      c.size = kTputSizes[j.cell];
      if (any) c.records_per_s = spread(j.rates);
      else c.error = error;
    }
    auto note = [&](const std::string& text) { row.notes.push_back(j.label + ": " + text); };
    if (any)
      for (const std::string& f : j.failures) note("failed " + f);
    for (const std::string& p : j.placement) note(p);
    const Anomalies& a = j.anomalies;
    const std::string over = " (sum of " + std::to_string(o_.reps) + " reps)";
    if (a.lost) note(std::to_string(a.lost) + " records lost by lapping, per lost()" + over);
    if (a.missing != a.lost)
      note("sequence gaps seen by the receiver: " + std::to_string(a.missing) +
           ", but lost() says " + std::to_string(a.lost) + over);
    if (a.disorder) note(std::to_string(a.disorder) + " records out of order or repeated" + over);
    if (a.corrupt) note(std::to_string(a.corrupt) + " torn or malformed records" + over);
    if (a.ts_bad) note(std::to_string(a.ts_bad) + " Record::ts_ns outside [send, receive]" + over);
    if (a.unaccounted)
      note(std::to_string(a.unaccounted) + " records neither received nor counted lost" + over);
    if (j.latency && (a.faults || a.preempts))
      note("while measuring: " + std::to_string(a.faults) + " page faults, " +
           std::to_string(a.preempts) + " preemptions" + over);
    if (a.rx_records)
      note("the receiver slept (voluntary context switches) " + std::to_string(a.rx_sleeps) +
           " times for " + std::to_string(a.rx_records) + " measured records" + over);
    for (const std::string& c : j.cleanup_problems) note("cleanup: " + c);
  }

  const SuiteOptions& o_;
  Report* r_;
  std::vector<Job> first_, main_, last_;
  PlacementGuard guard_;
};

std::string read_first_line(const std::string& path, const std::string& key = {}) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (key.empty()) return line;
    if (line.rfind(key, 0) == 0) {
      const size_t colon = line.find(':');
      return colon == std::string::npos ? line : line.substr(colon + 2);
    }
  }
  return "unknown";
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&t));
  return buf;
}

void describe_run(const SuiteOptions& o, Report* r) {
  const Budget& b = o.budget;
  utsname u{};
  uname(&u);
  r->date = utc_now();
  r->build_type = SHMBUS_BENCH_BUILD_TYPE;
  r->meta.push_back(std::string("host: ") + u.nodename + ", Linux " + u.release + ", " +
                    read_first_line("/proc/cpuinfo", "model name") + ", " +
                    std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + " online cores");
  r->meta.push_back(std::string("build: CMAKE_BUILD_TYPE=") + SHMBUS_BENCH_BUILD_TYPE +
                    ", g++ " + __VERSION__ + (o.quick ? ", --quick run" : ""));
  r->meta.push_back(
      "pinning (sched_setaffinity): producer / ping side on core " + std::to_string(b.core_a) +
      ", consumer / pong side on core " + std::to_string(b.core_b) +
      "; separate processes (fork). 2-producer row: both producers share core " +
      std::to_string(b.core_a) + " (3 busy processes on 2 cores: oversubscribed)");
  r->meta.push_back(
      "latency: 64 B ping-pong, one-way = RTT/2 timed with " +
      std::string(ticks_are_tsc() ? "the TSC (" + fmt("%.3f", ticks_per_ns()) +
                                        " GHz, clocksource " +
                                        read_first_line("/sys/devices/system/clocksource/"
                                                        "clocksource0/current_clocksource") +
                                        ")"
                                  : "CLOCK_MONOTONIC") +
      ", " + std::to_string(b.lat_warmup) + " warm-up round trips (at most " +
      fmt("%.2f", b.lat_warmup_max_s) + " s), then up to " +
      std::to_string(b.lat_round_trips) + " (at most " + fmt("%.2f", b.lat_max_s) +
      " s); reps: median of each percentile, max of maxima");
  r->meta.push_back("throughput: 64 B, 1 KiB, 64 KiB records (4 KiB: shmbus durable, the "
                    "SPSC ring and the header ring only; publish_batch: 64 B and 1 KiB), sender busy for " +
                    fmt("%.2f", b.tput_s) +
                    " s, rate = records received / (first send .. last receive); every "
                    "receiver checks each producer's sequence and the tail word, and loads "
                    "one word of every cache line of every record");
  r->meta.push_back("fixed-rate stream: 64 B at " + fmt("%.0f", b.stream_rate) +
                    " rec/s for " + fmt("%.2f", b.stream_s) + " s after " +
                    std::to_string(b.lat_warmup) + " unpaced and " +
                    fmt("%.2f", b.stream_warmup_s) +
                    " s paced warm-up records; CLOCK_MONOTONIC stamp on both sides, taken "
                    "when sent (a late sender is not charged)");
  r->meta.push_back(
      "rings: shmbus 1 MiB (latency) / 4 MiB (throughput), max_record 128 KiB, busy-spin; "
      "SPSC ring same bytes, slot = record (its wide variant: record + 32 B, rounded to 32); pipe 1 MiB; Boost mq min(4 MiB/record, 4096) "
      "messages; ZeroMQ default HWM; iceoryx built-in RouDi pools, queue 256 (64 for 64 KiB)");
  r->meta.push_back("repetitions: " + std::to_string(o.reps) +
                    " per cell, round-robin (each repetition visits every row in turn, so a "
                    "vCPU placement change hits all rows alike); the raw cache line runs "
                    "first and last");
  r->meta.push_back("tailing rows: producers never wait for a tailing reader, so rec/s "
                    "counts records received and the notes count the ones lapped");
  r->meta.push_back(
      "wake-up rows: the fixed-rate stream's method with a kBlock consumer (spin ~2000 "
      "pauses, ~100 sched_yield, futex sleep): at " + fmt("%.0f", b.stream_rate / 1e3) +
      "k/s (inside its spin window) and one record every " +
      fmt("%.1f", b.sleep_gap_s * 1e3) + " ms for " + fmt("%.2f", b.sleep_s) +
      " s (asleep), against the raw futex hand-off at the same spacing (its receiver "
      "sleeps in FUTEX_WAIT at once, its sender always calls FUTEX_WAKE); the notes count "
      "the receiver's sleeps");
}

}  // namespace

Report run_suite(const SuiteOptions& o) {
  Report r;
  describe_run(o, &r);
  Plan plan(o, &r);

  r.idx.raw_start = plan.add_raw("start", Plan::When::kFirst);
  // Measured right before shmbus in every repetition: the same vCPU placement.
  r.idx.raw_paired = plan.add_raw("paired, just before shmbus", Plan::When::kRoundRobin);
  auto shmbus = make_shmbus(ShmbusMode::kDurable);
  auto tailing = make_shmbus(ShmbusMode::kTailing);
  auto durable_copy = make_shmbus(ShmbusMode::kDurableCopy);
  auto claim = make_shmbus(ShmbusMode::kDurableClaim);
  auto block = make_shmbus(ShmbusMode::kDurableBlock);
  auto batch = make_shmbus(ShmbusMode::kDurableBatch);
  auto single = make_shmbus(ShmbusMode::kDurableSingle);
  auto single_batch = make_shmbus(ShmbusMode::kDurableSingleBatch);
  auto futex = make_futex();
  if (selected(o, shmbus->name()))
    r.idx.shmbus = plan.add_transport(*shmbus, true, true, 1, {}, false, kSizesAll);
  if (selected(o, tailing->name())) r.idx.tailing = plan.add_transport(*tailing, true, true);
  auto tailing_in_place = make_shmbus(ShmbusMode::kTailingInPlace);
  if (selected(o, tailing_in_place->name()))
    r.idx.tailing_in_place = plan.add_transport(*tailing_in_place, false, true);
  if (selected(o, durable_copy->name())) plan.add_transport(*durable_copy, false, true);
  if (selected(o, claim->name())) plan.add_transport(*claim, false, true);
  if (selected(o, single->name()))
    r.idx.shmbus_single = plan.add_transport(*single, true, true, 1, {}, false, kSizesAll);
  if (selected(o, shmbus->name())) {
    r.idx.shmbus_two = plan.add_transport(*shmbus, false, true, 2,
                                          "shmbus durable, 2 producers -> 1 consumer (oversubscribed)");
    r.idx.shmbus_stream = plan.add_stream(*shmbus);
  }
  if (selected(o, batch->name() + " batch"))
    r.idx.shmbus_batch = plan.add_transport(*batch, false, true, 1, {}, false, 0b0011);
  if (selected(o, single_batch->name() + " batch"))
    r.idx.shmbus_single_batch = plan.add_transport(*single_batch, false, true, 1, {}, false, 0b0011);
  // The busy-spin baselines run right after shmbus's busy-spin rows, before any row whose
  // processes sleep (kBlock, futex, pipe, sockets, Boost, ZeroMQ, iceoryx): on the AMD EPYC
  // host a vCPU that slept came back, for seconds, on a placement where a cache-line
  // hand-off cost ~3x as much (2026-12-02 11:42 UTC: the cache line 65-70 ns at the start,
  // just before shmbus and at the end, shmbus 80 ns, the SPSC ring after the futex rows
  // 266 ns), so the ratios to them compared two placements.
  auto spsc = make_spsc_ring();
  if (selected(o, spsc->name())) {
    r.idx.spsc = plan.add_transport(*spsc, true, true, 1, {}, false, kSizesAll);
    r.idx.spsc_stream = plan.add_stream(*spsc);
  }
  // The MPSC ring with 1 and 2 producers (64 B only, its producers on one core as
  // shmbus's): what two producers sharing a core cost a ring that delivers in claim order.
  auto mpsc = make_mpsc_ring();
  if (selected(o, mpsc->name())) {
    r.idx.mpsc = plan.add_transport(*mpsc, false, true, 1, {}, false, 0b0001);
    r.idx.mpsc_two = plan.add_transport(*mpsc, false, true, 2,
                                        mpsc->name() + ", 2 producers -> 1 consumer (oversubscribed)",
                                        false, 0b0001);
  }
  auto header_ring = make_header_ring();
  if (selected(o, header_ring->name()))
    r.idx.header_ring = plan.add_transport(*header_ring, true, true, 1, {}, false, kSizesAll);
  // The header ring with a TSC read per record (64 B only): what a per-record timestamp
  // costs by itself, against the header ring in the same run.
  auto stamped_ring = make_header_ring(true);
  if (selected(o, stamped_ring->name()))
    r.idx.header_ring_stamped = plan.add_transport(*stamped_ring, true, true, 1, {}, false, 0b0001);
  // The SPSC ring with shmbus's bytes of ring per record (throughput only): what the size
  // of the record format costs, apart from what shmbus does with it.
  auto spsc_wide = make_spsc_ring(1, 32);
  if (selected(o, spsc_wide->name()))
    r.idx.spsc_wide = plan.add_transport(*spsc_wide, false, true, 1, {}, false, kSizesAll);
  auto spsc_batch = make_spsc_ring(uint32_t(kShmbusBatch));
  if (selected(o, spsc_batch->name()))
    r.idx.spsc_batch = plan.add_transport(*spsc_batch, false, true, 1, {}, false, 0b0011);
  // Both (64 B only): the bound of a batch in shmbus's bytes per record.
  auto spsc_wide_batch = make_spsc_ring(uint32_t(kShmbusBatch), 32);
  if (selected(o, spsc_wide_batch->name()))
    r.idx.spsc_wide_batch = plan.add_transport(*spsc_wide_batch, false, true, 1, {}, false, 0b0001);
  // The kBlock rows and their raw futex baseline run together (the target needs both).
  if (selected(o, block->name() + " wake") || selected(o, futex->name())) {
    r.idx.block_stream = plan.add_stream(*block);
    r.idx.block_sleep = plan.add_sleeping(*block);
    r.idx.futex_pingpong = plan.add_transport(*futex, true, false);
    r.idx.futex_sleep = plan.add_sleeping(*futex);
  }
  auto pipe = make_pipe();
  if (selected(o, pipe->name())) plan.add_transport(*pipe, true, true);
  auto uds = make_unix_socket();
  if (selected(o, uds->name() + " uds")) plan.add_transport(*uds, true, true);
  auto mq = make_boost_mq();
  if (selected(o, mq->name() + " mq")) r.idx.boost_mq = plan.add_transport(*mq, true, true);
  auto zmq = make_zmq();
  if (selected(o, zmq->name() + " zmq")) plan.add_transport(*zmq, true, true);
  auto iox = make_iceoryx();  // last: RouDi runs only around these jobs
  if (selected(o, iox->name() + " iox"))
    r.idx.iceoryx = plan.add_transport(*iox, true, true, 1, {}, true);
  r.idx.raw_end = plan.add_raw("end", Plan::When::kLast);

  plan.run_first();
  {
    const RoleReport* rep = shared_area()->reports;
    if (rep[0].pinned_core != uint32_t(o.budget.core_a) ||
        rep[1].pinned_core != uint32_t(o.budget.core_b))
      r.meta.push_back("WARNING: pinning failed; rows ran unpinned");
  }
  plan.run_main();
  plan.run_last();
  plan.finish();

  // The second table: wake-up CPU, scaling with consumers, footprint.
  ExtrasOptions x;
  x.budget = o.budget;
  x.reps = o.reps;
  x.quick = o.quick;
  x.idle = selected(o, "shmbus wake idle");
  x.scaling = selected(o, "shmbus scaling");
  x.footprint = selected(o, "shmbus footprint");
  x.cli = o.cli.empty() ? find_cli() : o.cli;
  x.guard = &plan.guard();
  run_extras(x, &r.extras);
  if (std::string g = plan.guard().summary(); !g.empty()) r.meta.push_back(std::move(g));
  return r;
}

}  // namespace bench
