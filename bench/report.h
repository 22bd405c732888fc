// bench/report.h: the one markdown table (with ratios to shmbus and the targets) and
// the JSON file. Pure formatting: no measurement happens here.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include "stats.h"

namespace bench {

// The throughput columns.  Every row runs 64 B, 1 KiB and 64 KiB; 4 KiB only the rows
// whose target needs it (shmbus durable and the SPSC ring): "-" elsewhere.
inline constexpr int kNumTputSizes = 4;
inline constexpr size_t kTputSizes[kNumTputSizes] = {64, 1024, 4096, 64 * 1024};
inline constexpr unsigned kSizesDefault = 0b1011;  // bit k: kTputSizes[k]
inline constexpr unsigned kSizesAll = 0b1111;

struct LatencyCell {
  bool measured = false;  // false: this row does not measure latency ("-")
  std::string error;      // measured, every repetition failed
  Latency lat;
};

struct TputCell {
  bool measured = false;
  std::string error;
  size_t size = 0;
  Spread records_per_s;
  double gb_per_s() const { return records_per_s.median * double(size) / 1e9; }
};

struct Row {
  std::string name;
  std::string na;          // non-empty: the whole row could not run, and why
  LatencyCell lat;
  TputCell tput[kNumTputSizes];  // kTputSizes
  std::vector<std::string> notes;  // anomalies, partial failures
};

// The rows the targets refer to (-1: not in this run).
struct RowIndex {
  int shmbus = -1;         // the reference: every ratio is against this row
  int shmbus_stream = -1;
  int raw_start = -1, raw_paired = -1, raw_end = -1;
  int spsc = -1, boost_mq = -1, iceoryx = -1;
  int shmbus_batch = -1;        // publish_batch of 32
  int shmbus_single = -1;       // a single-producer stream (publish)
  int shmbus_single_batch = -1; // a single-producer stream (publish_batch of 32)
  int header_ring = -1;         // shmbus's record format and nothing else
  int header_ring_stamped = -1; // the same with a TSC read per record (its timestamp)
  int tailing = -1;             // a tailing consumer (poll(): it copies each record)
  int tailing_in_place = -1;    // a tailing consumer reading in place (poll_in_place)
  int spsc_batch = -1;          // the SPSC ring, indices published per 32 records
  int spsc_wide = -1;           // the SPSC ring with slots of record + 32 B (shmbus's bytes)
  int spsc_wide_batch = -1;     // both: shmbus's bytes per record, indices per 32 records
  int spsc_stream = -1;         // the SPSC ring at the stream rate
  int shmbus_two = -1;          // 2 producers -> 1 consumer (multi-producer stream)
  int mpsc = -1, mpsc_two = -1; // the MPSC ring, 1 and 2 producers (64 B)
  int block_stream = -1;        // kBlock consumer at the stream rate (inside its spin window)
  int block_sleep = -1;         // kBlock consumer, records spaced wider than its spin window
  int futex_sleep = -1;         // raw futex, the same spacing
  int futex_pingpong = -1;      // raw futex ping-pong (both sides sleep every leg)
};

// A measurement that is neither a latency nor a throughput cell (CPU of an idle consumer,
// producer cost by number of consumers, footprint), with the baseline measured beside it
// in the same run.  value / baseline is the ratio its goal speaks of.
struct Extra {
  std::string group;        // "wake-up", "scaling", "footprint"
  std::string name;
  std::string unit;         // "ns", "M rec/s", "B", "KiB", "ms"
  double value = 0;         // median over repetitions
  double min = 0, max = 0;  // over repetitions
  std::string baseline_name;
  double baseline = 0;      // 0: none
  std::string goal;         // in words, e.g. "<= 1.1x raw futex"; empty: informative
  std::string verdict;      // PASS, FAIL, info, n/a
  std::string detail;       // how it was measured, anomalies
  std::string error;        // non-empty: not measured, and why
};

struct Report {
  std::vector<std::string> meta;   // "key: value" lines printed above the table
  std::string date;                // ISO-8601 UTC
  std::string build_type;
  std::vector<Row> rows;
  RowIndex idx;
  std::vector<Extra> extras;       // the second table
};

struct TargetResult {
  std::string name;
  std::string detail;
  std::string verdict;  // PASS, FAIL, MIXED, n/a
};
std::vector<TargetResult> evaluate_targets(const Report& r);

void print_markdown(std::FILE* out, const Report& r);
// Cells and measurements that were attempted and failed (n/a rows do not count).
int count_errors(const Report& r);
// False (with *err) when the file cannot be written.
bool write_json(const std::string& path, const Report& r, std::string* err);

}  // namespace bench
