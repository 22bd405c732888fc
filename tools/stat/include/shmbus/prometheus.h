// shmbus/prometheus.h (tools/stat, library shmbus::stat): the statistics of streams in
// the Prometheus text exposition format 0.0.4, the one formatter behind
// `shmbus stat --format prometheus` and the `/metrics` of `shmbus metrics`.
//
// Every number comes from compute_stat()'s StreamStat (stat.h): nothing is derived
// again here.  Metric names start with `shmbus_`; counters end in `_total`; each family
// has one HELP and one TYPE line followed by one sample per stream (per consumer, per
// bridge); labels are `namespace`, `stream`, and `consumer` with `kind` (group, tail)
// on consumer gauges, `bridge` with `direction` and `topic` on bridge ones.  Label
// values are escaped as the format says (\\, \", \n) and bytes that are not UTF-8
// become U+FFFD.
// Thread: any; pure functions of their arguments.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shmbus/stat.h"

namespace shmbus {

// What the formatter shows of one bridge of a stream (the CLI reads the bridges' status
// files; this library does not depend on bridge/).
struct BridgeMetrics {
  std::string direction;  // "out" or "in"
  std::string name, topic;
  bool alive = false;
  uint64_t delivered = 0, errors = 0, lag = 0;
};

struct StreamMetrics {
  StreamStat stat;
  // false: the stream exists only as its store (after a reboot, or rm --force of a
  // persisted stream's ring): stat.info holds its names, persist->store_dir, disk_bytes
  // and segments only; the ring's figures are left out.
  bool ring = true;
  std::vector<BridgeMetrics> bridges;
};

// The Content-Type of the text.
inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4";

// Appends `s` to *out as the inside of a quoted label value.
void prometheus_escape_label(std::string_view s, std::string* out);

// The whole exposition (ends with a newline; empty when `streams` is empty).
std::string prometheus_text(const std::vector<StreamMetrics>& streams);

}  // namespace shmbus
