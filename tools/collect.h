// collect.h: snapshots of whole namespaces for the commands that show many streams at
// once (stat --format prometheus, metrics, top).  Each call reads the shared memory
// anew through stream_info(), which validates what it reads; a stream removed between
// listing and reading is left out.
#pragma once

#include <string>
#include <vector>

#include "shmbus/prometheus.h"
#include "shmbus/result.h"

namespace shmbus::tools {

// The bridges of NS/STREAM as the Prometheus formatter shows them (cmd_bridge.cc).
std::vector<BridgeMetrics> bridge_metrics(const std::string& ns, const std::string& stream);

// One snapshot of NS/STREAM (no rates) with its bridges.
Result<StreamMetrics> collect_stream(const std::string& ns, const std::string& stream);
// NS/STREAM that exists only as a store (no ring): its store's figures (ring false).
Result<StreamMetrics> collect_stored(const std::string& ns, const std::string& stream,
                                     std::string_view data_dir = {});
// Every stream of each namespace (with a ring or only a store), in the namespaces' order and by name within one.
std::vector<StreamMetrics> collect_namespaces(const std::vector<std::string>& namespaces);

}  // namespace shmbus::tools
