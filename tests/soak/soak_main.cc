// shmbus_soak: the whole system for a while, with kill -9 of every kind of participant.
//
//   shmbus_soak --minutes M [--cli PATH] [--rate R] [--seed S] [--kill-every SECONDS]
//
// One persisted stream in a namespace of its own, and, each a child process:
//   producers (one long-lived, the others killed and restarted) at about half the peak
//     rate, measured first with everything running unthrottled;
//   durable consumers d0 (long-lived), d1, d2 (killed and restarted): every sequence
//     must be processed once, in order; skips only where the consumer reported a gap;
//   tailing consumers t0 (long-lived) and others that restart every few seconds or are
//     killed: delivered + lost + gaps must equal the range each advanced over, exactly;
//   the persister (`shmbus persist --retention-age`, killed and restarted);
//   replays (`shmbus tail --from earliest --format hex`) checked record by record.
// Payloads carry their producer, a counter, and a checksum (soak_roles.h).  At the end
// producers stop, durable consumers must drain to the stream's last sequence, and a
// final replay reads the store.  Memory must stay flat: RSS and open files of the
// long-lived processes, and the namespace's bytes in /dev/shm, first sample (after a
// warm-up) against the last.  Prints a summary; exit 1 on any violation.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "shmbus/shmbus.h"
#include "soak_roles.h"

#ifndef SHMBUS_CLI
#define SHMBUS_CLI "shmbus"
#endif

namespace fs = std::filesystem;
using namespace shmbus;
using namespace shmbus::soak;
using Clock = std::chrono::steady_clock;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif
#else
constexpr bool kAsan = false;
#endif

struct Config {
  double minutes = 60;
  std::string cli = SHMBUS_CLI;
  double rate = 0;          // total records/s; 0: half the measured peak
  uint64_t seed = 0;
  double kill_every = 2.0;  // mean seconds between kills
  int producers = 3, tailing = 3;
};

// ---- bookkeeping -------------------------------------------------------------------

struct Violations {
  std::vector<std::string> list;
  void add(const std::string& s) {
    if (list.size() < 1000) list.push_back(s);
    std::fprintf(stderr, "soak: VIOLATION: %s\n", s.c_str());
  }
};

struct Child {
  Role role;
  std::string name;     // p0, d1, t2, persister, replay
  bool steady = false;  // long-lived: never killed, memory sampled
  pid_t pid = 0;
  uint32_t inc = 0;
  Clock::time_point restart_at{};  // when dead: when to start again (max: never)
  bool killed = false;             // the current death was our kill -9
  uint32_t group = 0;
  std::string out, err;  // replay: its stdout and stderr files
};

struct MemSample {
  uint64_t rss_kb = 0;
  uint64_t fds = 0;
};

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

// ---- the driver --------------------------------------------------------------------

class Soak {
 public:
  explicit Soak(Config c) : cfg_(std::move(c)), rng_(cfg_.seed) {}
  int run();

 private:
  uint32_t new_incarnation(Role r);
  void start(Child& c);
  void kill9(Child& c);
  void reap();
  void on_exit(Child& c, int status);
  void check_tailing(uint32_t inc);
  void check_replay(Child& c, bool final_replay = false);
  void check_persister_log(Child& c);
  std::string fsck_now();
  void sample_memory();
  StreamInfo info();
  void stop_all(Role r);
  double peak_rate();

  Config cfg_;
  std::mt19937_64 rng_;
  std::string ns_, stream_ = "s", data_dir_, work_dir_;
  Shared* sh_ = nullptr;
  std::vector<Child> kids_;
  Violations v_;
  double rate_ = 0;
  std::map<std::string, uint64_t> kills_, starts_;
  uint64_t tail_delivered_ = 0, tail_lost_ = 0, tail_gaps_ = 0, tail_laps_ = 0;
  uint64_t replay_records_ = 0, replay_gap_seqs_ = 0, replays_ = 0;
  uint64_t tail_checked_ = 0;
  std::map<std::string, std::pair<MemSample, MemSample>> mem_;  // first, last
  uint64_t shm_first_ = 0, shm_last_ = 0, store_first_ = 0, store_last_ = 0, store_max_ = 0;
  bool mem_started_ = false;
  bool stall_dumped_ = false;
  std::vector<std::string> persister_warnings_;
  std::map<std::string, uint64_t> gap_reasons_;  // replay gap notes by reason
  uint64_t final_first_ = 0, final_last_ = 0, final_n_ = 0;
  uint64_t persister_warning_count_ = 0;
};

uint32_t Soak::new_incarnation(Role r) {
  const uint32_t i = static_cast<uint32_t>(sh_->next_incarnation.fetch_add(1));
  if (i >= kMaxIncarnations) {
    std::fprintf(stderr, "soak: more than %u incarnations\n", kMaxIncarnations);
    std::exit(2);
  }
  Incarnation& in = sh_->inc[i];
  in.role = static_cast<uint32_t>(r);
  in.first_seq.store(~0ULL);
  return i;
}

void Soak::start(Child& c) {
  c.inc = new_incarnation(c.role);
  c.killed = false;
  ++starts_[role_name(c.role)];
  RoleArgs a;
  a.ns = ns_;
  a.stream = stream_;
  a.shared = sh_;
  a.inc = c.inc;
  a.rate = rate_ / cfg_.producers;
  a.group = c.group;
  a.seed = rng_();
  a.lifetime_s = c.steady ? 0 : 2.0 + static_cast<double>(rng_() % 15000) / 1000.0;
  if (c.role == Role::kReplay) {
    c.out = work_dir_ + "/replay-" + std::to_string(c.inc) + ".out";
    c.err = work_dir_ + "/replay-" + std::to_string(c.inc) + ".err";
  }
  if (c.role == Role::kPersister) c.err = work_dir_ + "/persister-" + std::to_string(c.inc) + ".log";
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    std::perror("fork");
    std::exit(2);
  }
  if (pid == 0) {
    setenv("SHMBUS_NAMESPACE", ns_.c_str(), 1);
    int rc = 0;
    switch (c.role) {
      case Role::kProducer: rc = run_producer(a); break;
      case Role::kDurable: rc = run_durable(a); break;
      case Role::kTailing: rc = run_tailing(a); break;
      case Role::kPersister: {
        const int devnull = open("/dev/null", O_WRONLY);
        const int err = open(c.err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(devnull, 1);
        dup2(err, 2);
        execl(cfg_.cli.c_str(), "shmbus", "persist", stream_.c_str(), "--namespace", ns_.c_str(),
              "--data-dir", data_dir_.c_str(), "--retention-age", "20s", "--segment-size", "1M",
              "--roll-age", "2s", static_cast<char*>(nullptr));
        _exit(127);
      }
      case Role::kReplay: {
        const int out = open(c.out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        const int err = open(c.err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(out, 1);
        dup2(err, 2);
        const std::string count = std::to_string(2000 + a.seed % 30000);
        execl(cfg_.cli.c_str(), "shmbus", "tail", stream_.c_str(), "--namespace", ns_.c_str(),
              "--from", "earliest", "--format", "hex", "--count", count.c_str(), "-f",
              static_cast<char*>(nullptr));
        _exit(127);
      }
      case Role::kCount: break;
    }
    std::fflush(nullptr);
    _exit(rc);
  }
  c.pid = pid;
}

void Soak::kill9(Child& c) {
  if (c.pid <= 0) return;
  kill(c.pid, SIGKILL);
  c.killed = true;
  ++kills_[role_name(c.role)];
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

void Soak::on_exit(Child& c, int status) {
  const Incarnation& in = sh_->inc[c.inc];
  if (in.errors.load() != 0)
    v_.add(c.name + " (incarnation " + std::to_string(c.inc) + "): " + std::to_string(in.errors.load()) +
           " errors, first: " + in.error);
  if (c.role == Role::kTailing) check_tailing(c.inc);
  if (c.role == Role::kReplay) check_replay(c);
  if (c.role == Role::kPersister) check_persister_log(c);
  if (!c.killed) {
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok)
      v_.add(c.name + " exited with " +
             (WIFEXITED(status) ? "code " + std::to_string(WEXITSTATUS(status))
                                : "signal " + std::to_string(WTERMSIG(status))));
  }
  c.pid = 0;
  // Restart soon (a replay: a new one after a pause).
  c.restart_at = Clock::now() + std::chrono::milliseconds(100 + rng_() % 1400);
}

void Soak::reap() {
  int status = 0;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
    for (auto& c : kids_)
      if (c.pid == pid) on_exit(c, status);
}

StreamInfo Soak::info() {
  auto r = stream_info(ns_, stream_);
  if (!r) {
    v_.add("stream_info: " + r.error().message);
    return {};
  }
  return r.value();
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

void Soak::stop_all(Role r) {
  for (auto& c : kids_) {
    if (c.role != r) continue;
    c.restart_at = Clock::time_point::max();
    if (c.pid > 0) kill(c.pid, SIGTERM);
  }
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  for (;;) {
    reap();
    // Producers blocked on a full ring finish their publish first: the durable
    // consumers and the persister that hold them back keep being restarted (one killed
    // just before the end held them for their whole full_timeout, reported as kFull).
    if (r == Role::kProducer)
      for (auto& c : kids_)
        if (c.pid == 0 && Clock::now() >= c.restart_at &&
            (c.role == Role::kDurable || c.role == Role::kPersister))
          start(c);
    bool any = false;
    for (auto& c : kids_)
      if (c.role == r && c.pid > 0) any = true;
    if (!any) return;
    if (Clock::now() > deadline) {
      for (auto& c : kids_)
        if (c.role == r && c.pid > 0) {
          v_.add(c.name + " did not stop within 60 s of SIGTERM");
          kill9(c);
        }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// Everything running, producers unthrottled for a few seconds: the records the slowest
// durable consumer processed per second.
double Soak::peak_rate() {
  const uint64_t before = sh_->groups[0].delivered.load();
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(4));
  reap();
  uint64_t slowest = ~0ULL;
  for (uint32_t g = 0; g < 3; ++g) slowest = std::min(slowest, sh_->groups[g].delivered.load());
  (void)before;
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  return static_cast<double>(slowest) / s;
}

int Soak::run() {
  ns_ = "soak" + std::to_string(getpid());
  char tmpl[] = "/tmp/shmbus-soak-XXXXXX";
  if (!mkdtemp(tmpl)) return 2;
  work_dir_ = tmpl;
  data_dir_ = work_dir_ + "/data";
  fs::create_directories(data_dir_);
  void* mem = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 2;
  sh_ = new (mem) Shared();

  StreamOptions so;
  so.capacity = 1 << 20;
  so.consumer_dead_timeout = std::chrono::seconds(120);  // restarts come long before
  if (auto r = create_stream(ns_, stream_, so); !r) {
    std::fprintf(stderr, "soak: %s\n", r.error().message.c_str());
    return 2;
  }
  auto add = [&](Role r, std::string name, bool steady, uint32_t group = 0) {
    Child c;
    c.role = r;
    c.name = std::move(name);
    c.steady = steady;
    c.group = group;
    kids_.push_back(c);
  };
  add(Role::kPersister, "persister", false);
  for (uint32_t g = 0; g < 3; ++g) add(Role::kDurable, "d" + std::to_string(g), g == 0, g);
  for (int i = 0; i < cfg_.tailing; ++i) add(Role::kTailing, "t" + std::to_string(i), i == 0);
  for (int i = 0; i < cfg_.producers; ++i) add(Role::kProducer, "p" + std::to_string(i), i == 0);
  add(Role::kReplay, "replay", false);

  // The persister first (it sets the stream's persistence), then consumers, producers.
  start(kids_[0]);
  for (int i = 0; i < 200 && !info().persist; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  for (auto& c : kids_)
    if (c.role != Role::kPersister && c.role != Role::kProducer && c.role != Role::kReplay) start(c);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  rate_ = cfg_.rate;
  if (rate_ <= 0) {
    for (auto& c : kids_)
      if (c.role == Role::kProducer) start(c);
    const double peak = peak_rate();
    rate_ = std::max(1000.0, peak / 2);
    std::printf("soak: peak %.0f records/s (producers unthrottled, slowest durable consumer); "
                "running at %.0f\n", peak, rate_);
    stop_all(Role::kProducer);
  }
  for (auto& c : kids_)
    if (c.role == Role::kProducer || c.role == Role::kReplay) {
      c.restart_at = {};
      start(c);
    }
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::milliseconds(static_cast<int64_t>(cfg_.minutes * 60000));
  const auto warmup = t0 + std::chrono::milliseconds(
                               static_cast<int64_t>(std::min(120000.0, cfg_.minutes * 60000 / 10)));
  std::exponential_distribution<double> gap(1.0 / cfg_.kill_every);
  auto next_kill = t0 + std::chrono::milliseconds(static_cast<int64_t>(gap(rng_) * 1000));
  auto next_sample = warmup;
  auto next_info = t0;
  uint64_t last_next = 0;
  auto last_progress = Clock::now();
  std::printf("soak: namespace %s, %.1f min, %.0f records/s, %d producers, 3 durable, %d tailing, "
              "persister (retention 20 s), replays; kills every %.1f s on average\n",
              ns_.c_str(), cfg_.minutes, rate_, cfg_.producers, cfg_.tailing, cfg_.kill_every);
  std::fflush(stdout);

  while (Clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    reap();
    const auto now = Clock::now();
    for (auto& c : kids_)
      if (c.pid == 0 && now >= c.restart_at) start(c);
    if (now >= next_kill) {
      next_kill = now + std::chrono::milliseconds(static_cast<int64_t>(gap(rng_) * 1000));
      // A kind first (each as likely), then one of its running instances.
      const Role kind = static_cast<Role>(rng_() % static_cast<uint64_t>(Role::kCount));
      std::vector<Child*> victims;
      for (auto& c : kids_)
        if (!c.steady && c.pid > 0 && c.role == kind) victims.push_back(&c);
      if (!victims.empty()) kill9(*victims[rng_() % victims.size()]);
    }
    if (now >= next_sample) {
      next_sample = now + std::chrono::seconds(5);
      sample_memory();
    }
    if (now < next_info) continue;
    next_info = now + std::chrono::milliseconds(500);
    const StreamInfo si = info();
    if (si.next_seq != last_next) {
      last_next = si.next_seq;
      last_progress = now;
    } else if (now - last_progress > std::chrono::seconds(60)) {
      v_.add("no record published for 60 s (next_seq " + std::to_string(si.next_seq) + ")");
      last_progress = now;
    } else if (now - last_progress > std::chrono::seconds(5) && !stall_dumped_) {
      // A diagnostic for whoever reads the log: who holds the stream back.
      stall_dumped_ = true;
      std::fprintf(stderr, "soak: no progress for 5 s at next_seq %" PRIu64 "; running:", si.next_seq);
      for (const auto& c : kids_)
        if (c.pid > 0) std::fprintf(stderr, " %s=%d", c.name.c_str(), static_cast<int>(c.pid));
      std::fprintf(stderr, "\n");
      const std::string cmd = cfg_.cli + " stat " + stream_ + " --namespace " + ns_ +
                              " --json --interval 0 >&2";
      (void)std::system(cmd.c_str());
    }
    if (si.next_seq != last_next || now - last_progress < std::chrono::seconds(1)) stall_dumped_ = false;
  }

  // Wind down: producers, then let durable consumers and the persister drain.
  for (auto& c : kids_)
    if (c.role == Role::kReplay || c.role == Role::kTailing) c.restart_at = Clock::time_point::max();
  stop_all(Role::kProducer);
  sample_memory();
  const StreamInfo fin = info();
  const auto drain_deadline = Clock::now() + std::chrono::seconds(120);
  for (;;) {
    reap();
    for (auto& c : kids_)
      if (c.pid == 0 && Clock::now() >= c.restart_at &&
          (c.role == Role::kDurable || c.role == Role::kPersister))
        start(c);
    bool drained = info().durable_seq >= fin.next_seq;
    for (uint32_t g = 0; g < 3; ++g) drained = drained && sh_->groups[g].next.load() >= fin.next_seq;
    if (drained || Clock::now() > drain_deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stop_all(Role::kTailing);
  stop_all(Role::kReplay);
  stop_all(Role::kDurable);
  // A last replay of what the store holds (no -f: it stops when it has caught up).
  stop_all(Role::kPersister);
  const StreamInfo last = info();
  {
    Child c;
    c.role = Role::kReplay;
    c.name = "final-replay";
    c.inc = new_incarnation(Role::kReplay);
    c.out = work_dir_ + "/final.out";
    c.err = work_dir_ + "/final.err";
    const std::string cmd = cfg_.cli + " tail " + stream_ + " --namespace " + ns_ +
                            " --from earliest --format hex >" + c.out + " 2>" + c.err;
    const int rc = std::system(cmd.c_str());
    if (rc != 0) v_.add("the final replay failed: exit " + std::to_string(rc));
    check_replay(c, true);
    // It must reach the last record (the stream's last sequences may be gaps).
    if (final_n_ == 0 || final_last_ + 1 + fin.abandoned + fin.aborted < fin.next_seq)
      v_.add("the final replay read " + std::to_string(final_n_) + " records up to seq " +
             std::to_string(final_last_) + "; the stream ends at " + std::to_string(fin.next_seq));
  }

  // The store must pass fsck (read-only check).
  {
    const std::string log = work_dir_ + "/fsck.log";
    const std::string cmd = cfg_.cli + " fsck " + data_dir_ + " >" + log + " 2>&1";
    const int rc = std::system(cmd.c_str());
    if (rc != 0) {
      std::ifstream in(log);
      std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      v_.add("shmbus fsck of the store failed (exit " + std::to_string(rc) + "): " + all.substr(0, 600));
    }
  }

  // ---- checks ----
  const uint64_t expected_gaps = fin.next_seq - std::min(fin.next_seq, fin.records_published);
  uint64_t durable_delivered = 0;
  for (uint32_t g = 0; g < 3; ++g) {
    const Group& G = sh_->groups[g];
    const std::string n = "d" + std::to_string(g);
    durable_delivered += G.delivered.load();
    if (G.next.load() != fin.next_seq)
      v_.add(n + " ended at seq " + std::to_string(G.next.load()) + ", the stream at " +
             std::to_string(fin.next_seq));
    if (G.duplicates.load() != 0) v_.add(n + ": " + std::to_string(G.duplicates.load()) + " duplicates");
    if (G.lost_reported.load() != 0) v_.add(n + ": lost " + std::to_string(G.lost_reported.load()));
    if (G.skipped.load() != G.gaps_reported.load())
      v_.add(n + ": skipped " + std::to_string(G.skipped.load()) + " sequences but reported " +
             std::to_string(G.gaps_reported.load()) + " gaps");
    if (G.delivered.load() + G.skipped.load() != G.next.load())
      v_.add(n + ": delivered " + std::to_string(G.delivered.load()) + " + skipped " +
             std::to_string(G.skipped.load()) + " != " + std::to_string(G.next.load()));
    if (G.skipped.load() != sh_->groups[0].skipped.load())
      v_.add(n + " skipped " + std::to_string(G.skipped.load()) + " sequences, d0 " +
             std::to_string(sh_->groups[0].skipped.load()) + ": consumers disagree");
    if (G.counter_skips.load() > G.skipped.load())
      v_.add(n + ": " + std::to_string(G.counter_skips.load()) + " producer records missing, only " +
             std::to_string(G.skipped.load()) + " sequences were gaps");
  }
  uint64_t published = 0, abandoned_live = 0;
  const uint32_t incs = static_cast<uint32_t>(sh_->next_incarnation.load());
  for (uint32_t i = 0; i < incs; ++i) {
    if (sh_->inc[i].role != static_cast<uint32_t>(Role::kProducer)) continue;
    published += sh_->inc[i].published.load();
    abandoned_live += sh_->inc[i].abandoned.load();
  }
  if (abandoned_live)
    v_.add(std::to_string(abandoned_live) + " records of live producers were abandoned (kAbandoned)");
  auto growth = [&](const std::string& what, uint64_t first, uint64_t last, uint64_t slack) {
    if (last > first + slack) v_.add(what + " grew from " + std::to_string(first) + " to " + std::to_string(last));
  };
  for (auto& [name, m] : mem_) {
    // Under ASan the allocator's quarantine (256 MiB) grows RSS by design: report only.
    if (!kAsan)
      growth(name + " RSS (KiB)", m.first.rss_kb, m.second.rss_kb,
             std::max<uint64_t>(16 * 1024, m.first.rss_kb / 4));
    growth(name + " open fds", m.first.fds, m.second.fds, 2);
  }
  growth("/dev/shm bytes of the namespace", shm_first_, shm_last_, 0);

  // ---- summary ----
  const double mins = std::chrono::duration<double>(Clock::now() - t0).count() / 60;
  std::printf("\n== shmbus soak summary ==\n");
  std::printf("duration            %.1f min (rate %.0f records/s)\n", mins, rate_);
  std::printf("published           next_seq %" PRIu64 ", records %" PRIu64 " (acknowledged to producers %" PRIu64
              "), abandoned %" PRIu64 ", aborted %" PRIu64 "\n",
              fin.next_seq, fin.records_published, published, fin.abandoned, fin.aborted);
  std::printf("durable consumed    %" PRIu64 " (3 groups), redelivered after a kill %" PRIu64 "\n",
              durable_delivered,
              sh_->groups[0].redelivered.load() + sh_->groups[1].redelivered.load() +
                  sh_->groups[2].redelivered.load());
  for (uint32_t g = 0; g < 3; ++g) {
    const Group& G = sh_->groups[g];
    std::printf("  d%u               delivered %" PRIu64 " skipped %" PRIu64 " gaps %" PRIu64
                " lost %" PRIu64 " dups %" PRIu64 " producer records missing %" PRIu64 "\n",
                g, G.delivered.load(), G.skipped.load(), G.gaps_reported.load(), G.lost_reported.load(),
                G.duplicates.load(), G.counter_skips.load());
  }
  std::printf("tailing consumed    %" PRIu64 " in %" PRIu64 " checked incarnations, lost %" PRIu64
              " (laps %" PRIu64 "), gaps %" PRIu64 "\n",
              tail_delivered_, tail_checked_, tail_lost_, tail_laps_, tail_gaps_);
  std::printf("replays             %" PRIu64 " runs, %" PRIu64 " records, %" PRIu64 " sequences announced as gaps\n",
              replays_, replay_records_, replay_gap_seqs_);
  for (const auto& [why, count] : gap_reasons_)
    std::printf("  gap notes: %" PRIu64 " x '%s'\n", count, why.c_str());
  std::printf("final replay        %" PRIu64 " records, seq %" PRIu64 "..%" PRIu64 "\n", final_n_,
              final_first_, final_last_);
  std::printf("expected gaps       %" PRIu64 " (next_seq - records_published; approximate after kills)\n",
              expected_gaps);
  std::printf("starts / kills      ");
  for (int r = 0; r < static_cast<int>(Role::kCount); ++r) {
    const char* n = role_name(static_cast<Role>(r));
    std::printf("%s %" PRIu64 "/%" PRIu64 "  ", n, starts_[n], kills_[n]);
  }
  std::printf("\n");
  for (auto& [name, m] : mem_)
    std::printf("memory %-12s RSS %" PRIu64 " -> %" PRIu64 " KiB, fds %" PRIu64 " -> %" PRIu64 "\n",
                name.c_str(), m.first.rss_kb, m.second.rss_kb, m.first.fds, m.second.fds);
  std::printf("/dev/shm            %" PRIu64 " -> %" PRIu64 " bytes; store %" PRIu64 " -> %" PRIu64
              " bytes (max %" PRIu64 "), durable_seq %" PRIu64 ", oldest persisted %" PRIu64 "\n",
              shm_first_, shm_last_, store_first_, store_last_, store_max_, last.durable_seq,
              last.oldest_persisted_seq);
  std::printf("persister warnings  %" PRIu64 "\n", persister_warning_count_);
  for (const auto& w : persister_warnings_) std::printf("  %s\n", w.c_str());
  std::printf("violations          %zu\n", v_.list.size());
  for (size_t i = 0; i < v_.list.size() && i < 30; ++i) std::printf("  %s\n", v_.list[i].c_str());

  (void)remove_stream(ns_, stream_, true);
  std::error_code ec;
  if (v_.list.empty()) fs::remove_all(work_dir_, ec);
  else std::printf("kept for inspection: %s (the store is in data/)\n", work_dir_.c_str());
  return v_.list.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  c.seed = static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "soak: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--minutes") c.minutes = std::stod(val());
    else if (a == "--cli") c.cli = val();
    else if (a == "--rate") c.rate = std::stod(val());
    else if (a == "--seed") c.seed = std::stoull(val());
    else if (a == "--kill-every") c.kill_every = std::stod(val());
    else {
      std::fprintf(stderr,
                   "usage: shmbus_soak [--minutes M] [--cli PATH] [--rate R] [--seed S] [--kill-every SECONDS]\n");
      return 2;
    }
  }
  std::printf("soak: seed %" PRIu64 " (--seed to repeat the kill schedule)\n", c.seed);
  return Soak(c).run();
}
