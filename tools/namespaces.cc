// namespaces.cc: which namespaces exist, found from the shared-memory objects
// /dev/shm/shmbus.NS.STREAM.  Names may hold dots, so an object name may split in more
// than one way; a split counts only when list_streams(NS) (which asks the header) has it.
#include <dirent.h>

#include <algorithm>
#include <cstdlib>
#include <set>

#include "commands.h"
#include "format.h"
#include "shmbus/shmbus.h"
#include "shmbus/store_admin.h"

namespace shmbus::tools {

namespace {

// Every (namespace, stream) split of the shmbus objects, checked against the headers.
std::vector<std::pair<std::string, std::string>> all_streams() {
  std::vector<std::pair<std::string, std::string>> out;
  DIR* d = opendir("/dev/shm");
  if (!d) return out;
  std::set<std::string> candidates;
  std::vector<std::string> objects;
  while (dirent* e = readdir(d)) {
    const std::string_view n(e->d_name);
    if (n.size() <= 7 || n.substr(0, 7) != "shmbus.") continue;
    objects.emplace_back(n.substr(7));
  }
  closedir(d);
  for (const auto& rest : objects)
    for (size_t dot = rest.find('.'); dot != std::string::npos; dot = rest.find('.', dot + 1)) {
      const std::string ns = rest.substr(0, dot);
      if (validate_name("namespace", ns) && validate_name("stream", rest.substr(dot + 1)))
        candidates.insert(ns);
    }
  for (const auto& ns : candidates) {
    auto streams = list_streams(ns);
    if (!streams) continue;
    for (auto& s : streams.value()) out.emplace_back(ns, std::move(s));
  }
  return out;
}

}  // namespace

std::vector<std::string> all_namespaces() {
  std::set<std::string> names;
  for (const auto& [ns, s] : all_streams()) names.insert(ns);
  return {names.begin(), names.end()};
}

std::vector<std::string> namespaces_with(std::string_view stream) {
  std::set<std::string> names;
  for (const auto& [ns, s] : all_streams())
    if (s == stream) names.insert(ns);
  return {names.begin(), names.end()};
}

std::string namespace_hint(std::string_view ns, std::string_view stream) {
  std::vector<std::string> with = namespaces_with(stream);
  with.erase(std::remove(with.begin(), with.end(), std::string(ns)), with.end());
  if (!with.empty()) {
    // The closest name first, so that it is never among those left out.
    const std::string near = closest_match(ns, with);
    if (!near.empty()) std::stable_partition(with.begin(), with.end(), [&](const std::string& n) { return n == near; });
    std::string hint = "; a stream '" + std::string(stream) + "' is in namespace" +
                       (with.size() > 1 ? "s " : " ");
    for (size_t i = 0; i < with.size() && i < 5; ++i)
      hint += (i ? ", '" : "'") + with[i] + "'";
    if (with.size() > 5) hint += ", ...";
    return hint + (near.empty() ? "" : " (did you mean --namespace " + near + "?)");
  }
  return "";
}

std::optional<std::string> command_namespace(const std::string& flag) {
  const std::string ns = resolve_namespace(flag);
  if (!flag.empty()) return ns;
  const char* env = std::getenv("SHMBUS_NAMESPACE");
  if (env && *env)
    if (auto ok = validate_name("namespace", ns); !ok) {
      fail("SHMBUS_NAMESPACE: " + ok.error().message + " (set it to a valid name, unset it, or give --namespace)",
           kExitUsage);
      return std::nullopt;
    }
  return ns;
}

int fail_stream(const Error& e, std::string_view ns, std::string_view stream,
                std::string_view data_dir) {
  if (e.code != Errc::kNotFound) return fail(e);
  // No ring, but a store (ls: "stored (no ring)"): say so, not "create it".
  if (auto usage = persist::store_usage(ns, stream, data_dir); usage) {
    // The commands as they would be typed: this namespace and data dir.
    const std::string s =
        terminal_text(stream) + (ns == "default" ? "" : " --namespace " + terminal_text(ns)) +
        (data_dir.empty() ? "" : " --data-dir " + terminal_text(data_dir));
    return fail("stream '" + terminal_text(ns) + "/" + terminal_text(stream) + "' has no ring, only its store in " +
                terminal_text(usage->dir) + ": `shmbus create " + s +
                "` continues the stream (a group's position lives in the ring), `shmbus tail " + s +
                "` without --group reads the store, `shmbus rm --data " + s + "` removes it");
  }
  const std::string hint = namespace_hint(ns, stream);
  if (hint.empty()) return fail(e);
  // The stream is elsewhere: say where instead of suggesting to create it here.
  std::string message = e.message;
  if (const size_t at = message.find(" (create it with"); at != std::string::npos) message.resize(at);
  return fail(message + hint);
}

}  // namespace shmbus::tools
