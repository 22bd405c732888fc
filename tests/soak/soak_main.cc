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
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "soak_driver.h"

namespace fs = std::filesystem;
using namespace shmbus;
using namespace shmbus::soak;

namespace shmbus::soak {

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

  return finish(fin, last, t0);
}

}  // namespace shmbus::soak

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
