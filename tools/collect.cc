// collect.cc: see collect.h.
#include "collect.h"

#include <algorithm>

#include "shmbus/shmbus.h"
#include "shmbus/stat.h"
#include "shmbus/store_admin.h"

namespace shmbus::tools {

Result<StreamMetrics> collect_stream(const std::string& ns, const std::string& stream) {
  auto info = stream_info(ns, stream);
  if (!info) return info.error();
  StreamMetrics m;
  m.stat = compute_stat(std::move(info.value()), nullptr, 0, 0);
  m.bridges = bridge_metrics(ns, stream);
  return m;
}

Result<StreamMetrics> collect_stored(const std::string& ns, const std::string& stream,
                                     std::string_view data_dir) {
  auto st = stored_stream_stat(ns, stream, data_dir);
  if (!st) return st.error();
  StreamMetrics m;
  m.ring = false;
  m.stat = std::move(st.value());
  return m;
}

std::vector<StreamMetrics> collect_namespaces(const std::vector<std::string>& namespaces) {
  std::vector<StreamMetrics> out;
  for (const std::string& ns : namespaces) {
    auto names = list_streams(ns);
    if (!names) continue;
    std::vector<std::string> sorted = names.value();
    std::sort(sorted.begin(), sorted.end());
    // Then the streams that exist only as a store (ls: "stored (no ring)"), where
    // persist/ says they are; by name among the rings.
    std::vector<StreamMetrics> of_ns;
    for (const std::string& name : sorted) {
      auto m = collect_stream(ns, name);
      if (m) of_ns.push_back(std::move(m.value()));
    }
    if (auto stored = persist::stored_streams(ns); stored)
      for (const std::string& name : stored.value())
        if (auto m = collect_stored(ns, name); m) of_ns.push_back(std::move(m.value()));
    std::sort(of_ns.begin(), of_ns.end(),
              [](const StreamMetrics& x, const StreamMetrics& y) { return x.stat.info.name < y.stat.info.name; });
    for (auto& m : of_ns) out.push_back(std::move(m));
  }
  return out;
}

}  // namespace shmbus::tools
