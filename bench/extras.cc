#include "extras.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <new>
#include <string>
#include <thread>

#include "clock.h"
#include "harness.h"
#include "record.h"
#include "shmbus/shmbus.h"
#include "stats.h"

namespace bench {
namespace {

using namespace std::chrono_literals;

// Median, min and max of the repetitions into e; an error when there are none.
void fill(Extra* e, const std::vector<double>& values, const std::string& error) {
  if (values.empty()) {
    e->error = error.empty() ? "no result" : error;
    return;
  }
  const Spread s = spread(values);
  e->value = s.median;
  e->min = s.min;
  e->max = s.max;
}

std::string verdict(bool pass) { return pass ? "PASS" : "FAIL"; }

Extra make_extra(std::string group, std::string name, std::string unit) {
  Extra e;
  e.group = std::move(group);
  e.name = std::move(name);
  e.unit = std::move(unit);
  return e;
}

// Nanoseconds this process ran on a CPU (/proc/self/schedstat; getrusage where missing).
uint64_t cpu_ns() {
  std::ifstream in("/proc/self/schedstat");
  uint64_t ns = 0;
  if (in >> ns) return ns;
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return uint64_t(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1'000'000'000ull +
         uint64_t(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1000ull;
}

uint64_t voluntary_switches() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return uint64_t(u.ru_nvcsw);
}

// Nanoseconds thread `tid` of this process ran on a CPU (/proc/self/task/TID/schedstat);
// 0 when unknown.
uint64_t thread_cpu_ns(pid_t tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/schedstat");
  uint64_t ns = 0;
  return in >> ns ? ns : 0;
}

// The CPU rate (ns per second) of a thread that runs `wait` (which must last at least
// settle + span): sampled from outside it, from `settle` after its start for `span`, so
// that what it does once before it sleeps (a consumer's spin and yield phase) is left out.
template <class Wait>
uint64_t asleep_cpu_rate(uint64_t settle_ns, uint64_t span_ns, Wait wait) {
  std::atomic<pid_t> tid{0};  // release by the waiter, acquire below: its id
  std::thread t([&] {
    tid.store(static_cast<pid_t>(syscall(SYS_gettid)), std::memory_order_release);
    wait();
  });
  std::this_thread::sleep_for(std::chrono::nanoseconds(settle_ns));
  const pid_t id = tid.load(std::memory_order_acquire);
  const uint64_t c0 = id ? thread_cpu_ns(id) : 0, t0 = mono_ns();
  std::this_thread::sleep_for(std::chrono::nanoseconds(span_ns));
  const uint64_t c1 = id ? thread_cpu_ns(id) : 0, t1 = mono_ns();
  t.join();
  if (c0 == 0 || c1 < c0 || t1 <= t0) return ~0ULL;
  return uint64_t(double(c1 - c0) * 1e9 / double(t1 - t0));
}

// A "Key:   123 kB" line of /proc/self/status, in KiB (0 when missing).
uint64_t status_kib(const char* key) {
  std::ifstream in("/proc/self/status");
  const size_t n = std::strlen(key);
  for (std::string line; std::getline(in, line);)
    if (line.compare(0, n, key) == 0 && line.size() > n && line[n] == ':')
      return std::strtoull(line.c_str() + n + 1, nullptr, 10);
  return 0;
}

// The streams of one measurement, in a namespace of this process, removed at the end.
class Streams {
 public:
  explicit Streams(std::string tag) : ns_("bench" + std::to_string(getpid()) + tag) {}
  ~Streams() {
    for (const std::string& n : names_) (void)shmbus::remove_stream(ns_, n, true);
  }
  const std::string& ns() const { return ns_; }
  bool create(const std::string& name, uint64_t capacity, std::string* err) {
    shmbus::StreamOptions o;
    o.capacity = capacity;
    o.max_record = 64 * 1024;
    if (auto r = shmbus::create_stream(ns_, name, o); !r) {
      *err = "create_stream " + name + ": " + r.error().message;
      return false;
    }
    names_.push_back(name);
    return true;
  }

 private:
  std::string ns_;
  std::vector<std::string> names_;
};

// ---- CPU of an idle blocked consumer ------------------------------------------------

void measure_idle(const ExtrasOptions& o, std::vector<Extra>* out) {
  const double idle_s = o.quick ? 0.3 : 1.0;
  Extra shm = make_extra("wake-up", "CPU of an idle kBlock consumer (poll on an empty stream)", "ms/s");
  shm.baseline_name = "raw futex sleeper";
  shm.goal = "~0: < 1 ms/s (0.1% of a core) above the raw futex sleeper";
  Extra wakes = make_extra("wake-up", "wake-ups of that idle consumer", "/s");
  wakes.baseline_name = "raw futex sleeper";
  Extra asleep = make_extra("wake-up", "CPU of an idle kBlock consumer once asleep (after its spin phase)", "ms/s");
  asleep.baseline_name = "raw futex sleeper";
  asleep.goal = "~0: < 0.1 ms/s above the raw futex sleeper";
  Extra napper = make_extra("wake-up", "CPU of a raw futex sleeper woken once an abandon timeout (the consumer's naps), once asleep", "ms/s");
  Extra entry = make_extra("wake-up", "CPU of that consumer's spin and yield phase before it sleeps", "us");
  // The poll of the second measurement lasts settle + span + a margin.
  const uint64_t settle_ns = 300'000'000, margin_ns = 200'000'000;
  // The consumer's nap: the abandon timeout of the stream (created with the default).
  const uint64_t nap_ns = uint64_t(std::chrono::nanoseconds(shmbus::StreamOptions{}.abandon_timeout).count());
  std::vector<double> cpu, base, wk, cpu_asleep, base_asleep, nap_asleep, entry_us;
  std::string error;
  for (int rep = 0; rep < o.reps; ++rep) {
    Streams s("i");
    if (!s.create("idle", 1 << 20, &error)) break;
    const uint64_t span_ns = uint64_t(idle_s * 1e9);
    Role consumer{o.budget.core_a, [&](Ctx& ctx) {
      shmbus::ConsumerOptions co;
      co.group = "idle";
      co.wait = shmbus::WaitStrategy::kBlock;  // the default
      auto c = shmbus::Consumer::open(s.ns(), "idle", co);
      if (!c) return ctx.fail("open consumer: " + c.error().message);
      if (!ctx.barrier()) return 1;
      const uint64_t c0 = cpu_ns(), v0 = voluntary_switches(), t0 = mono_ns();
      shmbus::Record rec;
      const shmbus::ReadStatus st = c.value().poll(&rec, std::chrono::nanoseconds(span_ns));
      const uint64_t t1 = mono_ns();
      if (st != shmbus::ReadStatus::kTimeout)
        return ctx.fail("poll on an empty stream returned status " + std::to_string(int(st)));
      ctx.report().extra[0] = cpu_ns() - c0;
      ctx.report().extra[1] = voluntary_switches() - v0;
      ctx.report().extra[2] = t1 - t0;
      // The same poll on a thread of its own, its CPU sampled once it sleeps.
      shmbus::ReadStatus st2 = shmbus::ReadStatus::kOk;
      ctx.report().extra[3] = asleep_cpu_rate(settle_ns, span_ns, [&] {
        shmbus::Record r2;
        st2 = c.value().poll(&r2, std::chrono::nanoseconds(settle_ns + span_ns + margin_ns));
      });
      if (st2 != shmbus::ReadStatus::kTimeout)
        return ctx.fail("poll on an empty stream returned status " + std::to_string(int(st2)));
      return 0;
    }};
    Role sleeper{o.budget.core_b, [&](Ctx& ctx) {
      // FUTEX_WAIT on a word nobody changes until `span` has passed, in waits of at most
      // `nap` (none: one wait).
      auto futex_sleep = [](uint64_t span, uint64_t nap = ~0ULL) {
        std::atomic<uint32_t> word{0};
        const uint64_t t0 = mono_ns();
        for (uint64_t now = t0; now - t0 < span; now = mono_ns()) {
          const uint64_t left = std::min(nap, span - (now - t0));
          const timespec ts{time_t(left / 1'000'000'000ull), long(left % 1'000'000'000ull)};
          syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, 0, &ts,
                  nullptr, 0);
        }
      };
      if (!ctx.barrier()) return 1;
      const uint64_t c0 = cpu_ns(), v0 = voluntary_switches(), t0 = mono_ns();
      futex_sleep(span_ns);
      ctx.report().extra[0] = cpu_ns() - c0;
      ctx.report().extra[1] = voluntary_switches() - v0;
      ctx.report().extra[2] = mono_ns() - t0;
      ctx.report().extra[3] = asleep_cpu_rate(settle_ns, span_ns, [&] {
        futex_sleep(settle_ns + span_ns + margin_ns);
      });
      // The same, woken once a nap as the consumer is: what this host charges for the
      // naps themselves.
      ctx.report().extra[4] = asleep_cpu_rate(settle_ns, span_ns, [&] {
        futex_sleep(settle_ns + span_ns + margin_ns, nap_ns);
      });
      return 0;
    }};
    const RunOutcome r = run_roles({consumer, sleeper}, o.budget.timeout);
    if (!r.ok) {
      error = r.error;
      continue;
    }
    const RoleReport* rep_ = shared_area()->reports;
    const double secs0 = double(rep_[0].extra[2]) / 1e9, secs1 = double(rep_[1].extra[2]) / 1e9;
    cpu.push_back(double(rep_[0].extra[0]) / 1e6 / secs0);
    base.push_back(double(rep_[1].extra[0]) / 1e6 / secs1);
    wk.push_back(double(rep_[0].extra[1]) / secs0);
    if (rep_[0].extra[3] != ~0ULL && rep_[1].extra[3] != ~0ULL) {
      const double rate = double(rep_[0].extra[3]) / 1e6;  // ms/s
      cpu_asleep.push_back(rate);
      base_asleep.push_back(double(rep_[1].extra[3]) / 1e6);
      if (rep_[1].extra[4] != ~0ULL) nap_asleep.push_back(double(rep_[1].extra[4]) / 1e6);
      // The first poll's CPU less what its time asleep cost at the rate once asleep.
      entry_us.push_back(std::max(0.0, (double(rep_[0].extra[0]) / 1e6 - rate * secs0) * 1e3));
    }
  }
  fill(&shm, cpu, error);
  fill(&wakes, wk, error);
  fill(&asleep, cpu_asleep, cpu_asleep.empty() && error.empty() ? "no /proc/self/task/TID/schedstat" : error);
  fill(&entry, entry_us, asleep.error);
  fill(&napper, nap_asleep, asleep.error.empty() && nap_asleep.empty() ? "no /proc/self/task/TID/schedstat" : asleep.error);
  napper.verdict = "info";
  napper.detail = "FUTEX_WAIT with a timeout of " + fmt("%.1f", nap_ns / 1e9) +
                  " s (the consumer's nap: the stream's abandon timeout), its thread's CPU read "
                  "as for the consumer once asleep: what this host charges for the naps' "
                  "wake-ups alone";
  if (!base.empty()) shm.baseline = std::max(spread(base).median, 1e-6);
  shm.verdict = verdict(shm.value < shm.baseline + 1.0);
  wakes.verdict = "info";
  // (0 when the raw sleeper's thread ran less than a microsecond: no ratio then)
  if (!base_asleep.empty()) asleep.baseline = spread(base_asleep).median;
  asleep.verdict = asleep.error.empty() ? verdict(asleep.value < asleep.baseline + 0.1) : "n/a";
  asleep.detail = "the same poll on a thread of its own, its CPU read from "
                  "/proc/self/task/TID/schedstat from " + fmt("%.1f", settle_ns / 1e9) +
                  " s after its start for " + fmt("%.1f", idle_s) +
                  " s (its wake-ups only, if any); the raw futex sleeper's thread the same way: " +
                  fmt("%.3f", asleep.baseline) + " ms/s";
  entry.verdict = "info";
  entry.detail = "the first row's CPU less its time at the rate of the row above: what an "
                 "idle period costs once, before the consumer sleeps";
  shm.detail = "one poll(timeout " + fmt("%.1f", idle_s) +
               " s) on an empty stream: the spin and yield phase, then futex naps of one "
               "abandon timeout (the stream's, 1 s here) each; CPU from /proc/self/schedstat; "
               "the raw futex sleeper waits as long in FUTEX_WAIT";
  out->push_back(shm);
  out->push_back(wakes);
  out->push_back(asleep);
  out->push_back(entry);
  out->push_back(napper);
}

// ---- producer cost by number of registered durable consumers -----------------------

struct alignas(128) ScaleSync {
  // Bursts every consumer has read and committed.  release by the consumer role after
  // its commits; acquire by the producer before it starts the next burst.
  std::atomic<uint64_t> caught_up{0};
};
static_assert(std::atomic<uint64_t>::is_always_lock_free);

constexpr uint64_t kBurst = 16384;  // 64 B records: 1.5 MiB of a 4 MiB ring
// From the moment group 0 has read a burst to the start of the next one, whatever N is:
// the other N-1 groups read inside it and the consumer role sleeps the rest.  On this VM
// the rate of a burst depends on how long the consumer side was away before it (one
// consumer: 16-18 M rec/s back to back, 5.8 with a 60 ms busy wait added between bursts,
// 9.8-15 with 5-20 ms), and 63 groups take ~15-25 ms to read a burst, so without a fixed
// gap the 64-consumer row measured that time (0.65x of one consumer), not the producer's
// cost (bench/README.md).  The longest read of the N-1 groups is reported.
constexpr uint64_t kBurstGapNs = 30'000'000;

struct ScaleResult {
  double rate = 0;  // records per second inside publish() loops
  double p99_ns = 0;
  double p50_ns = 0;
  double catch_up_ns = 0;  // the longest read of a burst by the other N-1 groups
  std::string error;
};

ScaleResult run_scaling_once(int consumers, int bursts, const Budget& b, ScaleSync* sync) {
  ScaleResult res;
  Streams s("s");
  if (!s.create("scale", 4 << 20, &res.error)) return res;
  sync->caught_up.store(0, std::memory_order_relaxed);  // before fork: no reader yet
  constexpr size_t kSize = 64;
  Role producer{b.core_a, [&](Ctx& ctx) {
    if (!ctx.barrier()) return 1;  // every consumer is registered
    shmbus::ProducerOptions po;
    po.wait = shmbus::WaitStrategy::kBusySpin;
    auto p = shmbus::Producer::open(s.ns(), "scale", po);
    if (!p) return ctx.fail("open producer: " + p.error().message);
    shmbus::Producer& pr = p.value();
    std::vector<std::byte> buf(kSize, std::byte{0x5a});
    float* samples = ctx.samples();
    const uint64_t max_samples =
        std::min<uint64_t>(ctx.max_samples() - uint64_t(bursts), uint64_t(bursts / 2 + 1) * kBurst);
    prefault_samples(ctx, ctx.max_samples());
    // Publish latencies fill the samples from the front, the untimed bursts' durations
    // from the back.
    uint64_t n = 0, seq = 0, nbursts = 0;
    const uint64_t deadline = mono_ns() + 20'000'000'000ull;
    ctx.mark_measuring();
    for (int k = 0; k < bursts; ++k) {
      // acquire: pairs with the consumer role's release; its commits are visible.
      for (uint32_t i = 1; sync->caught_up.load(std::memory_order_acquire) < uint64_t(k); ++i)
        if ((i & 0xffff) == 0 && mono_ns() > deadline)
          return ctx.fail("the consumers never caught up");
      const bool timed = (k & 1) != 0;  // odd bursts: each publish timed; even: the rate
      const uint64_t t0 = ticks();
      for (uint64_t i = 0; i < kBurst; ++i, ++seq) {
        stamp_record(buf, seq, 0);
        const uint64_t c0 = timed ? ticks() : 0;
        const shmbus::PubResult r = pr.publish(shmbus::Bytes(buf.data(), buf.size()));
        if (timed && n < max_samples) samples[n++] = float(ticks_to_ns(ticks() - c0));
        if (!r.ok()) return ctx.fail("publish failed, status " + std::to_string(int(r.status)));
      }
      if (!timed) samples[ctx.max_samples() - 1 - nbursts++] = float(ticks_to_ns(ticks() - t0));
    }
    stamp_record(buf, kEndSeq, 0);
    if (!pr.publish(shmbus::Bytes(buf.data(), buf.size())).ok())
      return ctx.fail("publish end marker failed");
    ctx.report().nsamples = n;
    ctx.report().extra[0] = nbursts;
    return 0;
  }};
  Role reader{b.core_b, [&](Ctx& ctx) {
    std::vector<shmbus::Consumer> cs;
    for (int i = 0; i < consumers; ++i) {
      shmbus::ConsumerOptions co;
      co.group = std::string("g").append(std::to_string(i));
      co.start = shmbus::StartFrom::earliest();
      co.wait = shmbus::WaitStrategy::kBusySpin;
      auto c = shmbus::Consumer::open(s.ns(), "scale", co);
      if (!c) return ctx.fail("open consumer " + co.group + ": " + c.error().message);
      cs.push_back(std::move(c).value());
    }
    if (!ctx.barrier()) return 1;
    uint64_t sink = 0;
    // Reads the next record of consumer i and checks it is `want`.
    auto next = [&](int i, uint64_t want) -> bool {
      shmbus::Record rec;
      for (int tries = 0; tries < 100; ++tries) {  // 10 s of silence: a stall
        const shmbus::ReadStatus st = cs[size_t(i)].poll(&rec, 100ms);
        if (st == shmbus::ReadStatus::kTimeout) continue;
        if (st != shmbus::ReadStatus::kOk) {
          ctx.fail("poll of consumer " + std::to_string(i) + ": status " + std::to_string(int(st)));
          return false;
        }
        const RecordHeader h = read_record(rec.data);
        if (h.seq != want || !h.tail_ok) {
          ctx.fail("consumer " + std::to_string(i) + " read " + std::to_string(h.seq) +
                   " for " + std::to_string(want));
          return false;
        }
        sink ^= touch_lines(rec.data);
        return true;
      }
      ctx.fail("consumer " + std::to_string(i) + ": no record for 10 s");
      return false;
    };
    uint64_t longest_catch_up = 0;
    for (int k = 0; k < bursts; ++k) {
      const uint64_t first = uint64_t(k) * kBurst;
      // The active consumer reads while the producer publishes; the others catch up after.
      uint64_t read_by_0 = 0;
      for (int i = 0; i < consumers; ++i) {
        for (uint64_t q = first; q < first + kBurst; ++q)
          if (!next(i, q)) return 1;
        cs[size_t(i)].commit();
        if (i == 0) read_by_0 = mono_ns();
      }
      const uint64_t now = mono_ns();
      longest_catch_up = std::max(longest_catch_up, now - read_by_0);
      if (now < read_by_0 + kBurstGapNs)
        std::this_thread::sleep_for(std::chrono::nanoseconds(read_by_0 + kBurstGapNs - now));
      // release: pairs with the producer's acquire; our commits happened before.
      sync->caught_up.store(uint64_t(k) + 1, std::memory_order_release);
    }
    if (!next(0, kEndSeq)) return 1;
    ctx.report().extra[1] = longest_catch_up;
    volatile uint64_t keep = sink;
    (void)keep;
    return 0;
  }};
  const RunOutcome r = run_roles({producer, reader}, b.timeout);
  if (!r.ok) {
    res.error = r.error;
    return res;
  }
  const SharedArea* area = shared_area();
  const RoleReport& pr = area->reports[0];
  if (pr.extra[0] == 0 || pr.nsamples == 0) {
    res.error = "no samples";
    return res;
  }
  // The median burst: a preemption of the producer (a busy machine) spoils one burst,
  // not the rate.
  std::vector<float> spans(area->samples + SharedArea::kMaxSamples - pr.extra[0],
                           area->samples + SharedArea::kMaxSamples);
  std::sort(spans.begin(), spans.end());
  res.rate = double(kBurst) / (double(spans[spans.size() / 2]) / 1e9);
  std::vector<float> samples(area->samples, area->samples + pr.nsamples);
  const Latency l = summarize(samples);
  res.p99_ns = l.p99;
  res.p50_ns = l.p50;
  res.catch_up_ns = double(area->reports[1].extra[1]);
  return res;
}

void measure_scaling(const ExtrasOptions& o, std::vector<Extra>* out) {
  void* mem = mmap(nullptr, sizeof(ScaleSync), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return;
  auto* sync = new (mem) ScaleSync();
  const int counts[] = {1, 2, 8, 64};
  const int bursts = o.quick ? 4 : 32;
  std::vector<double> rate[4], p99[4];
  std::string error[4];
  double longest_catch_up = 0;
  // Round-robin over the consumer counts in every repetition (a placement change hits all).
  std::vector<std::string> placed;  // measurements kept off the reference placement
  for (int rep = 0; rep < o.reps; ++rep)
    for (int i = 0; i < 4; ++i) {
      ScaleResult r;
      auto measure = [&] {
        r = run_scaling_once(counts[i], bursts, o.budget, sync);
        return r.error.empty();
      };
      const std::string what = "scaling, " + std::to_string(counts[i]) +
                               (counts[i] == 1 ? " consumer" : " consumers");
      if (o.guard != nullptr) {
        const std::string note = o.guard->run(what, measure, [] {});
        if (!note.empty())
          placed.push_back(what + ", rep " + std::to_string(rep + 1) + " " + note);
      } else {
        (void)measure();
      }
      if (!r.error.empty()) {
        error[i] = r.error;
        std::fprintf(stderr, "  scaling, %d consumers: FAILED: %s\n", counts[i], r.error.c_str());
        continue;
      }
      std::fprintf(stderr, "  [%d/%d] scaling, %d consumers: %.2f M rec/s, publish p99 %.0f ns\n",
                   rep + 1, o.reps, counts[i], r.rate / 1e6, r.p99_ns);
      rate[i].push_back(r.rate / 1e6);
      p99[i].push_back(r.p99_ns);
      longest_catch_up = std::max(longest_catch_up, r.catch_up_ns);
    }
  munmap(mem, sizeof(ScaleSync));
  const std::string how =
      "64 B publish() on a 4 MiB ring with N registered durable groups, in bursts of " +
      std::to_string(kBurst) + " records (" + std::to_string(bursts) +
      " per run): group 0 reads every record while the producer publishes; the other N-1 "
      "(same process, consumer core) read and commit the burst after it, so every group "
      "keeps up and the producer never waits for room; the next burst starts " +
      std::to_string(kBurstGapNs / 1'000'000) +
      " ms after group 0 read the last one, for every N (the N-1 took at most " +
      std::to_string(int(longest_catch_up / 1e6 + 0.5)) +
      " ms), since the time between bursts moves the rate on its own; rate from the median "
      "untimed burst (a preempted burst does not count), p99 from the bursts whose every "
      "publish() is timed (TSC; the timing is in the number)";
  for (int i = 0; i < 4; ++i) {
    const std::string n = std::to_string(counts[i]);
    Extra e = make_extra("scaling", "producer rate, " + n + " durable consumer" + (i ? "s" : ""), "M rec/s");
    fill(&e, rate[i], error[i]);
    Extra q = make_extra("scaling", "publish() p99, " + n + " durable consumer" + (i ? "s" : ""), "ns");
    fill(&q, p99[i], error[i]);
    q.verdict = "info";
    e.verdict = "info";
    if (i > 0 && !rate[0].empty()) {
      e.baseline_name = "1 consumer";
      e.baseline = spread(rate[0]).median;
      q.baseline_name = "1 consumer";
      q.baseline = spread(p99[0]).median;
    }
    if (counts[i] == 64) {
      e.goal = ">= 0.9x of 1 consumer";
      e.verdict = e.baseline > 0 ? verdict(e.value >= 0.9 * e.baseline) : "n/a";
    }
    if (i == 0) {
      e.detail = how;
      for (const std::string& p : placed) e.detail += "; " + p;
    }
    out->push_back(e);
    out->push_back(q);
  }
}

// ---- footprint --------------------------------------------------------------------

// Ring bytes per 64 B record: records that fit a 1 MiB ring held by a durable group that
// reads nothing.
void measure_bytes_per_record(const ExtrasOptions& o, std::vector<Extra>* out) {
  Extra e = make_extra("footprint", "ring bytes per 64 B record (1 MiB ring / records that fit)", "B");
  e.baseline_name = "SPSC ring slot (same payload)";
  e.baseline = 64;
  e.goal = "< 97 B (64 B payload + 32 B header: must not grow)";
  Streams s("f");
  std::string error;
  if (s.create("fit", 1 << 20, &error)) {
    Role role{o.budget.core_a, [&](Ctx& ctx) {
      shmbus::ConsumerOptions co;
      co.group = "holds";
      co.start = shmbus::StartFrom::earliest();
      auto c = shmbus::Consumer::open(s.ns(), "fit", co);
      if (!c) return ctx.fail("open consumer: " + c.error().message);
      shmbus::ProducerOptions po;
      po.when_full = shmbus::FullPolicy::kFail;
      auto p = shmbus::Producer::open(s.ns(), "fit", po);
      if (!p) return ctx.fail("open producer: " + p.error().message);
      std::byte buf[64] = {};
      uint64_t n = 0;
      for (;; ++n) {
        const shmbus::PubResult r = p.value().publish(shmbus::Bytes(buf, sizeof buf));
        if (r.status == shmbus::PubStatus::kFull) break;
        if (!r.ok()) return ctx.fail("publish: status " + std::to_string(int(r.status)));
        if (n > (1u << 20)) return ctx.fail("the ring never filled");
      }
      ctx.report().extra[0] = n;
      ctx.report().extra[1] = p.value().capacity();
      return 0;
    }};
    const RunOutcome r = run_roles({role}, o.budget.timeout);
    if (r.ok && shared_area()->reports[0].extra[0] > 0) {
      const RoleReport& rp = shared_area()->reports[0];
      fill(&e, {double(rp.extra[1]) / double(rp.extra[0])}, {});
      e.detail = std::to_string(rp.extra[0]) + " records of 64 B fit a ring of " +
                 std::to_string(rp.extra[1]) + " bytes";
    } else {
      error = r.error;
    }
  }
  if (e.value == 0 && e.error.empty()) e.error = error.empty() ? "no result" : error;
  e.verdict = verdict(e.value < 97.0);
  out->push_back(e);
}

// VmRSS of a process that opened a producer or a consumer (4 MiB ring) and idles, and
// the private memory the open added.
void measure_rss(const ExtrasOptions& o, std::vector<Extra>* out) {
  for (const bool is_producer : {true, false}) {
    const std::string who = is_producer ? "producer" : "consumer";
    Extra rss = make_extra("footprint", "VmRSS of an idle " + who + " process after open (4 MiB ring)", "KiB");
    rss.baseline_name = "the same process before open";
    rss.verdict = "info";
    Extra priv = make_extra("footprint", "private memory (RssAnon) that " + who + " open added", "KiB");
    priv.goal = "<= 1024 KiB";
    std::vector<double> v_rss, v_base, v_priv, v_shm;
    std::string error;
    for (int rep = 0; rep < o.reps; ++rep) {
      Streams s("r");
      if (!s.create("rss", 4 << 20, &error)) break;
      Role role{o.budget.core_a, [&](Ctx& ctx) {
        const uint64_t rss0 = status_kib("VmRSS"), anon0 = status_kib("RssAnon"),
                       shm0 = status_kib("RssShmem");
        uint64_t rss1 = 0, anon1 = 0, shm1 = 0;
        auto sample = [&] {
          rss1 = status_kib("VmRSS");
          anon1 = status_kib("RssAnon");
          shm1 = status_kib("RssShmem");
        };
        if (is_producer) {
          auto p = shmbus::Producer::open(s.ns(), "rss");
          if (!p) return ctx.fail("open producer: " + p.error().message);
          sample();
        } else {
          shmbus::ConsumerOptions co;
          co.group = "rss";
          auto c = shmbus::Consumer::open(s.ns(), "rss", co);
          if (!c) return ctx.fail("open consumer: " + c.error().message);
          sample();
        }
        RoleReport& rp = ctx.report();
        rp.extra[0] = rss0;
        rp.extra[1] = rss1;
        rp.extra[2] = anon1 > anon0 ? anon1 - anon0 : 0;
        rp.extra[3] = shm1 > shm0 ? shm1 - shm0 : 0;
        return 0;
      }};
      const RunOutcome r = run_roles({role}, o.budget.timeout);
      if (!r.ok) {
        error = r.error;
        continue;
      }
      const RoleReport& rp = shared_area()->reports[0];
      v_base.push_back(double(rp.extra[0]));
      v_rss.push_back(double(rp.extra[1]));
      v_priv.push_back(double(rp.extra[2]));
      v_shm.push_back(double(rp.extra[3]));
    }
    fill(&rss, v_rss, error);
    fill(&priv, v_priv, error);
    if (!v_base.empty()) rss.baseline = spread(v_base).median;
    priv.verdict = verdict(priv.value <= 1024);
    if (!v_shm.empty())
      rss.detail = "of which shared memory mapped by the open (RssShmem): " +
                   fmt("%.0f", spread(v_shm).median) +
                   " KiB (open maps and populates the whole ring on purpose, so that the "
                   "first lap takes no page faults); the process is a fork of the bench";
    out->push_back(rss);
    out->push_back(priv);
  }
}

struct CliRun {
  bool ok = false;
  double ms = 0;
  double maxrss_kib = 0;
  std::string error;
};

CliRun run_cli(const std::string& cli, const std::vector<std::string>& args) {
  CliRun out;
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(cli.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::fflush(nullptr);
  const uint64_t t0 = mono_ns();
  const pid_t pid = fork();
  if (pid < 0) {
    out.error = "fork failed";
    return out;
  }
  if (pid == 0) {
    const int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, 1);
    execv(cli.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  rusage u{};
  // The command is short; a hang is bounded by the parent's own test timeout.
  if (wait4(pid, &status, 0, &u) != pid) {
    out.error = "wait4 failed";
    return out;
  }
  out.ms = double(mono_ns() - t0) / 1e6;
  out.maxrss_kib = double(u.ru_maxrss);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    out.error = cli + " " + args[2] + " exited with status " + std::to_string(status);
    return out;
  }
  out.ok = true;
  return out;
}

// `shmbus stat` and `shmbus ls` against a 1 GiB ring and a 1 MiB one, alternately.
void measure_cli(const ExtrasOptions& o, std::vector<Extra>* out) {
  const char* cmds[2] = {"stat", "ls"};
  std::vector<double> ms[2][2], rss[2][2];  // [command][0: 1 MiB, 1: 1 GiB]
  std::string error = o.cli.empty() ? "the shmbus CLI was not found (give --cli PATH)" : "";
  if (error.empty()) {
    Streams small("c"), big("C");
    if (small.create("ring", 1 << 20, &error) && big.create("ring", 1ull << 30, &error)) {
      const Streams* where[2] = {&small, &big};
      for (int rep = 0; rep < o.reps && error.empty(); ++rep)
        for (int c = 0; c < 2 && error.empty(); ++c)
          for (int z = 0; z < 2; ++z) {
            std::vector<std::string> args = {"--namespace", where[z]->ns(), cmds[c]};
            if (c == 0) args.push_back("ring");
            const CliRun r = run_cli(o.cli, args);
            if (!r.ok) {
              error = r.error;
              break;
            }
            ms[c][z].push_back(r.ms);
            rss[c][z].push_back(r.maxrss_kib);
          }
    }
  }
  for (int c = 0; c < 2; ++c) {
    const std::string cmd = std::string("shmbus ") + cmds[c];
    Extra m = make_extra("footprint", cmd + " against a 1 GiB ring: max RSS", "KiB");
    Extra t = make_extra("footprint", cmd + " against a 1 GiB ring: wall time", "ms");
    fill(&m, error.empty() ? rss[c][1] : std::vector<double>{}, error);
    fill(&t, error.empty() ? ms[c][1] : std::vector<double>{}, error);
    m.baseline_name = t.baseline_name = "the same against a 1 MiB ring";
    if (error.empty() && !rss[c][0].empty()) {
      m.baseline = spread(rss[c][0]).median;
      t.baseline = spread(ms[c][0]).median;
    }
    m.goal = "<= 1.1x (no data page touched)";
    t.goal = "<= 1.5x";
    m.verdict = verdict(m.baseline > 0 && m.value <= 1.1 * m.baseline);
    t.verdict = verdict(t.baseline > 0 && t.value <= 1.5 * t.baseline);
    if (c == 0 && error.empty())
      m.detail = "a process each (fork + exec of " + o.cli +
                 ", output to /dev/null), max RSS from wait4; the rings alternate";
    out->push_back(m);
    out->push_back(t);
  }
}

}  // namespace

std::string find_cli() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  buf[n] = '\0';
  std::string dir(buf);
  dir = dir.substr(0, dir.rfind('/'));
  for (const std::string& p : {dir + "/../tools/shmbus", dir + "/shmbus"})
    if (access(p.c_str(), X_OK) == 0) return p;
  return {};
}

void run_extras(const ExtrasOptions& o, std::vector<Extra>* out) {
  if (o.idle) {
    std::fprintf(stderr, "  idle kBlock consumer CPU\n");
    measure_idle(o, out);
  }
  if (o.scaling) measure_scaling(o, out);
  if (o.footprint) {
    std::fprintf(stderr, "  footprint\n");
    measure_bytes_per_record(o, out);
    measure_rss(o, out);
    measure_cli(o, out);
  }
}

}  // namespace bench
