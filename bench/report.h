// bench/report.h: the one markdown table (with ratios to shmbus and the targets) and
// the JSON file. Pure formatting: no measurement happens here.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include "stats.h"

namespace bench {

inline constexpr size_t kTputSizes[3] = {64, 1024, 64 * 1024};

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
  TputCell tput[3];        // kTputSizes
  std::vector<std::string> notes;  // anomalies, partial failures
};

// The rows the targets refer to (-1: not in this run).
struct RowIndex {
  int shmbus = -1;         // the reference: every ratio is against this row
  int shmbus_stream = -1;
  int raw_start = -1, raw_paired = -1, raw_end = -1;
  int spsc = -1, boost_mq = -1, iceoryx = -1;
};

struct Report {
  std::vector<std::string> meta;   // "key: value" lines printed above the table
  std::string date;                // ISO-8601 UTC
  std::string build_type;
  std::vector<Row> rows;
  RowIndex idx;
};

struct TargetResult {
  std::string name;
  std::string detail;
  std::string verdict;  // PASS, FAIL, MIXED, n/a
};
std::vector<TargetResult> evaluate_targets(const Report& r);

void print_markdown(std::FILE* out, const Report& r);
// False (with *err) when the file cannot be written.
bool write_json(const std::string& path, const Report& r, std::string* err);

}  // namespace bench
