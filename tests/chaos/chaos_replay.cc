// chaos_replay.cc: the persister and the replaying consumers of the chaos harness.
#include <unistd.h>

#include <optional>
#include <thread>

#include "chaos_roles.h"
#include "shmbus/persister.h"

#include <spdlog/spdlog.h>

namespace shmbus::chaos {

int run_persister(Shared* s, const std::string& ns, const std::string& stream,
                  const std::string& data_dir) {
  // Its warnings (one per gap it stores) would drown the harness's summary.
  spdlog::set_level(spdlog::level::err);
  persist::PersisterOptions po;
  po.data_dir = data_dir;
  po.hold_producers = true;
  po.flush_interval = std::chrono::milliseconds(5);
  po.segment_bytes = 1 << 20;
  std::unique_ptr<persist::Persister> p;
  for (int attempt = 0;; ++attempt) {
    auto r = persist::Persister::start(ns, stream, po);
    if (r) { p = std::move(r.value()); break; }
    if (attempt >= 500) {  // a dead predecessor's store lock or group: retry a while
      violate(s, "persister (pid %d): start: %s", getpid(), r.error().message.c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  while (s->stop_persister.load(std::memory_order_acquire) == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (auto r = p->flush(std::chrono::seconds(30)); !r)
    violate(s, "persister: flush: %s", r.error().message.c_str());
  if (auto r = p->stop(true); !r) violate(s, "persister: stop: %s", r.error().message.c_str());
  return 0;
}

int run_replayer(Shared* s, const ConsumerRole& role, const std::string& data_dir) {
  char who[48];
  snprintf(who, sizeof who, "replaying consumer %u (pid %d)", role.logical, getpid());
  persist::ReplayOptions ro;
  ro.start = StartFrom::earliest();
  ro.wait = role.wait;
  ro.data_dir = data_dir;
  std::optional<persist::ReplayConsumer> opened;
  for (int attempt = 0;; ++attempt) {
    auto r = persist::ReplayConsumer::open(role.ns, role.stream, ro);
    if (r) { opened.emplace(std::move(r.value())); break; }
    if (attempt >= 500) {
      violate(s, "%s: open: %s", who, r.error().message.c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  persist::ReplayConsumer& c = *opened;
  s->opened[role.logical % kMaxLogical].fetch_add(1, std::memory_order_release);
  std::atomic<uint64_t>* table = s->seen[role.logical % kMaxLogical];
  // The persister ran before the first publish and keeps everything (no retention): a
  // replay from earliest may begin past seq 0 only over sequences that never held data
  // (the store does not record gaps before its first record), and from there never
  // skips one without a kGap.
  uint64_t expect = 0;
  bool first = true;
  uint64_t give_up = 0;
  for (;;) {
    if (s->stop_consumers.load(std::memory_order_acquire) != 0) {
      if (expect >= s->final_seq.load(std::memory_order_acquire)) break;
      const uint64_t now = static_cast<uint64_t>(
          std::chrono::steady_clock::now().time_since_epoch().count());
      if (give_up == 0) give_up = now + 60'000'000'000ULL;
      if (now > give_up) {
        violate(s, "%s: stuck at seq %llu for 60 s after the producers stopped", who,
                static_cast<unsigned long long>(c.next_seq()));
        return 1;
      }
    }
    Record rec;
    const persist::ReplayStatus st = c.poll(&rec, std::chrono::milliseconds(20));
    if (st == persist::ReplayStatus::kTimeout) continue;
    if (st == persist::ReplayStatus::kGap) {
      const persist::ReplayGap& g = c.gap();
      if (first) {
        for (uint64_t q = 0; q < g.from && q < kMaxSeq; ++q) record_outcome(s, table, who, q, kGap);
        expect = g.from;
        first = false;
      }
      if (g.from != expect)
        violate(s, "%s: gap [%llu, %llu) (%s) reported at seq %llu", who,
                static_cast<unsigned long long>(g.from), static_cast<unsigned long long>(g.to),
                g.reason.c_str(), static_cast<unsigned long long>(expect));
      for (uint64_t q = g.from; q < g.to && q < kMaxSeq; ++q) record_outcome(s, table, who, q, kGap);
      s->replay_gaps.fetch_add(1, std::memory_order_relaxed);
      expect = g.to;
      continue;
    }
    if (st != persist::ReplayStatus::kOk) {
      violate(s, "%s: poll returned status %d at seq %llu: %s", who, static_cast<int>(st),
              static_cast<unsigned long long>(c.next_seq()), c.error().message.c_str());
      return 1;
    }
    const uint64_t h = check_payload(rec.data);
    if (h == 0)
      violate(s, "%s: seq %llu delivered torn (%zu bytes)", who,
              static_cast<unsigned long long>(rec.seq), rec.data.size());
    if (first) {  // [0, rec.seq) skipped at the start: gaps, or this is a violation
      for (uint64_t q = 0; q < rec.seq && q < kMaxSeq; ++q) record_outcome(s, table, who, q, kGap);
      expect = rec.seq;
      first = false;
    }
    if (rec.seq != expect) {
      violate(s, "%s: seq %llu delivered after %llu (no gap reported between)", who,
              static_cast<unsigned long long>(rec.seq), static_cast<unsigned long long>(expect - 1));
      return 1;
    }
    record_outcome(s, table, who, rec.seq, kDelivered | (h & 0xffffffff));
    s->replayed.fetch_add(1, std::memory_order_relaxed);
    expect = rec.seq + 1;
  }
  return 0;
}

}  // namespace shmbus::chaos
