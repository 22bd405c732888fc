// shmbus_chaos: the chaos harness for the ring protocol (issue 9).  Every protocol step
// of the shm library built with SHMBUS_CHAOS (shmbus_shm_chaos; steps numbered in
// shm/FORMAT.md) calls a handler that sleeps, yields or spins at random, and in child
// processes kills its own process (kill -9) at a seeded firing; the parent also kills
// child producers and consumers from outside.  Each round:
//   1. chaos: producers (threads and processes; single, batch, claim/commit, abort),
//      durable and tailing consumers (threads and processes; busy, spin-yield and futex
//      waiting), replaying consumers and a persister, killed and restarted; every
//      consumer records each sequence's outcome.  The threads run in one child process
//      of their own: the parent never has a second thread when it forks;
//   2. checks: all consumers agree on each sequence (same payload hash, or a gap); what
//      a producer published (or aborted) is what they saw; no torn payload; a durable
//      view unchanged until the next poll; delivered + gaps + lost == advanced (these
//      three in the consumers, after every poll);
//   3. stall: a producer killed inside publish_batch with up to 256 pending claims holds
//      a consumer back at most one abandon timeout (+ epsilon);
//   4. futex: a consumer killed asleep costs at most two futex calls; then publish makes
//      none (the chaos build's futex counter).
// Usage: shmbus_chaos [--rounds N | --minutes M] [--seconds S] [--seed X]
//                     [--abandon-ms MS] [--epsilon-ms MS] [--single-producer]
//        shmbus_chaos --repro replay-empty-store|fork-keeps-producer-alive|
//                             new-group-start-passed|latest-start-passed|tailing-read-shrunk|
//                             killed-after-commit[-single]|killed-after-batch-commit-single|
//                             dead-claim-asleep|
//                             stale-abandoner|stale-abandoner[-tailing]-held|
//                             stale-abandoner[-tailing]-killed-holding
//                     (chaos_repro.cc: exit 1 while the defect shows)
// The phases of a round: chaos_phase.cc, chaos_bounds.cc (chaos_driver.h).
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "chaos_driver.h"

using namespace shmbus;
using namespace shmbus::chaos;
using detail::ChaosStep;

namespace shmbus::chaos {
Shared* g_shared = nullptr;
Totals g_tot;
std::string g_data_dir;
}  // namespace shmbus::chaos

namespace {

void reset_shared() {
  Shared* s = g_shared;
  s->stop_producers = 0;
  s->stop_consumers = 0;
  s->final_seq = ~0ULL;
  s->stop_persister = 0;
  s->go_producers = 0;
  s->thread_producers_done = 0;
  for (auto& v : s->opened) v = 0;
  std::memset(static_cast<void*>(s->published), 0, sizeof s->published);
  std::memset(static_cast<void*>(s->seen), 0, sizeof s->seen);
}

// Runs each of the library's one-time initialisations (function-local statics: the TSC
// calibration, the owner word, the SIGBUS handler) once before any thread starts: a
// child forked while another thread is inside one would wait for it for ever.
bool warm_up() {
  const std::string ns = "chaos" + std::to_string(getpid()) + "w";
  StreamOptions so;
  so.capacity = 4096;
  if (auto c = create_stream(ns, "s", so); !c) {
    std::fprintf(stderr, "chaos: create_stream: %s\n", c.error().message.c_str());
    return false;
  }
  {
    auto p = Producer::open(ns, "s");
    ConsumerOptions co;
    co.group = "w";
    auto c = Consumer::open(ns, "s", co);
    if (!p || !c) return false;
    std::vector<std::byte> b(kMinPayload);
    make_payload(b.data(), b.size(), 1, 0);
    Record rec;
    if (!p.value().publish(Bytes(b.data(), b.size())).ok() ||
        c.value().poll(&rec, std::chrono::seconds(5)) != ReadStatus::kOk)
      return false;
    (void)stream_info(ns, "s");
  }
  (void)remove_stream(ns, "s", true);
  return true;
}

bool round(const Options& o, int r, uint64_t seed) {
  Rng rng(mix(seed + static_cast<uint64_t>(r)));
  const std::string ns = "chaos" + std::to_string(getpid()) + "r" + std::to_string(r);
  StreamOptions so;
  so.capacity = rng.below(2) ? 64 << 10 : 16 << 10;  // small: many laps and wraps
  so.max_record = 512;
  so.abandon_timeout = std::chrono::milliseconds(o.abandon_ms);
  so.consumer_dead_timeout = std::chrono::milliseconds(300);
  so.single_producer = o.single_producer;
  if (auto c = create_stream(ns, "s", so); !c) {
    std::fprintf(stderr, "chaos: create_stream: %s\n", c.error().message.c_str());
    return false;
  }
  reset_shared();
  char dir[] = "/tmp/shmbus-chaos.XXXXXX";
  if (!mkdtemp(dir)) {
    std::perror("chaos: mkdtemp");
    return false;
  }
  g_data_dir = dir;
  chaos_phase(o, ns, rng, rng.next());
  for (int i = 0; i < 3 && g_shared->violations.load() == 0; ++i) stall_phase(o, ns, so.capacity, rng);
  if (g_shared->violations.load() == 0) futex_phase(ns, rng);
  (void)remove_stream(ns, "s", true);
  std::error_code ec;
  std::filesystem::remove_all(g_data_dir, ec);
  ++g_tot.rounds;
  return g_shared->violations.load() == 0;
}

}  // namespace

namespace {
// The stale-abandoner repros by name (chaos_repro.cc): where its abandoner stalls or dies,
// and whether it is a tailing reader rather than a producer.
struct StaleAbandonerRepro {
  const char* name;
  AbandonerStall mode;
  bool tailing;
  int run() const { return repro_stale_abandoner(name, mode, tailing); }
};
constexpr StaleAbandonerRepro kStaleAbandonerRepros[] = {
    {"stale-abandoner", AbandonerStall::kDecided, false},
    {"stale-abandoner-held", AbandonerStall::kHeld, false},
    {"stale-abandoner-killed-holding", AbandonerStall::kKilledHolding, false},
    {"stale-abandoner-tailing-held", AbandonerStall::kHeld, true},
    {"stale-abandoner-tailing-killed-holding", AbandonerStall::kKilledHolding, true},
};
const StaleAbandonerRepro* stale_abandoner_repro(std::string_view name) {
  for (const StaleAbandonerRepro& r : kStaleAbandonerRepros)
    if (name == r.name) return &r;
  return nullptr;
}
}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&]() -> const char* {
      if (i + 1 >= argc) { std::fprintf(stderr, "shmbus_chaos: %s needs a value\n", a.c_str()); std::exit(2); }
      return argv[++i];
    };
    if (a == "--rounds") o.rounds = std::atoi(val());
    else if (a == "--minutes") o.minutes = std::atof(val());
    else if (a == "--seconds") o.seconds = std::atof(val());
    else if (a == "--seed") o.seed = std::strtoull(val(), nullptr, 0);
    else if (a == "--abandon-ms") o.abandon_ms = std::strtoull(val(), nullptr, 0);
    else if (a == "--epsilon-ms") o.epsilon_ms = std::strtoull(val(), nullptr, 0);
    else if (a == "--single-producer") o.single_producer = true;
    else if (a == "--repro" && i + 1 < argc && std::string(argv[i + 1]) == "replay-empty-store")
      return repro_replay_empty_store();
    else if (a == "--repro" && i + 1 < argc && std::string(argv[i + 1]) == "fork-keeps-producer-alive")
      return repro_fork_keeps_producer_alive();
    else if (a == "--repro" && i + 1 < argc && std::string(argv[i + 1]) == "new-group-start-passed")
      return repro_start_passed("new-group-start-passed", "newg", StartFrom::seq(10), 10);
    else if (a == "--repro" && i + 1 < argc && std::string(argv[i + 1]) == "latest-start-passed")
      return repro_start_passed("latest-start-passed", "", StartFrom::latest(), 20);
    else if (a == "--repro" && i + 1 < argc && std::string(argv[i + 1]) == "tailing-read-shrunk")
      return repro_tailing_read_shrunk();
    else if (a == "--repro" && i + 1 < argc && std::string(argv[i + 1]) == "killed-after-commit")
      return repro_sleeper_not_woken("killed-after-commit", false, false, false);
    else if (a == "--repro" && i + 1 < argc && std::string(argv[i + 1]) == "killed-after-commit-single")
      return repro_sleeper_not_woken("killed-after-commit-single", false, true, false);
    else if (a == "--repro" && i + 1 < argc && std::string(argv[i + 1]) == "killed-after-batch-commit-single")
      return repro_sleeper_not_woken("killed-after-batch-commit-single", false, true, true);
    else if (a == "--repro" && i + 1 < argc && std::string(argv[i + 1]) == "dead-claim-asleep")
      return repro_sleeper_not_woken("dead-claim-asleep", true, false, false);
    else if (a == "--repro" && i + 1 < argc && stale_abandoner_repro(argv[i + 1]))
      return stale_abandoner_repro(argv[i + 1])->run();
    else {
      std::fprintf(stderr, "usage: shmbus_chaos [--rounds N | --minutes M] [--seconds S] [--seed X] "
                           "[--abandon-ms MS] [--epsilon-ms MS] [--single-producer]\n");
      return 2;
    }
  }
  if (!detail::chaos_enabled()) {
    std::fprintf(stderr, "shmbus_chaos: linked against a library without SHMBUS_CHAOS\n");
    return 2;
  }
  if (o.seed == 0) o.seed = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  void* mem = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) { std::perror("shmbus_chaos: mmap"); return 1; }
  g_shared = new (mem) Shared();
  char span[48];
  if (o.minutes > 0) snprintf(span, sizeof span, "%.1f minutes", o.minutes);
  else snprintf(span, sizeof span, "%d rounds", o.rounds);
  std::printf("shmbus_chaos: seed %llu, %s, %.1f s of chaos per round, abandon timeout %llu ms (+ %llu ms)\n",
              static_cast<unsigned long long>(o.seed), span,
              o.seconds, static_cast<unsigned long long>(o.abandon_ms),
              static_cast<unsigned long long>(o.epsilon_ms));
  std::fflush(stdout);
  if (!warm_up()) {
    std::fprintf(stderr, "shmbus_chaos: the warm-up stream failed\n");
    return 1;
  }
  const uint64_t start = steady_ms();
  bool ok = true;
  for (int r = 0; ok; ++r) {
    if (o.minutes > 0 ? steady_ms() - start >= static_cast<uint64_t>(o.minutes * 60000) : r >= o.rounds) break;
    ok = round(o, r, o.seed);
  }
  Shared* s = g_shared;
  std::printf("chaos summary: %llu rounds in %.1f s; %llu records published, %llu deliveries checked, "
              "%llu seqs compared (%llu seen by 2+ consumers, %llu agreed gaps), %llu durable views re-checked, %llu in-place reads refused; replays: %llu records, %llu gaps\n",
              static_cast<unsigned long long>(g_tot.rounds), (steady_ms() - start) / 1000.0,
              static_cast<unsigned long long>(g_tot.published), static_cast<unsigned long long>(s->delivered.load()),
              static_cast<unsigned long long>(g_tot.seqs_checked), static_cast<unsigned long long>(g_tot.agreements),
              static_cast<unsigned long long>(g_tot.gaps_agreed), static_cast<unsigned long long>(s->rechecked.load()),
              static_cast<unsigned long long>(s->refused.load()), static_cast<unsigned long long>(s->replayed.load()), static_cast<unsigned long long>(s->replay_gaps.load()));
  std::printf("chaos summary: %llu hook firings, %llu interleavings (firings perturbed), %llu kills "
              "(%llu at hooks, %llu from outside)\n",
              static_cast<unsigned long long>(s->firings.load()), static_cast<unsigned long long>(s->perturbations.load()),
              static_cast<unsigned long long>(s->self_kills.load() + s->ext_kills.load()),
              static_cast<unsigned long long>(s->self_kills.load()), static_cast<unsigned long long>(s->ext_kills.load()));
  std::printf("chaos summary: kills at hooks by step:");
  for (uint32_t i = 0; i < static_cast<uint32_t>(ChaosStep::kCount); ++i)
    if (uint64_t k = s->kills_at[i].load())
      std::printf(" %s=%llu", detail::chaos_step_code(static_cast<ChaosStep>(i)), static_cast<unsigned long long>(k));
  std::printf("\nchaos summary: steps never reached:");
  int never = 0;
  for (uint32_t i = 0; i < static_cast<uint32_t>(ChaosStep::kCount); ++i)
    if (s->fired_at[i].load() == 0) {
      std::printf(" %s", detail::chaos_step_code(static_cast<ChaosStep>(i)));
      ++never;
    }
  if (never == 0) std::printf(" none (all %u fired)", static_cast<unsigned>(ChaosStep::kCount));
  std::printf("\nchaos summary: %llu batch kills, consumers held at most %llu ms (bound %llu ms, up to %llu pending claims); "
              "%llu futex checks (%llu first publishes cleared a dead sleeper's bit, then 0 calls)\n",
              static_cast<unsigned long long>(g_tot.stalls), static_cast<unsigned long long>(g_tot.stall_max_ms),
              static_cast<unsigned long long>(o.abandon_ms + o.epsilon_ms),
              static_cast<unsigned long long>(g_tot.stall_pending_max), static_cast<unsigned long long>(g_tot.futex_checks),
              static_cast<unsigned long long>(g_tot.futex_dead_bits));
  const uint64_t v = s->violations.load();
  if (v != 0) {
    std::printf("chaos: FAILED, %llu violations; the first: %s (seed %llu)\n", static_cast<unsigned long long>(v),
                s->violation, static_cast<unsigned long long>(o.seed));
    return 1;
  }
  std::printf("chaos: ok\n");
  return 0;
}
