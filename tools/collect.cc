// collect.cc: see collect.h.
#include "collect.h"

#include <algorithm>

#include "shmbus/shmbus.h"
#include "shmbus/stat.h"

namespace shmbus::tools {

Result<StreamMetrics> collect_stream(const std::string& ns, const std::string& stream) {
  auto info = stream_info(ns, stream);
  if (!info) return info.error();
  StreamMetrics m;
  m.stat = compute_stat(std::move(info.value()), nullptr, 0, 0);
  m.bridges = bridge_metrics(ns, stream);
  return m;
}

std::vector<StreamMetrics> collect_namespaces(const std::vector<std::string>& namespaces) {
  std::vector<StreamMetrics> out;
  for (const std::string& ns : namespaces) {
    auto names = list_streams(ns);
    if (!names) continue;
    std::vector<std::string> sorted = names.value();
    std::sort(sorted.begin(), sorted.end());
    for (const std::string& name : sorted) {
      auto m = collect_stream(ns, name);
      if (m) out.push_back(std::move(m.value()));
    }
  }
  return out;
}

}  // namespace shmbus::tools
