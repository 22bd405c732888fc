// test_crash_sweep.cc: the crash sweep (issue 7).  A realistic workload on a file store
// (appends, flushes, segment rolls, delete_before, retention with secure erase, an fsck
// repair, reopens) runs under the fault-injecting Env; for every probe point (every file
// operation it makes) and each fault kind (EIO, ENOSPC, crash) it is run again with that
// fault there, then the power is lost, and the store must:
//   - open;
//   - serve every record acknowledged durable (a successful flush) and not deleted,
//     with identical bytes and sequence;
//   - serve nothing below a deletion watermark that was acknowledged;
//   - continue numbering with no reuse (next_seq at or above every acknowledged record).
// The default suite runs every 9th probe point; SHMBUS_SWEEP_STRIDE=1 (ctest label
// `soak`) runs them all.  The pmem store is not covered (its stores go through a
// mapping, not the Env).
#include <cstdio>
#include <cstdlib>

#include "fault_env.h"
#include "format.h"
#include "shmbus/persister.h"
#include "shmbus/detail/stream_control.h"
#include "test_util.h"
#include "../common/scratch.h"

namespace shmbus::persist::test {
namespace {

using Fault = FaultEnv::Fault;

StoreOptions sweep_options() {
  StoreOptions o = small_options();
  o.segment_bytes = 4096;
  o.write_buffer = 4096;
  o.flush_interval = std::chrono::hours(1);
  o.secure_delete = true;
  return o;
}

struct Outcome {
  uint64_t acked = 0;  // records below were acknowledged durable
  uint64_t floor = 0;  // the deletion watermark acknowledged
  // The highest watermark any deletion asked for (a deletion that failed after raising
  // the watermark is finished by the next open: records below it may go, none above).
  uint64_t asked = 0;
};

// The workload.  Errors are expected (faults): it goes on as a persister would, always
// appending from the store's next_seq() (what the ring still holds).
Outcome workload(const std::string& root) {
  Outcome o;
  std::optional<SegmentStore> s;
  auto reopen = [&] {
    s.reset();
    auto r = SegmentStore::open(root, "ns", "st", sweep_options());
    if (r) s.emplace(std::move(r.value()));
  };
  for (int step = 0; step < 24; ++step) {
    if (!s) reopen();
    if (!s) continue;
    if (step % 3 == 2) {
      // Six records as one batch frame (as the persister stores what it reads).
      const uint64_t q0 = s->next_seq();
      std::vector<std::string> bodies;
      std::vector<Record> recs;
      for (uint64_t q = q0; q < q0 + 6; ++q) bodies.push_back(payload_for(q, 60 + (q * 37) % 200));
      for (uint64_t q = q0; q < q0 + 6; ++q) recs.push_back(Record{q, 1000 * q, 0, as_bytes(bodies[q - q0])});
      (void)s->append_batch(recs);
    } else {
      for (int k = 0; k < 6; ++k) {
        const uint64_t q = s->next_seq();
        if (!s->append(q, 1000 * q, 0, as_bytes(payload_for(q, 60 + (q * 37) % 200)))) break;
      }
    }
    if (step % 2 == 1 && s->flush()) o.acked = std::max(o.acked, s->durable_seq());
    if (step == 9) {
      const uint64_t below = std::min<uint64_t>(s->next_seq(), 30);
      o.asked = std::max(o.asked, below);
      if (auto d = s->delete_before(below); d) o.floor = std::max(o.floor, d->deleted_below);
    }
    if (step == 15) {
      o.asked = std::max(o.asked, s->next_seq());
      if (auto d = s->apply_retention(std::chrono::nanoseconds(0), 8 << 10, 0); d)
        o.floor = std::max(o.floor, d->deleted_below);
    }
    if (step == 19) {  // an fsck repair between two writers
      s.reset();
      (void)fsck(root, true);
    }
  }
  if (s && s->flush()) o.acked = std::max(o.acked, s->durable_seq());
  return o;
}

// After the power loss: the checks listed above.  Returns "" or what failed.
std::string verify(const std::string& root, const Outcome& o) {
  auto s = SegmentStore::open(root, "ns", "st", sweep_options());
  if (!s) return "the store does not open: " + s.error().message;
  if (s->next_seq() < o.acked)
    return "next_seq " + std::to_string(s->next_seq()) + " below acknowledged " +
           std::to_string(o.acked);
  const uint64_t wm = s->stats().deleted_below;
  if (wm < o.floor) return "the deletion watermark went back";
  if (wm > o.asked) return "the deletion watermark " + std::to_string(wm) + " was never asked for";
  auto r = SegmentReader::open(root, "ns", "st");
  if (!r) return r.error().message;
  uint64_t expect = wm;  // the next acknowledged record to see
  for (int guard = 0; guard < 100000; ++guard) {
    auto e = r->next();
    if (!e) return "reader: " + e.error().message;
    if (e->kind == EntryKind::kEnd) break;
    if (e->kind != EntryKind::kRecord) continue;
    if (e->seq < wm) return "record " + std::to_string(e->seq) + " below the watermark served";
    const std::string want = payload_for(e->seq, 60 + (e->seq * 37) % 200);
    if (std::string(reinterpret_cast<const char*>(e->data.data()), e->data.size()) != want)
      return "record " + std::to_string(e->seq) + " has other bytes";
    if (e->seq < o.acked && e->seq != expect)
      return "acknowledged records [" + std::to_string(expect) + ", " + std::to_string(e->seq) +
             ") are missing";
    if (e->seq < o.acked) ++expect;
  }
  if (expect < o.acked)
    return "acknowledged records [" + std::to_string(expect) + ", " + std::to_string(o.acked) +
           ") are missing (watermark " + std::to_string(s->stats().deleted_below) + ", floor " +
           std::to_string(o.floor) + ")";
  return "";
}

uint64_t stride() {
  const char* v = std::getenv("SHMBUS_SWEEP_STRIDE");
  const uint64_t s = v && *v ? std::strtoull(v, nullptr, 10) : 9;
  return s ? s : 1;
}

// How many consecutive probe calls an EIO / ENOSPC fault lasts (SHMBUS_SWEEP_FAULT_CALLS).
uint64_t fault_calls() {
  const char* v = std::getenv("SHMBUS_SWEEP_FAULT_CALLS");
  const uint64_t n = v && *v ? std::strtoull(v, nullptr, 10) : 3;
  return n ? n : 1;
}

TEST(CrashSweep, EveryProbePointEveryFaultKind) {
  // A fault-free run counts the probe points.
  uint64_t points = 0;
  {
    TempDir t;
    ScopedFaultEnv env(t.path());
    const Outcome o = workload(t.path());
    points = env->probe_calls();
    EXPECT_GT(o.acked, 100u);
    EXPECT_GT(o.floor, 0u);
    env->crash();
    env->lose_power();
    EXPECT_EQ(verify(t.path(), o), "");
  }
  ASSERT_GT(points, 100u);
  const uint64_t step = stride();
  uint64_t runs = 0, failures = 0, injected_runs = 0;
  for (Fault kind : {Fault::kEio, Fault::kEnospc, Fault::kCrash}) {
    for (uint64_t p = 1; p <= points; p += step) {
      TempDir t;
      ScopedFaultEnv env(t.path());
      env->arm(kind, p, kind == Fault::kCrash ? 1 : fault_calls());
      const Outcome o = workload(t.path());
      injected_runs += env->faults_injected() > 0;
      env->crash();
      env->lose_power();
      const std::string why = verify(t.path(), o);
      ++runs;
      if (!why.empty()) {
        ++failures;
        ADD_FAILURE() << FaultEnv::fault_name(kind) << " at probe point " << p << ": " << why;
        if (failures > 10) return;
      }
    }
  }
  std::printf("crash sweep: %llu probe points x 3 fault kinds (every %llu-th point): %llu runs, "
              "%llu with a fault injected, %llu failed\n",
              static_cast<unsigned long long>(points), static_cast<unsigned long long>(step),
              static_cast<unsigned long long>(runs), static_cast<unsigned long long>(injected_runs),
              static_cast<unsigned long long>(failures));
  EXPECT_EQ(failures, 0u);
}

// The same with the persister on a ring: a producer publishes, the persister stores (with
// segment rolls, retention and `delete --before` through the header), flush() is
// retried until it succeeds; the acknowledged position is the stream's durable_seq.
// Then a crash, a power loss, and the store must hold every acknowledged record that was
// not deleted.  Probe numbering depends on the persister thread's timing here, so this
// one samples the probe points (all of them under SHMBUS_SWEEP_STRIDE=1).
struct RingOutcome {
  uint64_t acked = 0;
  uint64_t published = 0;
};

RingOutcome ring_workload(const std::string& ns, const std::string& root) {
  RingOutcome o;
  PersisterOptions po;
  po.data_dir = root;
  po.segment_bytes = 4096;
  po.flush_interval = std::chrono::milliseconds(2);
  po.retention_bytes = 16 << 10;
  po.retention_every = std::chrono::milliseconds(1);
  po.secure_delete = true;
  auto p = Persister::start(ns, "s", po);
  if (!p) return o;
  auto prod = Producer::open(ns, "s");
  auto ctl = StreamControl::open(ns, "s");
  if (!prod || !ctl) return o;
  for (int round = 0; round < 6; ++round) {
    for (int k = 0; k < 20; ++k) {
      const uint64_t q = o.published;
      PubResult r = prod->publish(as_bytes(payload_for(q, 60 + (q * 37) % 200)), 0);
      if (!r.ok()) break;  // held: the persister cannot store (the fault)
      ++o.published;
    }
    bool flushed = false;
    for (int tries = 0; tries < 3 && !flushed; ++tries)
      flushed = p.value()->flush(std::chrono::seconds(2)).ok();
    o.acked = std::max(o.acked, ctl->durable_seq());
    if (!flushed) break;  // the fault lasts: what was acknowledged so far is checked
    if (round == 3) ctl->raise_deleted_below(std::min<uint64_t>(o.acked, 40));
  }
  return o;
}

TEST(CrashSweep, PersisterUnderFaults) {
  uint64_t points = 0;
  {
    shmbus::test::ScopedNs ns;
    StreamOptions so;
    so.capacity = 1 << 20;
    ASSERT_TRUE(create_stream(ns.ns(), "s", so));
    TempDir t;
    ScopedFaultEnv env(t.path());
    const RingOutcome o = ring_workload(ns.ns(), t.path());
    points = env->probe_calls();
    EXPECT_EQ(o.acked, o.published);
  }
  ASSERT_GT(points, 50u);
  const char* v = std::getenv("SHMBUS_SWEEP_STRIDE");
  const uint64_t step = v && *v && std::strtoull(v, nullptr, 10) > 0
                            ? std::strtoull(v, nullptr, 10)
                            : std::max<uint64_t>(1, points / 8);
  uint64_t runs = 0, failures = 0;
  for (Fault kind : {Fault::kEio, Fault::kEnospc, Fault::kCrash}) {
    for (uint64_t at = 1; at <= points; at += step) {
      shmbus::test::ScopedNs ns;
      StreamOptions so;
      so.capacity = 1 << 20;
      ASSERT_TRUE(create_stream(ns.ns(), "s", so));
      TempDir t;
      ScopedFaultEnv env(t.path());
      env->arm(kind, at, kind == Fault::kCrash ? 1 : 3);
      const RingOutcome o = ring_workload(ns.ns(), t.path());
      env->crash();  // the persister (already stopped by ring_workload's end) is gone
      env->lose_power();
      ++runs;
      auto s = SegmentStore::open(t.path(), ns.ns(), "s", sweep_options());
      std::string why;
      if (!s) {
        why = "the store does not open: " + s.error().message;
      } else if (s->next_seq() < o.acked) {
        why = "next_seq " + std::to_string(s->next_seq()) + " below acknowledged " +
              std::to_string(o.acked);
      } else {
        const uint64_t wm = s->stats().deleted_below;
        s = Result<SegmentStore>(make_error(Errc::kClosed, ""));
        auto r = SegmentReader::open(t.path(), ns.ns(), "s");
        uint64_t expect = 0, kept_bytes = 0, first_seq = 0;
        bool first = true;
        for (int guard = 0; r && guard < 100000 && why.empty(); ++guard) {
          auto e = r->next();
          if (!e) {
            why = "reader: " + e.error().message;
            break;
          }
          if (e->kind == EntryKind::kEnd) break;
          if (e->kind != EntryKind::kRecord) continue;
          if (e->seq < wm) why = "a record below the watermark was served";
          if (std::string(reinterpret_cast<const char*>(e->data.data()), e->data.size()) !=
              payload_for(e->seq, 60 + (e->seq * 37) % 200))
            why = "record " + std::to_string(e->seq) + " has other bytes";
          if (first) expect = first_seq = e->seq;  // retention may have removed what came before
          first = false;
          kept_bytes += e->data.size() + 32;
          if (e->seq < o.acked && e->seq != expect)
            why = "acknowledged records [" + std::to_string(expect) + ", " +
                  std::to_string(e->seq) + ") are missing";
          expect = e->seq + 1;
        }
        if (why.empty() && !first && expect < o.acked)
          why = "acknowledged records [" + std::to_string(expect) + ", " +
                std::to_string(o.acked) + ") are missing";
        // Nothing served at all: every acknowledged record above the watermark is missing.
        if (why.empty() && first && o.acked > wm)
          why = "no record served; acknowledged records [" + std::to_string(wm) + ", " +
                std::to_string(o.acked) + ") are missing";
        // Records before the first served one are gone by the watermark or by retention,
        // which deletes whole sealed segments only while the store stays above 16 KiB.
        // What is left after the crash is at least 16 KiB less a segment (4 KiB + a
        // record), the unacknowledged round the crash may take (20 records of <= 260 B),
        // and the indexes: > 4 KiB of frames.  Less means records went missing at the
        // front.  (In this workload retention so far deletes nothing above the watermark:
        // the check guards recovery, it has not yet had to fire.)
        if (why.empty() && !first && first_seq > wm && kept_bytes < 4096)
          why = "records [" + std::to_string(wm) + ", " + std::to_string(first_seq) +
                ") are gone but only " + std::to_string(kept_bytes) +
                " bytes are kept (retention keeps 16 KiB)";
      }
      if (!why.empty()) {
        ++failures;
        ADD_FAILURE() << FaultEnv::fault_name(kind) << " at probe point " << at << ": " << why;
        if (failures > 5) return;
      }
    }
  }
  std::printf("persister crash sweep: ~%llu probe points x 3 fault kinds (every %llu-th): %llu runs, "
              "%llu failed\n",
              static_cast<unsigned long long>(points), static_cast<unsigned long long>(step),
              static_cast<unsigned long long>(runs), static_cast<unsigned long long>(failures));
  EXPECT_EQ(failures, 0u);
}

}  // namespace
}  // namespace shmbus::persist::test
