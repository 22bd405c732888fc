// bench/workloads.h: the measurements, each one fork of pinned roles over a Transport.
//
// Ping-pong: role A (core a) sends a record on channel 0 and waits for its echo on
// channel 1 from role B (core b); one-way = RTT / 2, timed with ticks(). Throughput:
// senders stream fixed-size records for a fixed time, then an end marker; the receiver
// checks each producer's sequence and the tail word, and the rate is records received
// over [first send, last receive]. Streaming: the sender paces records at a fixed rate
// with a CLOCK_MONOTONIC stamp; the receiver's sample is now - stamp.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "harness.h"
#include "transport.h"

namespace bench {

struct Budget {
  int core_a = 0;                 // sender / ping side
  int core_b = 1;                 // receiver / pong side
  // Round trips discarded first: enough to lap a 1 MiB ring of 64 B records twice, so the
  // first touch of each page (a fault per process) is not mistaken for transport latency.
  uint64_t lat_warmup = 50'000;
  double lat_warmup_max_s = 0.3;  // slow transports stop warming up after this long
  uint64_t lat_round_trips = 100'000;
  double lat_max_s = 1.5;         // stop measuring round trips after this long
  double tput_s = 0.3;            // sending time per throughput cell
  double stream_rate = 100'000;   // records per second
  double stream_s = 1.0;
  double stream_warmup_s = 0.05;
  // Wake-up rows: records spaced wider than a kBlock consumer's spin window (it sleeps).
  double sleep_gap_s = 0.002;
  double sleep_s = 1.0;
  std::chrono::milliseconds timeout{20'000};  // per run: then the roles are killed
};

// What the receivers found wrong, summed over roles (and later over repetitions).
struct Anomalies {
  uint64_t lost = 0;         // the transport's own loss counter (tailing-reader laps)
  uint64_t missing = 0;      // gaps in a producer's sequence as seen by the receiver
  uint64_t disorder = 0;     // a producer's sequence went backwards or repeated
  uint64_t corrupt = 0;      // torn tail word, bad producer id or wrong size
  uint64_t ts_bad = 0;       // library timestamps outside [send stamp, receive time]
  uint64_t unaccounted = 0;  // sent - received - lost, when not zero
  uint64_t faults = 0;       // page faults of all roles while measuring
  uint64_t preempts = 0;     // involuntary context switches of all roles while measuring
  // Streaming rows: the receiver's voluntary context switches (sleeps) while measuring,
  // and the records it measured: tells a row that slept on every record from one that
  // caught them while spinning.
  uint64_t rx_sleeps = 0;
  uint64_t rx_records = 0;
  void add(const Anomalies& o);
};

struct LatencyRun {
  bool ok = false;
  std::string error;
  std::vector<float> samples_ns;
  Anomalies anomalies;
  std::string cleanup_problem;  // e.g. a stream that could not be removed
};

struct TputRun {
  bool ok = false;
  std::string error;
  double records_per_s = 0;
  double bytes_per_s = 0;
  Anomalies anomalies;
  std::string cleanup_problem;
};

// Warm-up, then one-way samples (RTT/2) until the count or the time budget runs out.
// Thread: the measuring role.
class SamplePlan {
 public:
  SamplePlan(const Budget& b, Ctx& ctx);
  // Takes one round trip in ticks(); false when enough samples were taken.
  bool add(uint64_t rtt_ticks) noexcept;
  uint64_t samples() const noexcept { return n_; }
  bool measuring() const noexcept { return warm_left_ == 0; }

 private:
  const Budget& b_;
  Ctx& ctx_;
  float* out_;
  uint64_t max_n_;
  uint64_t warm_left_;
  uint64_t warm_deadline_ns_;
  uint64_t stop_at_ns_ = 0;
  uint64_t n_ = 0;
  uint64_t i_ = 0;
};

// Adds up the page faults and preemptions the roles saw while measuring (latency runs:
// they explain tails better than guesses).
void count_disturbances(const SharedArea* area, size_t roles, Anomalies* a);
// Touches the first n sample slots in this process, so that recording them never faults.
void prefault_samples(Ctx& ctx, uint64_t n) noexcept;

LatencyRun run_raw_pingpong(const Budget& b);   // baseline_raw.cc
LatencyRun run_pingpong(Transport& t, size_t record_size, const Budget& b);
// producers > 1 needs t.multi_producer(); all producers then share core_a.
TputRun run_throughput(Transport& t, size_t record_size, int producers, const Budget& b);
LatencyRun run_streaming(Transport& t, size_t record_size, const Budget& b);
// The same at `rate` records/s for `seconds` (after the same warm-up).
LatencyRun run_streaming_at(Transport& t, size_t record_size, const Budget& b, double rate,
                            double seconds);

}  // namespace bench
