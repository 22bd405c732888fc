// test_persister_util.h: processes, payloads and store checks for the persister and
// replay integration tests (persist_integration_tests).
//
// Every child is forked through Children, which SIGKILLs and reaps whatever is left
// when a test ends (also on a failed assertion), and each child dies with its parent
// (PR_SET_PDEATHSIG).  Pipes are read with poll() timeouts: a test never hangs on a
// dead or stuck child.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "shmbus/persist.h"
#include "shmbus/persister.h"
#include "shmbus/shmbus.h"
#include "../common/process.h"
#include "../common/scratch.h"

namespace shmbus::persist::it {

using namespace std::chrono_literals;

// ---- names and directories --------------------------------------------------------

// A namespace of its own; its streams are removed at the end (shared with tests/shm).
using ScopedNs = shmbus::test::ScopedNs;

// A fresh data directory under /tmp, removed with everything in it at the end.
using DataDir = shmbus::test::TempDir;

// ---- payloads ----------------------------------------------------------------------

inline uint64_t mix64(uint64_t x) {  // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Payload of record `index` of producer `producer`: a 16-byte head {producer, size,
// index}, then bytes that follow from all three.  Its size lies in [lo, hi].
constexpr size_t kHead = 16;
inline size_t payload_size(uint32_t producer, uint64_t index, size_t lo, size_t hi) {
  return lo + mix64((uint64_t{producer} << 48) ^ index ^ 0x5bd1e995) % (hi - lo + 1);
}
inline void fill_payload(uint32_t producer, uint64_t index, size_t size, std::byte* out) {
  const uint32_t sz = static_cast<uint32_t>(size);
  std::memcpy(out, &producer, 4);
  std::memcpy(out + 4, &sz, 4);
  std::memcpy(out + 8, &index, 8);
  uint64_t seed = mix64((uint64_t{producer} << 40) ^ index);
  for (size_t at = kHead; at < size; at += 8) {
    const uint64_t w = mix64(seed + at);
    std::memcpy(out + at, &w, std::min<size_t>(8, size - at));
  }
}
// True if `b` is exactly what fill_payload() wrote; sets *producer and *index.
inline bool check_payload(Bytes b, uint32_t* producer, uint64_t* index) {
  if (b.size() < kHead) return false;
  uint32_t sz;
  std::memcpy(producer, b.data(), 4);
  std::memcpy(&sz, b.data() + 4, 4);
  std::memcpy(index, b.data() + 8, 8);
  if (sz != b.size()) return false;
  uint64_t seed = mix64((uint64_t{*producer} << 40) ^ *index);
  for (size_t at = kHead; at < b.size(); at += 8) {
    const uint64_t w = mix64(seed + at);
    if (std::memcmp(b.data() + at, &w, std::min<size_t>(8, b.size() - at)) != 0) return false;
  }
  return true;
}

// Per producer, indexes must come 0, 1, 2, ... (or, with `from_any`, consecutive from
// wherever the first one is): every record exactly once, in order.
struct OrderCheck {
  std::map<uint32_t, uint64_t> next;
  bool from_any = false;
  uint64_t bad = 0;     // payload damaged
  uint64_t skips = 0;   // an index missing or repeated
  uint64_t records = 0;
  std::string first_problem;

  void add(uint64_t seq, Bytes data) {
    ++records;
    uint32_t p;
    uint64_t i;
    if (!check_payload(data, &p, &i)) {
      if (!bad++ && first_problem.empty())
        first_problem = "seq " + std::to_string(seq) + ": bad payload";
      return;
    }
    auto it = next.find(p);
    if (it == next.end()) {
      if (!from_any && i != 0 && skips++ == 0 && first_problem.empty())
        first_problem = "seq " + std::to_string(seq) + ": producer " + std::to_string(p) +
                        " starts at index " + std::to_string(i);
      next[p] = i + 1;
      return;
    }
    if (i != it->second && skips++ == 0 && first_problem.empty())
      first_problem = "seq " + std::to_string(seq) + ": producer " + std::to_string(p) +
                      " index " + std::to_string(i) + ", expected " + std::to_string(it->second);
    it->second = i + 1;
  }
};

// ---- processes -----------------------------------------------------------------------

// Children (killed and reaped at the end of a test), Pipe: tests/common/process.h.
using shmbus::test::Children;
using shmbus::test::Pipe;

// What a producer child does.
struct ProduceSpec {
  std::string ns, stream;
  uint32_t producer = 0;
  uint64_t count = 0;
  size_t lo = 64, hi = 1000;
  FullPolicy policy = FullPolicy::kWait;
  std::chrono::nanoseconds full_timeout = 60s;
  // kFail: retry a refused record after this pause (the run counts the refusals).
  std::chrono::microseconds retry_pause = 500us;
  std::chrono::microseconds pause_every_record{0};  // a slow, steady producer
  uint64_t per_second = 0;  // > 0: at most this many records per second (paced in steps)
  // Set: called before the last record is published; false ends the run (code 30).
  std::function<bool()> before_last{};
};

// Publishes spec.count records; returns 0, or a code naming the failure.
inline int produce(const ProduceSpec& s) {
  ProducerOptions po;
  po.when_full = s.policy;
  po.full_timeout = s.full_timeout;
  auto p = Producer::open(s.ns, s.stream, po);
  if (!p) return 10;
  std::vector<std::byte> buf(s.hi);
  const auto t0 = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < s.count; ++i) {
    if (s.per_second && i % 64 == 0)
      std::this_thread::sleep_until(t0 + std::chrono::microseconds(i * 1'000'000 / s.per_second));
    if (s.before_last && i + 1 == s.count && !s.before_last()) return 30;
    const size_t n = payload_size(s.producer, i, s.lo, s.hi);
    fill_payload(s.producer, i, n, buf.data());
    for (;;) {
      PubResult r = p->publish(Bytes(buf.data(), n), s.producer);
      if (r.ok()) break;
      if (r.status == PubStatus::kFull && s.policy == FullPolicy::kFail) {
        std::this_thread::sleep_for(s.retry_pause);
        continue;
      }
      return 20 + static_cast<int>(r.status);
    }
    if (s.pause_every_record.count()) std::this_thread::sleep_for(s.pause_every_record);
  }
  return 0;
}

// A persister in a child process, driven through two pipes.  Commands: stop (flush,
// stop, exit 0 if stop() succeeded), stats, raise the file-size limit.
class PersisterChild {
 public:
  struct Report {
    char ok = 0;
    uint64_t records = 0, lost = 0, durable_seq = 0, disk_full_waits = 0;
    char last_error[512] = {};
  };

  // Forks; with `wait_ready` returns once the persister runs (false if it failed).
  // fsize_soft > 0: RLIMIT_FSIZE soft limit (bytes) before the store opens.
  bool start(Children& kids, const std::string& ns, const std::string& stream,
             const PersisterOptions& opts, uint64_t fsize_soft = 0, bool wait_ready = true) {
    pid_ = kids.spawn([&, fsize_soft] { return child_main(ns, stream, opts, fsize_soft); });
    if (pid_ <= 0) return false;
    if (!wait_ready) return true;
    Report r;
    if (!rep_.get(&r, sizeof r, 20s)) return false;
    error_ = r.last_error;
    return r.ok != 0;
  }
  pid_t pid() const { return pid_; }
  const std::string& start_error() const { return error_; }

  bool stats(Report* out) {
    drain_stale();
    const char c = 'q';
    cmd_.put(&c, 1);
    return rep_.get(out, sizeof *out, 10s);
  }
  bool raise_fsize_limit() {
    const char c = 'r';
    cmd_.put(&c, 1);
    Report r;
    return rep_.get(&r, sizeof r, 10s) && r.ok;
  }
  // Graceful stop; returns the child's exit code (0: stop() succeeded).
  int stop(Children& kids) {
    const char c = 's';
    cmd_.put(&c, 1);
    const int rc = kids.wait(pid_, 30s);
    pid_ = -1;
    return rc;
  }
  void kill9(Children& kids) {
    if (pid_ > 0) kids.kill9(pid_);
    pid_ = -1;
  }

 private:
  void drain_stale() {
    Report r;
    while (rep_.ready() && rep_.get(&r, sizeof r, 10ms)) {
    }
  }
  static void fill(Report* r, const PersisterStats& s) {
    r->records = s.records;
    r->lost = s.lost;
    r->durable_seq = s.durable_seq;
    r->disk_full_waits = s.disk_full_waits;
    std::snprintf(r->last_error, sizeof r->last_error, "%s", s.last_error.c_str());
  }
  int child_main(const std::string& ns, const std::string& stream, const PersisterOptions& opts,
                 uint64_t fsize_soft) {
    ::signal(SIGXFSZ, SIG_IGN);  // a file-size limit must come back as EFBIG
    if (fsize_soft) {
      rlimit rl;
      ::getrlimit(RLIMIT_FSIZE, &rl);
      rl.rlim_cur = fsize_soft;
      if (::setrlimit(RLIMIT_FSIZE, &rl) != 0) return 3;
    }
    auto p = Persister::start(ns, stream, opts);
    Report r;
    if (!p) {
      std::snprintf(r.last_error, sizeof r.last_error, "%s", p.error().message.c_str());
      rep_.put(&r, sizeof r);
      return 2;
    }
    r.ok = 1;
    rep_.put(&r, sizeof r);
    for (;;) {
      char c;
      if (!cmd_.get(&c, 1, 50ms)) {
        if (!p.value()->running()) return 4;
        continue;
      }
      Report q;
      if (c == 'q') {
        q.ok = 1;
        fill(&q, p.value()->stats());
        rep_.put(&q, sizeof q);
      } else if (c == 'r') {
        rlimit rl;
        ::getrlimit(RLIMIT_FSIZE, &rl);
        rl.rlim_cur = rl.rlim_max;
        q.ok = ::setrlimit(RLIMIT_FSIZE, &rl) == 0;
        rep_.put(&q, sizeof q);
      } else if (c == 's') {
        auto st = p.value()->stop();
        return st ? 0 : 5;
      }
    }
  }

  pid_t pid_ = -1;
  Pipe cmd_, rep_;
  std::string error_;
};

// ---- waiting ---------------------------------------------------------------------------

using shmbus::test::eventually;

inline uint64_t next_seq_of(const std::string& ns, const std::string& s) {
  auto i = stream_info(ns, s);
  return i ? i->next_seq : 0;
}
inline uint64_t durable_seq_of(const std::string& ns, const std::string& s) {
  auto i = stream_info(ns, s);
  return i ? i->durable_seq : 0;
}

// ---- the store ---------------------------------------------------------------------------

struct Range {
  uint64_t from, to;
  bool operator==(const Range&) const = default;
};
inline std::ostream& operator<<(std::ostream& o, const Range& r) {
  return o << "[" << r.from << ", " << r.to << ")";
}

// Everything a SegmentReader yields from the earliest entry to the end.
struct StoreScan {
  bool ok = true;
  std::string error;
  uint64_t first = 0;    // sequence of the first entry
  uint64_t end = 0;      // one past the last entry
  uint64_t entries = 0;
  uint64_t discontinuities = 0;  // an entry that does not start where the last one ended
  std::string first_discontinuity;
  std::vector<Range> lost, skipped, deleted, corrupt;  // skipped: never published (aborted or abandoned claims)
  OrderCheck order;
  uint64_t seq_not_index = 0;  // single-producer stream: record index != seq
};

// Reads the whole store (from sequence `from`, if given).  single_producer: the stream
// had one producer from seq 0, so each record's index must equal its sequence.
inline StoreScan scan_store(const std::string& root, const std::string& ns,
                            const std::string& stream, bool single_producer = false,
                            uint64_t from = 0) {
  StoreScan s;
  auto r = SegmentReader::open(root, ns, stream);
  if (r && from > 0) {
    if (auto sk = r->seek_seq(from); !sk) r = sk.error();
    s.order.from_any = true;
  }
  if (!r) {
    s.ok = false;
    s.error = r.error().message;
    return s;
  }
  bool have = false;
  for (;;) {
    auto e = r->next();
    if (!e) {
      s.ok = false;
      s.error = e.error().message;
      return s;
    }
    if (e->kind == EntryKind::kEnd) break;
    if (!have) {
      s.first = e->seq;
      have = true;
    } else if (e->seq != s.end) {
      if (s.discontinuities++ == 0)
        s.first_discontinuity = "entry at " + std::to_string(e->seq) + " after end " +
                                std::to_string(s.end);
    }
    s.end = e->end_seq;
    ++s.entries;
    switch (e->kind) {
      case EntryKind::kRecord: {
        s.order.add(e->seq, e->data);
        uint32_t p;
        uint64_t i;
        if (single_producer && check_payload(e->data, &p, &i) && i != e->seq) ++s.seq_not_index;
        break;
      }
      case EntryKind::kLost: s.lost.push_back({e->seq, e->end_seq}); break;
      case EntryKind::kSkipped: s.skipped.push_back({e->seq, e->end_seq}); break;
      case EntryKind::kDeleted: s.deleted.push_back({e->seq, e->end_seq}); break;
      case EntryKind::kCorrupt: s.corrupt.push_back({e->seq, e->end_seq}); break;
      case EntryKind::kEnd: break;
    }
  }
  return s;
}

// The store holds exactly [0, end) as records, each once, in order, intact.
inline void expect_complete(const StoreScan& s, uint64_t end) {
  ASSERT_TRUE(s.ok) << s.error;
  EXPECT_EQ(s.first, 0u);
  EXPECT_EQ(s.end, end);
  EXPECT_EQ(s.order.records, end);
  EXPECT_EQ(s.discontinuities, 0u) << s.first_discontinuity;
  EXPECT_TRUE(s.lost.empty()) << "lost " << s.lost.front();
  EXPECT_TRUE(s.deleted.empty());
  EXPECT_TRUE(s.corrupt.empty()) << "corrupt " << s.corrupt.front();
  EXPECT_EQ(s.order.bad, 0u) << s.order.first_problem;
  EXPECT_EQ(s.order.skips, 0u) << s.order.first_problem;
  EXPECT_EQ(s.seq_not_index, 0u);
}

inline StreamOptions stream_opts(uint64_t capacity) {
  StreamOptions so;
  so.capacity = capacity;
  return so;
}

// Claims `n` records of `size` bytes one after the other and aborts each: `n` gaps in the
// ring, nothing published under their numbers.
inline void abort_claims(Producer& p, int n, size_t size = 8) {
  for (int i = 0; i < n; ++i) {
    PubStatus st{};
    Claim c = p.claim(size, 0, &st);
    ASSERT_EQ(st, PubStatus::kOk) << i;
    ASSERT_EQ(c.abort(), PubStatus::kOk) << i;
  }
}

// Creates NS/s (`capacity` bytes; a consumer gone for `dead` is evicted) and returns the
// options of a --let-go persister (hold_producers off) storing it under `root`.  An empty
// data_dir when the stream could not be created (the test fails).
inline PersisterOptions let_go_stream(const std::string& ns, const std::string& root, uint64_t capacity,
                                      std::chrono::milliseconds dead) {
  StreamOptions so = stream_opts(capacity);
  so.consumer_dead_timeout = dead;
  PersisterOptions o;
  auto c = create_stream(ns, "s", so);
  EXPECT_TRUE(c) << c.error().message;
  if (c) o.data_dir = root;
  o.hold_producers = false;
  return o;
}

}  // namespace shmbus::persist::it
