// chaos_repro.cc: deterministic repros of defects the chaos harness found that were not
// fixed on this branch (reported to the lead), driven by the same hooks.  Each returns 0 when the
// defect is gone and 1 (with what it saw) while it is there.
//
// fork-keeps-producer-alive: liveness is an OFD lock on the slot, held through the
// mapping's file descriptor (shm/src/mapping.cc, hold_fd_).  fork() copies that
// descriptor, and an OFD lock lives until the last descriptor of its open file
// description closes: a producer process killed with a claim pending stays "alive" for
// as long as any child it forked lives (one that never touched shmbus included), and its
// claim is never abandoned: consumers stall that long, not one abandon timeout.  (And a
// child that closes an inherited Producer, e.g. from a destructor run by exit(), drops its
// parent's lock.)
//
// replay-empty-store (fixed in main by 8266627; a regression test now, ctest
// chaos_repro_replay_empty_store): a persist::ReplayConsumer from `earliest` that found the
// store empty went live (persist/src/replay.cc, poll(): EntryKind::kEnd -> go_live(true)
// while next_known is false).  The ring consumer it opens starts at the ring's oldest record;
// if the persister stored records and the ring let them go meanwhile (here: 200 records
// through a 4 KiB ring while the replay's ring consumer registers, step R1 or R2), the first
// ring record is delivered as the first record, with no kGap: records 0.. are skipped
// although the store holds them.
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chaos_roles.h"
#include "layout.h"
#include "mapping.h"
#include "shmbus/persister.h"

namespace shmbus::chaos {
namespace {

thread_local bool t_replayer = false;  // only the replay's thread acts on the hook
Producer* g_producer = nullptr;
persist::Persister* g_persister = nullptr;
std::atomic<int> g_fired{0};

void repro_handler(detail::ChaosStep step) noexcept {
  // R1 when the replay's ring consumer registers anew; R2 when its seek() keeps the
  // tailing reader's slot (no registry lock since 2026-12-06): both lie between the
  // start's computation and the position's publication.
  if (!t_replayer ||
      (step != detail::ChaosStep::kRegLocked && step != detail::ChaosStep::kRegSlotHeld) ||
      g_fired.exchange(1) != 0)
    return;
  t_replayer = false;  // our own publishes below fire hooks too
  std::vector<std::byte> b(kMinPayload);
  for (uint64_t i = 0; i < 200; ++i) {
    make_payload(b.data(), b.size(), 1, i);
    (void)g_producer->publish(Bytes(b.data(), b.size()));
  }
  (void)g_persister->flush(std::chrono::seconds(10));
  t_replayer = true;
}

}  // namespace

int repro_replay_empty_store() {
  const std::string ns = "chaosrepro" + std::to_string(getpid());
  char dir[] = "/tmp/shmbus-chaos-repro.XXXXXX";
  if (!mkdtemp(dir)) return 2;
  StreamOptions so;
  so.capacity = 4096;
  so.max_record = 256;
  if (!create_stream(ns, "s", so)) return 2;
  int rc = 2;
  {
    persist::PersisterOptions po;
    po.data_dir = dir;
    po.flush_interval = std::chrono::milliseconds(1);
    auto pr = persist::Persister::start(ns, "s", po);
    auto prod = Producer::open(ns, "s");
    persist::ReplayOptions ro;
    ro.data_dir = dir;
    auto rc_open = persist::ReplayConsumer::open(ns, "s", ro);
    if (pr && prod && rc_open) {
      g_persister = pr.value().get();
      g_producer = &prod.value();
      detail::set_chaos_handler(&repro_handler);
      t_replayer = true;
      Record rec;
      persist::ReplayStatus st = persist::ReplayStatus::kTimeout;
      for (int i = 0; i < 100 && st == persist::ReplayStatus::kTimeout; ++i)
        st = rc_open.value().poll(&rec, std::chrono::milliseconds(50));
      t_replayer = false;
      detail::set_chaos_handler(nullptr);
      if (g_fired.load() == 0) {
        std::printf("repro replay-empty-store: not exercised (the replay's ring consumer never "
                    "registered, R1 or R2)\n");
        rc = 2;
      } else if (st == persist::ReplayStatus::kOk && rec.seq == 0) {
        std::printf("repro replay-empty-store: not reproduced (the replay began at seq 0)\n");
        rc = 0;
      } else if (st == persist::ReplayStatus::kOk) {
        // A second replay, opened now that the store holds records, begins where the
        // store does.
        const uint64_t skipped_to = rec.seq;
        uint64_t second = ~0ULL;
        if (auto again = persist::ReplayConsumer::open(ns, "s", ro); again) {
          Record r2;
          if (again.value().poll(&r2, std::chrono::seconds(5)) == persist::ReplayStatus::kOk) second = r2.seq;
        }
        std::printf("repro replay-empty-store: REPRODUCED: a replay from earliest that found the store "
                    "empty delivered seq %llu first, with no gap before it; a replay opened after it "
                    "begins at seq %llu (the store holds them)\n",
                    static_cast<unsigned long long>(skipped_to), static_cast<unsigned long long>(second));
        rc = 1;
      } else if (st == persist::ReplayStatus::kGap) {
        std::printf("repro replay-empty-store: not reproduced (a kGap [%llu, %llu) first: %s)\n",
                    static_cast<unsigned long long>(rec.seq),
                    static_cast<unsigned long long>(rc_open.value().gap().to),
                    rc_open.value().gap().reason.c_str());
        rc = 0;
      } else {
        std::printf("repro replay-empty-store: poll status %d\n", static_cast<int>(st));
      }
      (void)pr.value()->stop(true);
    }
  }
  (void)remove_stream(ns, "s", true);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return rc;
}

int repro_fork_keeps_producer_alive() {
  const std::string ns = "chaosrepro" + std::to_string(getpid());
  StreamOptions so;
  so.capacity = 1 << 16;
  so.abandon_timeout = std::chrono::milliseconds(200);
  if (!create_stream(ns, "s", so)) return 2;
  int rc = 2;
  ConsumerOptions co;
  co.group = "g";
  auto c = Consumer::open(ns, "s", co);
  int ready[2];
  if (c && pipe(ready) == 0) {
    std::fflush(nullptr);
    const pid_t a = fork();
    if (a == 0) {  // the producer: a claim pending, a child forked, then killed
      auto p = Producer::open(ns, "s");
      if (!p) _exit(2);
      PubStatus st;
      Claim cl = p.value().claim(64, 0, &st);
      if (!cl.valid()) _exit(2);
      const pid_t b = fork();
      if (b == 0) {  // a child that never uses shmbus: it only lives a while
        sleep(20);
        _exit(0);
      }
      (void)!write(ready[1], &b, sizeof b);
      kill(getpid(), SIGKILL);
    }
    pid_t b = -1;
    if (read(ready[0], &b, sizeof b) == sizeof b) {
      waitpid(a, nullptr, 0);
      auto p = Producer::open(ns, "s");
      std::vector<std::byte> buf(kMinPayload);
      make_payload(buf.data(), buf.size(), 1, 0);
      if (p && p.value().publish(Bytes(buf.data(), buf.size())).ok()) {
        const auto t0 = std::chrono::steady_clock::now();
        Record rec;
        ReadStatus st = ReadStatus::kTimeout;
        while (st == ReadStatus::kTimeout && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3))
          st = c.value().poll(&rec, std::chrono::milliseconds(50));
        const long ms = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                              std::chrono::steady_clock::now() - t0).count());
        if (st == ReadStatus::kOk) {
          std::printf("repro fork-keeps-producer-alive: not reproduced (the dead producer's claim was "
                      "abandoned; the consumer waited %ld ms)\n", ms);
          rc = 0;
        } else {
          std::printf("repro fork-keeps-producer-alive: REPRODUCED: a producer killed with a claim pending "
                      "still counts as alive while the child it forked (pid %d) lives: the consumer "
                      "waited %ld ms (abandon timeout 200 ms)\n", b, ms);
          rc = 1;
        }
      }
    }
    if (b > 0) kill(b, SIGKILL);  // reparented to init, which reaps it
    close(ready[0]);
    close(ready[1]);
  }
  (void)remove_stream(ns, "s", true);
  return rc;
}

// new-group-start-passed (found by a review, 2026-12-01; fixed): a new group opened at
// StartFrom::seq(X), X in the ring when open() looked, whose start producers passed while
// open() registered (here: 200 records through a 4 KiB ring at step R2, the slot held).
// open() moved its start to the floor but decided "below the oldest record" from what it
// had read before: records X.. were skipped with no kBeforeOldest, nothing counted lost.
// latest-start-passed (found by a review, 2026-12-06; fixed): the same for a tailing
// reader at StartFrom::latest() (the claim cursor, 20 here): it read on from the oldest
// record with no report.  `group` empty: a tailing reader; `from`: the first record owed.
int repro_start_passed(const char* what, const char* group, StartFrom start, uint64_t from) {
  const std::string ns = "chaosrepro" + std::to_string(getpid());
  StreamOptions so;
  so.capacity = 4096;
  so.max_record = 256;
  if (!create_stream(ns, "s", so)) return 2;
  int rc = 2;
  auto p = Producer::open(ns, "s");
  std::vector<std::byte> b(64);
  for (uint64_t i = 0; p && i < 20; ++i) {
    make_payload(b.data(), b.size(), 1, i);
    (void)p.value().publish(Bytes(b.data(), b.size()));
  }
  if (p) {
    static Producer* producer = nullptr;
    static std::vector<std::byte>* buf = nullptr;
    static thread_local bool opener = false;
    producer = &p.value();
    buf = &b;
    detail::set_chaos_handler([](detail::ChaosStep step) noexcept {
      if (!opener || step != detail::ChaosStep::kRegSlotHeld) return;
      opener = false;  // our own publishes fire hooks too
      for (uint64_t i = 20; i < 220; ++i) {
        make_payload(buf->data(), buf->size(), 1, i);
        (void)producer->publish(Bytes(buf->data(), buf->size()));
      }
    });
    ConsumerOptions co;
    co.group = group;
    co.start = start;
    opener = true;
    auto g = Consumer::open(ns, "s", co);
    opener = false;
    detail::set_chaos_handler(nullptr);
    Record rec;
    const ReadStatus st = g ? g.value().poll(&rec, std::chrono::nanoseconds(0)) : ReadStatus::kCorrupt;
    if (st == ReadStatus::kBeforeOldest && g.value().last_loss().from == from) {
      std::printf("repro %s: not reproduced (told: records %llu..%llu lost)\n", what,
                  static_cast<unsigned long long>(from),
                  static_cast<unsigned long long>(g.value().last_loss().to - 1));
      rc = 0;
    } else if (st == ReadStatus::kOk) {
      std::printf("repro %s: REPRODUCED: the first record read is %llu, lost %llu: records "
                  "from %llu skipped without a report\n",
                  what, static_cast<unsigned long long>(rec.seq),
                  static_cast<unsigned long long>(g.value().lost()),
                  static_cast<unsigned long long>(from));
      rc = 1;
    } else {
      std::printf("repro %s: unexpected status %d (last_loss from %llu)\n", what,
                  static_cast<int>(st),
                  static_cast<unsigned long long>(g ? g.value().last_loss().from : 0));
    }
  }
  (void)remove_stream(ns, "s", true);
  return rc;
}

// stale-abandoner (found by a review, 2026-12-02): an abandoner (here a producer waiting
// for room) that decided a claim without a header dead, then stalled while another
// abandoner gapped the claim and the producers lapped the ring, CASed its `observed`
// value (the stale bytes of the header never written: zeros here) into the same bytes of
// the next lap, 8 bytes of a committed record's payload that happened to be zeros: two
// groups read different bytes for one record.  kDecided stalls it at X1 (kAbandonDead,
// its decision made), where abandon_at() must then find head past the claim; kHeld at X2
// (kAbandonHeld, its hold stored and head re-read below the claim), where producers must
// not claim past the claim plus one ring while it stalls, and go on once it ran.
// kKilledHolding: the abandoner is another process, killed at X2: its hold must not stop
// the producers (a dead holder CASes nothing).  `tailing`: the abandoner is a tailing
// reader instead (its position never holds producers back: only its hold does).  `what`
// names the repro in its report.
int repro_stale_abandoner(const char* what, AbandonerStall mode, bool tailing) {
  const bool held = mode == AbandonerStall::kHeld;
  const std::string ns = "chaosrepro" + std::to_string(getpid());
  StreamOptions so;
  so.capacity = 4096;
  so.abandon_timeout = std::chrono::milliseconds(50);
  if (!create_stream(ns, "s", so)) return 2;
  int rc = 2;
  auto mapping = StreamMapping::open(ns, "s", false);
  ConsumerOptions c1o, c2o;
  c1o.group = "g1";
  c1o.start = StartFrom::earliest();
  c2o.group = "g2";
  c2o.start = StartFrom::earliest();
  auto c1 = Consumer::open(ns, "s", c1o);
  auto c2 = Consumer::open(ns, "s", c2o);
  ProducerOptions po;
  po.when_full = FullPolicy::kFail;
  auto p = Producer::open(ns, "s", po);
  std::vector<std::byte> z64(64), z200(200);
  if (!mapping || !c1 || !c2 || !p || !p.value().publish(Bytes(z64.data(), 64)).ok()) {
    (void)remove_stream(ns, "s", true);
    return 2;
  }
  const detail::StreamHeader* h = mapping.value()->header();
  const uint64_t dead_pos = detail::load_pos(&h->claim);  // where the dead claim starts
  // A producer killed between its claim and its pending tag: a claim without a header.
  const pid_t pid = fork();
  if (pid == 0) {
    auto d = Producer::open(ns, "s");
    detail::set_chaos_handler([](detail::ChaosStep step) noexcept {
      if (step == detail::ChaosStep::kClaimTaken) raise(SIGKILL);
    });
    if (d) (void)d.value().publish(Bytes(z64.data(), 64));
    _exit(1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  static std::atomic<bool> stalled{false}, release{false};
  static std::atomic<detail::ChaosStep> stall_step{detail::ChaosStep::kAbandonDead};
  static thread_local bool stall_me = false;
  stalled = false;
  release = false;
  stall_step = mode == AbandonerStall::kDecided ? detail::ChaosStep::kAbandonDead
                                                : detail::ChaosStep::kAbandonHeld;
  detail::set_chaos_handler([](detail::ChaosStep step) noexcept {
    if (step != stall_step.load() || !stall_me) return;
    stall_me = false;
    stalled.store(true);
    while (!release.load()) usleep(100);  // preempted before its CAS
  });
  // The stalled abandoner: a second producer that fills the ring and waits for room, or
  // a tailing reader that waits for the dead claim.
  auto abandoner = [&] {
    stall_me = true;
    if (tailing) {
      ConsumerOptions to;
      to.start = StartFrom::earliest();
      auto t = Consumer::open(ns, "s", to);
      Record r;
      for (int i = 0; t && i < 100 && !release.load(); ++i)
        (void)t.value().poll(&r, std::chrono::milliseconds(100));
    } else {
      auto p2 = Producer::open(ns, "s");
      for (int i = 0; p2 && i < 17; ++i) (void)p2.value().publish(Bytes(z200.data(), 200));
    }
    stall_me = false;
  };
  std::thread a1;
  int holder_status = 0;
  if (mode == AbandonerStall::kKilledHolding) {
    const pid_t holder = fork();
    if (holder == 0) {
      detail::set_chaos_handler([](detail::ChaosStep step) noexcept {
        if (step == detail::ChaosStep::kAbandonHeld) raise(SIGKILL);
      });
      abandoner();
      _exit(1);
    }
    for (int i = 0; i < 20000 && waitpid(holder, &holder_status, WNOHANG) == 0; ++i) usleep(1000);
    if (kill(holder, 0) == 0) {  // never got there: a setup failure
      kill(holder, SIGKILL);
      waitpid(holder, &holder_status, 0);
    }
    stalled.store(WIFSIGNALED(holder_status) && WTERMSIG(holder_status) == SIGKILL);
  } else {
    a1 = std::thread(abandoner);
    for (int i = 0; i < 20000 && !stalled.load(); ++i) usleep(1000);
  }
  // Everyone else goes on: the consumers read, the first producer publishes into lap 1
  // (abandoning the dead claim again on the way).  x_seq: its first record past the end
  // of the ring's first lap.
  Record rec;
  uint64_t x_seq = ~0ULL;
  auto go_on = [&](int turns) {
    for (int it = 0; it < turns && x_seq == ~0ULL; ++it) {
      while (c1.value().poll(&rec, std::chrono::nanoseconds(0)) == ReadStatus::kOk) {
      }
      while (c2.value().poll(&rec, std::chrono::nanoseconds(0)) == ReadStatus::kOk) {
      }
      const PubResult r = p.value().publish(Bytes(z200.data(), 200));
      if (r.ok() && detail::load_pos(&h->claim) > so.capacity) x_seq = r.seq;
      if (!r.ok()) usleep(1000);
    }
  };
  // Stalled at X1 the first producer must get into lap 1; at X2 it must not get past the
  // hold (so, bounded: 500 turns of at least 1 ms once the ring is full).
  if (stalled.load()) go_on(held ? 500 : 20000);
  const uint64_t max_claim = detail::load_pos(&h->claim);  // the furthest claim while it stalled
  // The bytes group `c` reads for record x_seq (empty if it never comes).
  auto read_x = [&](Consumer& c) {
    std::vector<std::byte> seen;
    for (int i = 0; x_seq != ~0ULL && i < 1000; ++i) {
      if (c.poll(&rec, std::chrono::seconds(1)) != ReadStatus::kOk) break;
      if (rec.seq == x_seq) {
        seen.assign(rec.data.begin(), rec.data.end());
        break;
      }
    }
    return seen;
  };
  std::vector<std::byte> seen1 = read_x(c1.value());
  const bool was_stalled = stalled.load();
  release.store(true);  // the stalled abandoner runs on
  if (a1.joinable()) a1.join();
  detail::set_chaos_handler(nullptr);
  if (x_seq == ~0ULL) {  // held back by the hold: the ring must move on now
    go_on(20000);
    seen1 = read_x(c1.value());
  }
  const std::vector<std::byte> seen2 = read_x(c2.value());
  const uint64_t abandoned = h->abandoned.load();
  const bool passed_hold = held && max_claim > dead_pos + so.capacity;
  if (mode == AbandonerStall::kKilledHolding && was_stalled && x_seq == ~0ULL) {
    std::printf("repro %s: REPRODUCED: a dead abandoner's hold stops the producers at %llu "
                "(held at %llu)\n", what, static_cast<unsigned long long>(detail::load_pos(&h->claim)),
                static_cast<unsigned long long>(dead_pos));
    rc = 1;
  } else if (!WIFSIGNALED(status) || !was_stalled || x_seq == ~0ULL || seen1.empty() || seen2.empty()) {
    std::printf("repro %s: setup failed (child %d, %s, record %s, read %zu / %zu)\n", what, status,
                was_stalled ? "stalled" : "abandoner never stalled",
                x_seq == ~0ULL ? "not in lap 1" : "published", seen1.size(), seen2.size());
  } else if (seen1 != seen2 || abandoned != 1 || passed_hold) {
    std::printf("repro %s: REPRODUCED: record %llu read differently by two groups "
                "(%s), abandoned counted %llu times, claims reached %llu while held at %llu\n",
                what, static_cast<unsigned long long>(x_seq), seen1 != seen2 ? "bytes differ" : "same bytes",
                static_cast<unsigned long long>(abandoned), static_cast<unsigned long long>(max_claim),
                static_cast<unsigned long long>(dead_pos));
    rc = 1;
  } else {
    std::printf("repro %s: not reproduced (both groups read record %llu alike, one abandon, "
                "claims reached %llu while stalled)\n", what, static_cast<unsigned long long>(x_seq),
                static_cast<unsigned long long>(max_claim));
    rc = 0;
  }
  c1.value().close();
  c2.value().close();
  p.value().close();
  (void)remove_stream(ns, "s", true);
  return rc;
}

// tailing-read-shrunk: a tailing reader read a record's tag and fields, then the object
// shrank (step S3) before the payload was read: the SIGBUS guard answered the copy with
// zeros and the floor check (the header page was still there) passed them as the record.
// poll() and poll_in_place() + validate() must both say kCorrupt instead.
namespace {
std::string g_shrink_path;
}  // namespace

int repro_tailing_read_shrunk() {
  int rc = 0;
  for (const bool in_place : {false, true}) {
    const std::string ns = "chaosrepro" + std::to_string(getpid()) + (in_place ? "i" : "c");
    StreamOptions so;
    so.capacity = 4096;
    so.max_record = 256;
    if (!create_stream(ns, "s", so)) return 2;
    {
      auto prod = Producer::open(ns, "s");
      auto reader = Consumer::open(ns, "s");  // tailing, from the oldest record
      if (!prod || !reader) return 2;
      const std::vector<std::byte> b(64, std::byte{0x5a});
      if (!prod->publish(Bytes(b.data(), b.size())).ok()) return 2;
      g_shrink_path = "/dev/shm/" + object_name(ns, "s");
      g_fired = 0;
      detail::set_chaos_handler([](detail::ChaosStep step) noexcept {
        if (step == detail::ChaosStep::kTailFields && g_fired.exchange(1) == 0)
          (void)::truncate(g_shrink_path.c_str(), 4096);
      });
      Record r;
      ReadStatus st = in_place ? reader->poll_in_place(&r, std::chrono::milliseconds(10))
                               : reader->poll(&r, std::chrono::milliseconds(10));
      detail::set_chaos_handler(nullptr);
      // In place, the payload is the caller's to read (the guard's zeros), then validate.
      bool vouched = false;
      if (in_place && st == ReadStatus::kOk) {
        unsigned sum = 0;
        for (std::byte x : r.data) sum += static_cast<unsigned>(x);
        vouched = reader->validate();
        if (vouched) std::fprintf(stderr, "(payload sum %u)\n", sum);
      }
      if (g_fired.load() == 0) {
        std::fprintf(stderr, "tailing-read-shrunk: step S3 never reached\n");
        rc = 2;
      } else if (st == ReadStatus::kOk && (!in_place || vouched)) {
        std::fprintf(stderr,
                     "tailing-read-shrunk: %s returned a record of %zu bytes (first 0x%02x) "
                     "read after the object shrank\n",
                     in_place ? "poll_in_place + validate" : "poll", r.data.size(),
                     r.data.empty() ? 0u : static_cast<unsigned>(r.data[0]));
        rc = std::max(rc, 1);
      }
    }
    (void)remove_stream(ns, "s", true);
  }
  return rc;
}

// A blocking consumer asleep when nothing wakes it (a review of e5214fc, which slept
// until the poll's deadline when its bit was set; fixed: it sleeps an abandon timeout at
// a time, and a wait at its position counts from its sleep).  Two readers, a durable
// group and a tailing reader, each polling 20 s on a thread of its own; abandon timeout
// 500 ms (dead-claim: 2 s).  kill-after-commit (killed-after-commit[-single|-batch-single]): a
// producer process killed (step M1 or B3) after its commit store, before it loads the
// sleepers word: the record must reach both within 3 abandon timeouts, not the poll's
// 20 s.  dead-claim (dead-claim-asleep): 3/4 of an abandon timeout into the readers'
// sleep, a producer process killed with a claim at their position, and at once another
// publishes; its commit wakes them: its record must reach both within half an abandon
// timeout of its publish (the dead claim abandoned one abandon timeout after they began
// to wait there, so within one of the kill), not one abandon timeout after the wake-up.
namespace {
detail::ChaosStep g_kill_step;
}  // namespace

int repro_sleeper_not_woken(const char* what, bool dead_claim, bool single, bool batch) {
  using Clock = std::chrono::steady_clock;
  const std::string ns = "chaosrepro" + std::to_string(getpid());
  const auto abandon = std::chrono::milliseconds(dead_claim ? 2000 : 500);
  StreamOptions so;
  so.capacity = 1 << 16;
  so.single_producer = single;
  so.abandon_timeout = abandon;
  if (!create_stream(ns, "s", so)) return 2;
  int rc = 2;
  {
    ConsumerOptions dco, tco;
    dco.group = "g";
    dco.wait = tco.wait = WaitStrategy::kBlock;
    auto d = Consumer::open(ns, "s", dco);
    auto t = Consumer::open(ns, "s", tco);
    auto watch = StreamMapping::open(ns, "s", true);
    if (!d || !t || !watch) return 2;
    std::atomic<int64_t> got[2] = {0, 0};
    ReadStatus st[2] = {ReadStatus::kTimeout, ReadStatus::kTimeout};
    std::string data[2];
    auto reader = [&](int i, Consumer* c) {
      Record r;
      st[i] = c->poll(&r, std::chrono::seconds(20));
      if (st[i] == ReadStatus::kOk) data[i].assign(reinterpret_cast<const char*>(r.data.data()), r.data.size());
      got[i] = Clock::now().time_since_epoch().count();
    };
    std::thread rd(reader, 0, &d.value()), rt(reader, 1, &t.value());
    // Both announced (asleep right after), seen in the sleepers word, then 3/4 of an
    // abandon timeout (dead-claim) or 300 ms.
    const auto t0 = Clock::now();
    while (__builtin_popcountll(watch.value()->header()->data_sleepers.load()) < 2 &&
           Clock::now() - t0 < std::chrono::seconds(10)) {
    }
    std::this_thread::sleep_for(dead_claim ? abandon * 3 / 4 : std::chrono::milliseconds(300));
    g_kill_step = batch ? detail::ChaosStep::kBatchCommitted : detail::ChaosStep::kCommitted;
    std::fflush(nullptr);
    const pid_t a = fork();
    if (a == 0) {  // no other thread of ours runs in the child
      auto p = Producer::open(ns, "s");
      if (!p) _exit(2);
      if (dead_claim) {
        PubStatus ps;
        Claim cl = p.value().claim(8, 0, &ps);
        if (!cl.valid()) _exit(2);
        kill(getpid(), SIGKILL);
      }
      detail::set_chaos_handler([](detail::ChaosStep step) noexcept {
        if (step == g_kill_step) kill(getpid(), SIGKILL);
      });
      const std::string_view x = "killed";
      const Bytes one[1] = {Bytes(reinterpret_cast<const std::byte*>(x.data()), x.size())};
      if (batch)
        (void)p.value().publish_batch(std::span<const Bytes>(one, 1));
      else
        (void)p.value().publish(one[0]);
      _exit(3);  // not killed: the step never fired
    }
    int ws = 0;
    waitpid(a, &ws, 0);
    const bool killed = WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL;
    auto from = Clock::now();
    std::string want = "killed";
    if (killed && dead_claim) {
      auto p = Producer::open(ns, "s");
      want = "after";
      from = Clock::now();
      if (!p || !p.value().publish(std::string_view(want)).ok()) std::fprintf(stderr, "%s: publish failed\n", what);
    }
    rd.join();
    rt.join();
    const auto bound = dead_claim ? abandon / 2 : abandon * 3;
    rc = killed ? 0 : 2;
    if (!killed) std::fprintf(stderr, "%s: the producer was not killed (status %d)\n", what, ws);
    for (int i = 0; i < 2 && killed; ++i) {
      const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
          Clock::time_point(Clock::duration(got[i].load())) - from);
      const char* who = i == 0 ? "durable" : "tailing";
      if (st[i] != ReadStatus::kOk || data[i] != want) {
        std::printf("repro %s: REPRODUCED: the %s reader's poll returned %d (\"%s\") after %ld ms\n", what, who,
                    static_cast<int>(st[i]), data[i].c_str(), static_cast<long>(took.count()));
        rc = 1;
      } else if (took > bound) {
        std::printf("repro %s: REPRODUCED: the %s reader got \"%s\" %ld ms after %s (bound %ld ms)\n", what, who,
                    want.c_str(), static_cast<long>(took.count()), dead_claim ? "its publish" : "the kill",
                    static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(bound).count()));
        rc = 1;
      } else {
        std::printf("repro %s: not reproduced: the %s reader got \"%s\" %ld ms after %s\n", what, who, want.c_str(),
                    static_cast<long>(took.count()), dead_claim ? "its publish" : "the kill");
      }
    }
  }
  (void)remove_stream(ns, "s", true);
  return rc;
}

}  // namespace shmbus::chaos
