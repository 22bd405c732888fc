// status.cc: see status.h.
#include "status.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "client.h"
#include "shmbus/detail/descriptors.h"

namespace shmbus::kafka::detail {
namespace {

constexpr const char* kDir = "/dev/shm";
constexpr const char* kPrefix = "shmbus-bridge.";

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

bool write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

bool process_alive(uint32_t pid) {
  if (pid == 0) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

}  // namespace

StatusWriter::StatusWriter(std::string ns, std::string stream, std::string direction,
                           std::string name, std::string topic, std::string brokers)
    : ns_(std::move(ns)),
      stream_(std::move(stream)),
      direction_(std::move(direction)),
      name_(std::move(name)),
      topic_(std::move(topic)),
      brokers_(std::move(brokers)) {
  path_ = std::string(kDir) + "/" + kPrefix + ns_ + "." + stream_ + "." + std::to_string(::getpid());
  // Files of bridges of this stream that died (kill -9) are cleared here.
  for (const auto& b : read_bridge_status(ns_, stream_))
    if (!b.alive)
      (void)::unlink((std::string(kDir) + "/" + kPrefix + ns_ + "." + stream_ + "." + std::to_string(b.pid)).c_str());
}

StatusWriter::~StatusWriter() { (void)::unlink(path_.c_str()); }

void StatusWriter::update(const BridgeCounters& c, bool force) {
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_ < std::chrono::milliseconds(500)) return;
  last_ = now;
  std::string s = std::string(kStatusMagic) + "\n";
  auto kv = [&](const char* k, const std::string& v) { s += std::string(k) + " " + one_line(v) + "\n"; };
  kv("ns", ns_);
  kv("stream", stream_);
  kv("direction", direction_);
  kv("name", name_);
  kv("topic", topic_);
  kv("brokers", brokers_);
  kv("pid", std::to_string(::getpid()));
  kv("updated_ns", std::to_string(now_ns()));
  kv("delivered", std::to_string(c.delivered));
  kv("in_flight", std::to_string(c.in_flight));
  kv("errors", std::to_string(c.errors));
  kv("skipped", std::to_string(c.skipped));
  kv("duplicates_skipped", std::to_string(c.duplicates_skipped));
  kv("lag", std::to_string(c.lag));
  kv("restarts", std::to_string(c.restarts));
  kv("last_error", c.last_error.substr(0, 1000));
  if (s.size() > kStatusMaxBytes) s.resize(kStatusMaxBytes);
  const std::string tmp = path_ + ".tmp";
  (void)::unlink(tmp.c_str());
  const int fd = shmbus::detail::above_stdio(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  bool ok = fd >= 0 && write_all(fd, s);
  if (fd >= 0) ::close(fd);
  ok = ok && ::rename(tmp.c_str(), path_.c_str()) == 0;
  if (!ok) {
    (void)::unlink(tmp.c_str());
    if (!warned_) spdlog::warn("cannot write the bridge status file {}: {}", path_, std::strerror(errno));
    warned_ = true;
  }
}

bool parse_status(const std::string& text, std::string* ns, std::string* stream, BridgeStatus* out) {
  if (text.size() > kStatusMaxBytes) return false;
  size_t pos = 0;
  std::map<std::string, std::string> kv;
  bool first = true;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) return false;  // a whole file ends with a newline
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (first) {
      if (line != kStatusMagic) return false;
      first = false;
      continue;
    }
    const size_t sp = line.find(' ');
    if (sp == std::string::npos) return false;
    kv[line.substr(0, sp)] = line.substr(sp + 1);
  }
  if (first) return false;
  auto num = [&](const char* k, uint64_t* v) {
    auto it = kv.find(k);
    if (it == kv.end()) return false;
    auto n = parse_u64(it->second);
    if (!n) return false;
    *v = *n;
    return true;
  };
  for (const char* k : {"ns", "stream", "direction", "name", "topic", "brokers", "last_error"})
    if (!kv.count(k)) return false;
  *ns = kv["ns"];
  *stream = kv["stream"];
  out->direction = kv["direction"];
  if (out->direction != "out" && out->direction != "in") return false;
  out->name = kv["name"];
  out->topic = kv["topic"];
  out->brokers = kv["brokers"];
  out->counters.last_error = kv["last_error"];
  uint64_t pid = 0;
  if (!num("pid", &pid) || pid == 0 || pid > 0x7fffffff) return false;
  out->pid = static_cast<uint32_t>(pid);
  auto& c = out->counters;
  return num("updated_ns", &out->updated_ns) && num("delivered", &c.delivered) &&
         num("in_flight", &c.in_flight) && num("errors", &c.errors) && num("skipped", &c.skipped) &&
         num("duplicates_skipped", &c.duplicates_skipped) && num("lag", &c.lag) &&
         num("restarts", &c.restarts);
}

}  // namespace shmbus::kafka::detail

namespace shmbus::kafka {

std::vector<BridgeStatus> read_bridge_status(std::string_view ns, std::string_view stream) {
  std::vector<BridgeStatus> out;
  const std::string prefix = std::string(detail::kPrefix) + std::string(ns) + "." + std::string(stream) + ".";
  DIR* d = ::opendir(detail::kDir);
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    const std::string fname = e->d_name;
    if (fname.rfind(prefix, 0) != 0) continue;
    const std::string rest = fname.substr(prefix.size());
    if (rest.empty() || rest.find_first_not_of("0123456789") != std::string::npos) continue;  // .tmp etc.
    const int fd = shmbus::detail::above_stdio(::openat(dirfd(d), fname.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (fd < 0) continue;
    struct stat st {};
    std::string text;
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == ::geteuid() &&
        st.st_size > 0 && static_cast<uint64_t>(st.st_size) <= detail::kStatusMaxBytes) {
      text.resize(static_cast<size_t>(st.st_size));
      const ssize_t n = ::pread(fd, text.data(), text.size(), 0);
      text.resize(n > 0 ? static_cast<size_t>(n) : 0);
    }
    ::close(fd);
    BridgeStatus b;
    std::string fns, fstream;
    if (!detail::parse_status(text, &fns, &fstream, &b)) continue;
    if (fns != ns || fstream != stream || std::to_string(b.pid) != rest) continue;
    b.alive = detail::process_alive(b.pid);
    out.push_back(std::move(b));
  }
  ::closedir(d);
  std::stable_sort(out.begin(), out.end(), [](const BridgeStatus& a, const BridgeStatus& b) {
    if (a.alive != b.alive) return a.alive;
    return a.pid < b.pid;
  });
  return out;
}

}  // namespace shmbus::kafka
