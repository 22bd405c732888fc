// soak_checks.cc: what each child of the soak saw, checked as it ends (a tailing
// consumer's accounting, a replay's output, the persister's log), and the memory
// samples of the long-lived processes and the namespace.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "soak_driver.h"

namespace fs = std::filesystem;

namespace shmbus::soak {

uint64_t rss_kb(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  return 0;
}
uint64_t open_fds(pid_t pid) {
  uint64_t n = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != fs::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}
// Bytes of the namespace's objects in /dev/shm (allocated blocks).
uint64_t shm_bytes(const std::string& ns, uint64_t* objects) {
  uint64_t total = 0;
  *objects = 0;
  const std::string prefix = "shmbus." + ns + ".";
  if (DIR* d = opendir("/dev/shm")) {
    while (dirent* e = readdir(d)) {
      if (std::strncmp(e->d_name, prefix.c_str(), prefix.size()) != 0) continue;
      struct stat st;
      if (stat(("/dev/shm/" + std::string(e->d_name)).c_str(), &st) == 0) {
        total += static_cast<uint64_t>(st.st_blocks) * 512;
        ++*objects;
      }
    }
    closedir(d);
  }
  return total;
}
uint64_t dir_bytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  return total;
}

void Soak::check_tailing(uint32_t i) {
  Incarnation& in = sh_->inc[i];
  const uint32_t ver = in.version.load();
  tail_laps_ += in.laps.load();
  if (ver % 2 != 0) return;  // killed while it updated its counters: nothing exact left
  const uint64_t first = in.first_seq.load(), n = in.delivered.load();
  if (first == ~0ULL || n == 0) return;
  const uint64_t last = in.last_seq.load();
  const uint64_t lost = in.lost.load() - in.base_lost.load();
  const uint64_t gaps = in.gaps.load() - in.base_gaps.load();
  ++tail_checked_;
  tail_delivered_ += n;
  tail_lost_ += lost;
  tail_gaps_ += gaps;
  if (n + lost + gaps != last - first + 1)
    v_.add("tailing incarnation " + std::to_string(i) + ": delivered " + std::to_string(n) +
           " + lost " + std::to_string(lost) + " + gaps " + std::to_string(gaps) +
           " != range [" + std::to_string(first) + ", " + std::to_string(last) + "] (" +
           std::to_string(last - first + 1) + ")");
}

// Replay output: "SEQ TS TYPE SIZE HEX" per record; gaps as "shmbus: records A..B: why".
void Soak::check_replay(Child& c, bool final_replay) {
  ++replays_;
  std::ifstream out(c.out), err(c.err);
  std::string line;
  std::vector<std::pair<uint64_t, uint64_t>> notes;  // [a, b] announced as gaps
  while (std::getline(err, line)) {
    uint64_t a = 0, b = 0;
    int at = 0;
    if (std::sscanf(line.c_str(), "shmbus: records %" SCNu64 "..%" SCNu64 ": %n", &a, &b, &at) == 2 &&
        b >= a) {
      notes.emplace_back(a, b);
      std::string why = at > 0 ? line.substr(static_cast<size_t>(at)) : line;
      // The persister holds producers back: the store may only miss what retention
      // deleted or what was never published (abandoned claims), never hold a hole.
      if (why.find("corrupt") != std::string::npos)
        v_.add("replay " + std::to_string(c.inc) + ": " + line.substr(0, 300) +
               "; shmbus fsck at once (the persister still running) says: " + fsck_now());
      if (gap_reasons_.size() >= 20 && !gap_reasons_.count(why)) why = "(other reasons)";
      ++gap_reasons_[why];
    } else if (!c.killed && line.find("lapped") == std::string::npos) {
      v_.add("replay " + std::to_string(c.inc) + " said: " + line);
    }
  }
  uint64_t first = ~0ULL, last = 0, n = 0;
  std::vector<std::byte> bytes;
  // Streamed: a killed replay's last line may be cut short (no newline): skip it.
  while (std::getline(out, line) && !(out.eof() && c.killed)) {
    const std::string& l = line;
    std::istringstream is(l);
    uint64_t seq, ts, type, size;
    std::string hex;
    if (!(is >> seq >> ts >> type >> size >> hex)) {
      v_.add("replay " + std::to_string(c.inc) + ": unreadable line '" + l.substr(0, 80) + "'");
      break;
    }
    auto nibble = [](char ch) {
      return ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10;
    };
    bytes.resize(hex.size() / 2);
    for (size_t i = 0; i < bytes.size(); ++i)
      bytes[i] = static_cast<std::byte>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
    PayloadHeader h;
    if (bytes.size() != size || !check_payload(bytes.data(), bytes.size(), &h) ||
        (h.seq != ~0ULL && h.seq != seq)) {
      v_.add("replay " + std::to_string(c.inc) + ": torn or foreign payload at seq " + std::to_string(seq));
      break;
    }
    if (first == ~0ULL) first = seq;
    else if (seq <= last) {
      v_.add("replay " + std::to_string(c.inc) + ": seq " + std::to_string(seq) + " after " +
             std::to_string(last));
      break;
    }
    last = seq;
    ++n;
  }
  // Every sequence between the first and the last record delivered was delivered or
  // announced as a gap (notes may also cover what came before the first record).
  uint64_t gap_seqs = 0;
  for (auto [a, b] : notes) {
    a = std::max(a, first);
    b = std::min(b, last);
    if (n > 0 && a <= b) gap_seqs += b - a + 1;
  }
  replay_records_ += n;
  replay_gap_seqs_ += gap_seqs;
  if (n > 0 && !c.killed && n + gap_seqs != last - first + 1)
    v_.add("replay " + std::to_string(c.inc) + ": delivered " + std::to_string(n) + " + gaps " +
           std::to_string(gap_seqs) + " != range [" + std::to_string(first) + ", " +
           std::to_string(last) + "]");
  if (final_replay) {
    final_first_ = first;
    final_last_ = last;
    final_n_ = n;
  }
  std::remove(c.out.c_str());
  std::remove(c.err.c_str());
}

// A read-only fsck of the store now, its output in one line (a diagnostic).
std::string Soak::fsck_now() {
  const std::string log = work_dir_ + "/fsck-now.log";
  const std::string cmd = cfg_.cli + " fsck " + data_dir_ + " >" + log + " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream in(log);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (char& ch : all)
    if (ch == '\n') ch = '|';
  return "exit " + std::to_string(rc) + ": " + all.substr(0, 1500);
}

// The persister's log: errors are violations; warnings (a kill -9 leaves a torn tail
// for recovery to trim) are counted and the first few shown.
void Soak::check_persister_log(Child& c) {
  std::ifstream in(c.err);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("[error]") != std::string::npos || line.find("[critical]") != std::string::npos) {
      v_.add("persister incarnation " + std::to_string(c.inc) + ": " + line);
    } else if (line.find("[warning]") != std::string::npos) {
      if (persister_warnings_.size() < 5) persister_warnings_.push_back(line);
      ++persister_warning_count_;
    }
  }
  std::remove(c.err.c_str());
}

void Soak::sample_memory() {
  for (auto& c : kids_) {
    if (!c.steady || c.pid <= 0) continue;
    MemSample s{rss_kb(c.pid), open_fds(c.pid)};
    auto& m = mem_[c.name];
    if (!mem_started_ || m.first.rss_kb == 0) m.first = s;
    m.second = s;
  }
  MemSample self{rss_kb(getpid()), open_fds(getpid())};
  auto& d = mem_["driver"];
  if (!mem_started_) d.first = self;
  d.second = self;
  uint64_t objects = 0;
  const uint64_t shm = shm_bytes(ns_, &objects);
  if (!mem_started_) shm_first_ = shm;
  shm_last_ = shm;
  if (objects != 1) v_.add("the namespace holds " + std::to_string(objects) + " shm objects, not 1");
  const uint64_t store = dir_bytes(data_dir_);
  if (!mem_started_) store_first_ = store;
  store_last_ = store;
  store_max_ = std::max(store_max_, store);
  mem_started_ = true;
}

}  // namespace shmbus::soak
