// persister.cc: ring -> segment store, on a thread of its own.
//
// The thread reads the ring as the durable consumer "_persister" and appends every
// record to the SegmentStore.  Its ring position is committed only after a flush has
// made the records durable, so a crash of the persister (or the host) never loses a
// record that the ring has already let go of.  Requests from other threads (flush,
// stop) reach it through a moodycamel ConcurrentQueue.
#include "shmbus/persister.h"
#include "shmbus/detail/steady_clock.h"
#include "shmbus/detail/stream_control.h"

#include <concurrentqueue/concurrentqueue.h>
#include <spdlog/spdlog.h>

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "fs.h"
#include "log.h"
#include "settings.h"
#include "store_path.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace shmbus::persist {

namespace {

// After a failed write (disk full, file-size limit, I/O error) the next attempt waits this
// long, so that a full disk is not hammered with writes and truncations.
constexpr uint64_t kRetryNs = 100'000'000;

using shmbus::detail::steady_ns;  // shmbus/detail/steady_clock.h

// A request from another thread, answered through `done`.
struct Request {
  enum class Kind { kFlush, kStop } kind;
  std::shared_ptr<std::promise<Result<void>>> done;
  // kFlush: the ring's next sequence when flush() was called.  The answer waits until
  // the persister has read (and made durable) everything below it.
  uint64_t target = 0;
};

}  // namespace

struct Persister::Impl {
  std::string ns, stream;
  PersisterOptions opts;
  StoreOptions store_opts;
  ConsumerOptions ring_opts;
  std::optional<SegmentStore> store;
  std::optional<Consumer> ring;
  std::optional<StreamControl> ctl;
  moodycamel::ConcurrentQueue<Request> requests;
  std::thread thread;
  std::atomic<bool> running{false};

  // ---- guarded by req_mu: whether requests are still answered ----
  std::mutex req_mu;
  bool accepting = true;
  std::mutex stop_mu;  // serialises stop()

  // ---- persister thread only ----
  // Deletions accumulate across persister restarts: the header's counts when this one
  // started, to which it adds what its store has deleted since (it is the only writer).
  uint64_t base_deleted_records = 0, base_deleted_bytes = 0, base_store_errors = 0;
  uint64_t applied_deleted_below = 0;  // the header watermark the store has applied
  bool detached = false;

  // After the thread stopped: ends persistence of the stream (the group goes, the header
  // no longer names the store).
  Result<void> detach() {
    if (ring) ring->close();
    auto r = detach_persistence(ns, stream);
    if (!r) return r.error();
    detached = true;
    detail::logger().info("persister {}/{}: detached: persistence ended, producers are free", ns, stream);
    return {};
  }
  uint64_t delete_retry_ns = 0;        // after a failed deletion, not before this
  // The ring cannot reuse what is not committed, and the persister commits only what is
  // durable: make it durable early once this much of the ring waits (a quarter of it),
  // not only every flush_interval.
  uint64_t flush_after_bytes = 0;
  uint64_t uncommitted_bytes = 0;     // ring bytes read since the last commit (roughly)
  uint64_t first_uncommitted_ns = 0;  // steady time of the oldest such read; 0: none
  uint64_t published_durable = 0;     // the durable position last put in the header
  uint64_t retry_at_ns = 0;           // steady time before which no write is retried
  bool write_failing = false;         // last_error holds a write failure
  Error last_write_error{Errc::kIo, ""};
  std::string last_deletion_error;    // the last retention/delete failure logged
  std::optional<Record> pending;      // a record the store refused (its view stays valid:
                                      // the ring cannot overwrite what is not committed)

  mutable std::mutex mu;  // guards stats_ (copied out by stats())
  PersisterStats stats_;

  void run();
  void answer_flushes(std::vector<Request>* waiters, bool stopping);
  void read_records(bool stopping);
  void make_durable_if_due(bool stopping);
  Result<void> make_durable();
  Result<bool> store_record(const Record& rec);
  void note_write_error(const Error& e);
  void after_store_error(const Error& e);
  bool store_usable();
  void note_write_ok();
  void housekeeping(uint64_t* next_retention, uint64_t* next_beat);
  void publish_stats();
};

// Makes everything stored durable, then lets the ring reuse it and tells producers.
Result<void> Persister::Impl::make_durable() {
  if (auto r = store->flush(); !r) return r;
  // Durable now: every record read so far is in the store (pending is empty whenever
  // this runs), so the ring may reuse all of it.
  ring->commit();
  uncommitted_bytes = 0;
  first_uncommitted_ns = 0;
  const uint64_t d = store->durable_seq();
  if (d != published_durable || ctl->durable_seq() != d) ctl->set_durable_seq(d);
  published_durable = d;
  std::lock_guard lock(mu);
  stats_.durable_seq = d;
  return {};
}

// Returns false for a record the store already holds (read again after a restart).
Result<bool> Persister::Impl::store_record(const Record& rec) {
  const uint64_t next = store->next_seq();
  const bool empty = next == 0;  // a store that never held anything takes any sequence
  if (!empty && rec.seq < next) return false;  // stored before a restart: not twice
  if (!empty && rec.seq > next) {
    // Sequences the ring skipped (claims of dead producers) or lost while the persister
    // was away on a stream that lets producers go on: say so in the store.
    if (auto r = store->append_lost(next, rec.seq); !r) return r.error();
    // Before durable_seq passes them: a producer waiting for one of them is told it was
    // not persisted, never that it is durable.
    ctl->record_lost(next, rec.seq);
    {
      std::lock_guard lock(mu);
      stats_.lost += rec.seq - next;
    }
    detail::logger().warn("persister {}/{}: records {}..{} were not persisted (gap in the ring)", ns,
                 stream, next, rec.seq - 1);
  }
  if (auto r = store->append(rec.seq, rec.ts_ns, rec.type, rec.data); !r) return r.error();
  return true;
}

void Persister::Impl::note_write_error(const Error& e) {
  if (!write_failing)
    detail::logger().error("persister {}/{}: {} ({}; retrying)", ns, stream, e.message,
                           opts.hold_producers ? "holding producers"
                                               : "producers go on (--let-go): what the ring drops "
                                                 "meanwhile is recorded as lost");
  write_failing = true;
  last_write_error = e;
  retry_at_ns = steady_ns() + kRetryNs;
  std::lock_guard lock(mu);
  stats_.last_error = e.message;
  if (e.code == Errc::kNoSpace) stats_.disk_full_waits++;
}

// Any write or sync failure.  A store that went back to its last synced record wants the
// records after it again: they are still in the ring (nothing past the last durable
// position was committed), so the ring consumer is opened again at its last commit.  A
// store that stopped (could not go back yet) is retried by store_usable(); producers are
// held meanwhile.
void Persister::Impl::after_store_error(const Error& e) {
  note_write_error(e);
  {
    std::lock_guard lock(mu);
    stats_.store_errors++;
  }
  if (store->stopped()) {
    pending.reset();
    if (ring) ring->close();
    ring.reset();
    return;
  }
  const uint64_t resume = store->next_seq();
  const uint64_t read_to = pending ? pending->seq : ring ? ring->next_seq() : 0;
  if (ring && resume < read_to) {
    detail::logger().warn("persister {}/{}: the store went back to sequence {}: reading the ring again "
                          "from the last commit", ns, stream, resume);
    pending.reset();
    ring->close();
    ring.reset();
  }
}

// After a write or sync error: lets a stopped store try again to go back to its last
// synced record, and opens the ring consumer again at its last commit.  Producers are
// held meanwhile (nothing is committed).
bool Persister::Impl::store_usable() {
  if (store && store->stopped()) {
    if (steady_ns() < retry_at_ns) return false;
    if (auto r = store->flush(); !r && store->stopped()) {  // tries to go back again
      note_write_error(r.error());
      return false;
    }
    std::lock_guard lock(mu);
    stats_.store_recoveries++;
  }
  if (ring) return true;
  {
    // Not at once: a disk that keeps failing is not hammered with rewrites.
    if (steady_ns() < retry_at_ns) return false;
    auto c = Consumer::open(ns, stream, ring_opts);
    if (!c) {
      note_write_error(c.error());
      return false;
    }
    ring.emplace(std::move(c.value()));
    uncommitted_bytes = 0;
    first_uncommitted_ns = 0;
  }
  return true;
}

void Persister::Impl::note_write_ok() {
  if (!write_failing) return;
  write_failing = false;
  detail::logger().info("persister {}/{}: writing again", ns, stream);
  std::lock_guard lock(mu);
  stats_.last_error.clear();
}

void Persister::Impl::read_records(bool stopping) {
  const uint64_t now = steady_ns();
  if (pending && now < retry_at_ns) {
    // Short naps, so that requests (stop, flush) are answered meanwhile.
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<uint64_t>(retry_at_ns - now, 10'000'000)));
    return;
  }
  const auto poll_wait = std::min<std::chrono::nanoseconds>(
      opts.flush_interval / 2 + std::chrono::microseconds(100), std::chrono::milliseconds(50));
  uint64_t records = 0, bytes = 0;
  for (uint32_t batch = 0; batch < 4096; ++batch) {
    Record rec;
    if (pending) {
      rec = *pending;
    } else {
      ReadStatus st = ring->poll(&rec, batch == 0 && !stopping ? poll_wait : std::chrono::nanoseconds(0));
      if (st == ReadStatus::kCorrupt) {
        {
          std::lock_guard lock(mu);
          stats_.last_error = "the ring holds corrupt bytes";
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));  // no hot loop
      }
      if (st == ReadStatus::kEvicted)  // a let-go stream: the store records the range as lost
        detail::logger().warn("persister {}/{}: records {}..{} left the ring while no persister ran",
                              ns, stream, ring->last_loss().from, ring->last_loss().to - 1);
      if (st != ReadStatus::kOk) break;
    }
    auto r = store_record(rec);
    if (!r) {
      // Disk full (or another write error): keep the record, hold the ring (producers
      // feel backpressure), try again shortly.  Nothing is dropped.
      pending = rec;
      after_store_error(r.error());
      break;
    }
    if (pending) {
      pending.reset();
      note_write_ok();
    }
    // Stored now, or stored before: either way the ring position moves past it and
    // must be committed within flush_interval.
    uncommitted_bytes += rec.data.size() + 64;  // payload + ring header and padding, at most
    if (first_uncommitted_ns == 0) first_uncommitted_ns = steady_ns();
    if (r.value()) {
      ++records;
      bytes += rec.data.size();
    }
  }
  if (records) {
    std::lock_guard lock(mu);
    stats_.records += records;
    stats_.bytes += bytes;
  }
}

void Persister::Impl::make_durable_if_due(bool stopping) {
  if (pending) return;  // a refused record waits: the ring must not move past it
  const uint64_t now = steady_ns();
  if (!stopping && now < retry_at_ns) return;
  // The store flushes by itself when it rolls a segment: publish that at once too.
  const bool behind = store->durable_seq() != published_durable;
  const bool waiting = first_uncommitted_ns != 0;
  const bool due = stopping || behind ||
                   (waiting && (opts.durability == Durability::kSync ||
                                uncommitted_bytes >= flush_after_bytes ||
                                now - first_uncommitted_ns >=
                                    static_cast<uint64_t>(opts.flush_interval.count())));
  if (!due) return;
  if (auto r = make_durable(); !r) after_store_error(r.error());
  else note_write_ok();
}

void Persister::Impl::publish_stats() {
  StoreStats s = store->stats();
  {
    std::lock_guard lock(mu);
    stats_.store = s;
    stats_.durable_seq = store->durable_seq();
  }
  const uint32_t gran = granularity_code(s.granularity);
  uint64_t errors;
  {
    std::lock_guard lock(mu);
    errors = base_store_errors + stats_.store_errors;
  }
  ctl->set_store_stats(s.bytes_on_disk, s.segments, base_deleted_records + s.deleted_records,
                       base_deleted_bytes + s.deleted_bytes, gran,
                       static_cast<uint32_t>(std::min<uint64_t>(errors, UINT32_MAX)));
}

void Persister::Impl::housekeeping(uint64_t* next_retention, uint64_t* next_beat) {
  const uint64_t now = now_ns();
  std::string failed;
  bool attempted = false;  // a deletion or a retention pass ran
  // Deletion asked for through the header's watermark (`shmbus delete`, which waits until
  // the store has it durably): applied at once, not at the next retention pass.  The
  // header's watermark may lie above what the store holds yet (records still in the
  // ring): the store's follows as far as it can and catches up later.
  const uint64_t wm = std::min(ctl->deleted_below(), store->next_seq());
  if (wm > applied_deleted_below && now >= delete_retry_ns) {
    attempted = true;
    if (auto d = store->delete_before(wm); d) {
      applied_deleted_below = wm;
      detail::logger().info("persister {}/{}: deleted below {} ({} segments, {} bytes)", ns, stream, wm,
                            d->segments, d->bytes);
      ctl->set_oldest_persisted_seq(store->stats().oldest_seq);
    } else {
      failed = d.error().message;
      delete_retry_ns = now + kRetryNs;
    }
  }
  // Retention.
  if (now >= *next_retention) {
    *next_retention = now + static_cast<uint64_t>(opts.retention_every.count());
    attempted = true;
    if (opts.retention_age.count() > 0 || opts.retention_bytes > 0) {
      auto d = store->apply_retention(opts.retention_age, opts.retention_bytes, now);
      if (d && d->segments)
        detail::logger().info("persister {}/{}: retention deleted {} segments ({} records, {} bytes)", ns, stream,
                     d->segments, d->records, d->bytes);
      if (!d) failed = d.error().message;
    }
    ctl->set_oldest_persisted_seq(store->stats().oldest_seq);
  }
  // Said once per distinct failure (deletion is retried every 100 ms, retention every second).
  if (attempted && failed != last_deletion_error) {
    if (!failed.empty())
      detail::logger().error("persister {}/{}: deletion failed: {}", ns, stream, failed);
    last_deletion_error = failed;
  }
  if (now >= *next_beat) {
    *next_beat = now + 100'000'000;
    ctl->beat();
    publish_stats();
  }
}

// Answers the flush requests whose records have all been read: once they are durable,
// or with the write error that keeps them from it.  Requests for records not read yet
// stay (the loop goes on reading).
void Persister::Impl::answer_flushes(std::vector<Request>* waiters, bool stopping) {
  if (waiters->empty() || !ring) return;  // (opened again before the next try)
  Result<void> r;
  if (pending) {
    r = make_error(last_write_error.code, "records wait to be stored: " + last_write_error.message);
  } else {
    const uint64_t read_to = ring->next_seq();
    const bool any_ready = std::any_of(waiters->begin(), waiters->end(),
                                       [&](const Request& q) { return q.target <= read_to; });
    if (!any_ready && !stopping) return;
    r = make_durable();
    if (!r) after_store_error(r.error());
    else note_write_ok();
    if (r && stopping) {
      // Stopping: whatever was not read by now will not be by this persister.
      for (auto& q : *waiters)
        q.done->set_value(q.target <= read_to ? Result<void>()
                                               : make_error(Errc::kClosed, "persister stopped before "
                                                            "it read every record published before the flush"));
      waiters->clear();
      return;
    }
    if (r) {
      auto it = std::partition(waiters->begin(), waiters->end(),
                               [&](const Request& q) { return q.target > read_to; });
      for (auto j = it; j != waiters->end(); ++j) j->done->set_value(Result<void>());
      waiters->erase(it, waiters->end());
      return;
    }
  }
  for (auto& q : *waiters) q.done->set_value(r);
  waiters->clear();
}

void Persister::Impl::run() {
  uint64_t next_retention = 0, next_beat = 0;
  bool stopping = false;
  std::vector<Request> stop_waiters, flush_waiters;
  while (!stopping) {
    Request req;
    while (requests.try_dequeue(req)) {
      if (req.kind == Request::Kind::kStop) {
        stopping = true;
        stop_waiters.push_back(req);
        continue;
      }
      flush_waiters.push_back(req);
    }
    if (!store_usable()) {
      // The store stopped after an I/O error: answer flushes with it, hold producers,
      // try again shortly.
      if (store->stopped()) {
        for (auto& q : flush_waiters) q.done->set_value(last_write_error);
        flush_waiters.clear();
      }
      if (!stopping) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    read_records(stopping);
    answer_flushes(&flush_waiters, stopping);
    if (!ring) continue;
    make_durable_if_due(stopping);
    housekeeping(&next_retention, &next_beat);
  }
  // The last loop made everything read durable, unless writing failed.
  Result<void> final_flush;
  if (pending)
    final_flush = make_error(Errc::kNoSpace, "records wait to be stored (they stay in the ring): " +
                                                 last_write_error.message);
  else if (write_failing)
    final_flush = last_write_error;
  if (!ring) final_flush = last_write_error;
  publish_stats();
  Result<void> closed = store->close();
  if (ring) ring->close();
  if (final_flush && !closed) final_flush = closed;
  running = false;
  {
    std::lock_guard lock(req_mu);
    accepting = false;
  }
  for (auto& w : stop_waiters) w.done->set_value(final_flush);
  // Flushes still waiting for records to be read (the ring was being opened again).
  for (auto& w : flush_waiters)
    w.done->set_value(final_flush ? Result<void>(make_error(Errc::kClosed, "persister stopped"))
                                  : final_flush);
  Request req;
  while (requests.try_dequeue(req)) req.done->set_value(make_error(Errc::kClosed, "persister stopped"));
}

Persister::Persister(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Persister::~Persister() { (void)stop(); }

// A stream whose header names a store in another data dir: changing --data-dir must
// not silently orphan the old segments (and drop "durable below" to 0).
static Result<void> follow_recorded_store(const StreamControl& ctl, const PersisterOptions& opts,
                                   std::string_view ns, std::string_view stream) {
  auto ps = ctl.persist();
  if (!ps) return {};
  auto want = store_dir_for(opts.data_dir, ns, stream);
  if (!want) return want.error();
  struct stat st;
  const bool old_exists = ::lstat(ps->store_dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  if (!old_exists || detail::same_dir(ps->store_dir, want.value())) return {};
  // A running persister is the first thing to say (whatever its data dir).
  if (auto info = stream_info(ns, stream); info)
    for (const auto& c : info->consumers)
      if (c.name == kPersisterGroup && c.alive)
        return make_error(Errc::kBusy, "stream '" + std::string(stream) + "' already has a persister (pid " +
                                           std::to_string(c.pid) + ") writing " + ps->store_dir);
  switch (opts.store_moved) {
    case PersisterOptions::StoreMoved::kNew:
      detail::logger().warn("persister {}/{}: a new store in {}; the old one stays in {}", ns, stream,
                            want.value(), ps->store_dir);
      return {};
    case PersisterOptions::StoreMoved::kMove: {
      // The old place must be a store directory of this stream, and not in use.
      auto old_root = detail::store_root_of(ps->store_dir, ns, stream);
      if (!old_root)
        return make_error(Errc::kInvalidArgument, "--move-store: the recorded store '" + ps->store_dir +
                                                      "' does not end in /" + std::string(ns) + "/" +
                                                      std::string(stream));
      if (::lstat(want->c_str(), &st) == 0)
        return make_error(Errc::kExists, "--move-store: " + want.value() + " already exists");
      {
        auto old = SegmentStore::open(*old_root, ns, stream);  // its lock, and its recovery
        if (!old) return old.error();
        // The new parent (DATA_DIR/NS), created and checked like any store's.
        const std::string parts[] = {std::string(ns)};
        auto parent = detail::open_dir_path(opts.data_dir, parts, /*create=*/true, detail::Use::kWrite);
        if (!parent) return parent.error();
        if (::rename(ps->store_dir.c_str(), want->c_str()) != 0)
          return make_error(Errc::kIo, "--move-store: cannot move " + ps->store_dir + " to " +
                                           want.value() + ": " + std::strerror(errno) +
                                           (errno == EXDEV ? " (another file system: copy it, then "
                                                             "use --new-store)" : ""));
        (void)detail::sync_all(parent->get(), "'" + opts.data_dir + "/" + std::string(ns) + "'");
      }
      detail::logger().info("persister {}/{}: moved the store {} to {}", ns, stream, ps->store_dir,
                            want.value());
      return {};
    }
    case PersisterOptions::StoreMoved::kRefuse: break;
  }
  return make_error(Errc::kInvalidArgument,
                    "stream '" + std::string(ns) + "/" + std::string(stream) + "' is stored in " +
                        ps->store_dir + ", not in " + want.value() + ": use that data dir, or "
                        "--move-store (moves the store here) or --new-store (a new one here; the old "
                        "one stays)");
}

Result<std::unique_ptr<Persister>> Persister::start(std::string_view ns, std::string_view stream,
                                                    const PersisterOptions& opts_in) {
  auto impl = std::make_unique<Impl>();
  impl->ns = ns;
  impl->stream = stream;
  impl->opts = opts_in;
  auto data_dir = resolve_data_dir(opts_in.data_dir);
  if (!data_dir) return data_dir.error();
  impl->opts.data_dir = std::move(data_dir.value());
  if (impl->opts.flush_interval.count() < 0 || impl->opts.retention_every.count() < 0)
    return make_error(Errc::kInvalidArgument, "flush_interval and retention_every cannot be negative");
  auto ctl = StreamControl::open(ns, stream);
  if (!ctl) return ctl.error();
  impl->ctl.emplace(std::move(ctl.value()));
  if (auto r = follow_recorded_store(*impl->ctl, impl->opts, ns, stream); !r) return r.error();

  StoreOptions so;
  so.kind = impl->opts.kind;
  so.segment_bytes = impl->opts.segment_bytes;
  so.roll_age = impl->opts.roll_age;
  // The persister decides when to flush (it must commit the ring right after): the store
  // never flushes by itself inside append().
  so.durability = Durability::kAsync;
  so.flush_interval = std::chrono::hours(24 * 365);
  so.secure_delete = impl->opts.secure_delete;
  impl->store_opts = so;
  auto store = SegmentStore::open(impl->opts.data_dir, ns, stream, so);
  if (!store) return store.error();
  impl->store.emplace(std::move(store.value()));
  const std::string store_dir = impl->opts.data_dir + "/" + std::string(ns) + "/" + std::string(stream);

  // A store that goes further than the ring ever did belongs to an earlier stream of the
  // same name: appending would skip every record up to its end without a word.
  auto info = stream_info(ns, stream);
  if (!info) return info.error();
  impl->base_deleted_records = info->deleted_records;
  impl->base_deleted_bytes = info->deleted_bytes;
  impl->base_store_errors = info->store_errors;
  if (impl->store->next_seq() > info->next_seq)
    return make_error(Errc::kIncompatible,
                      "the store in " + store_dir + " ends at sequence " +
                          std::to_string(impl->store->next_seq()) + " but stream '" +
                          std::string(stream) + "' has only reached " +
                          std::to_string(info->next_seq) +
                          ": it holds an earlier stream of the same name; move it away first");
  impl->flush_after_bytes = info->capacity / 4;
  // set_persist() comes after the consumer group is taken (below) and must not fail
  // then: a new group left behind would hold producers for a persister that never ran.
  if (store_dir.size() > 2048)
    return make_error(Errc::kInvalidArgument, "the store directory " + store_dir +
                                                  " is longer than the 2048 bytes a stream header holds");

  ConsumerOptions co;
  co.group = kPersisterGroup;
  co.persister = true;
  co.auto_commit = false;
  co.wait = WaitStrategy::kBlock;
  impl->ring_opts = co;
  // A restarted persister continues at its last commit; a new one at the oldest record
  // the ring still has, or after what the store already holds.
  auto ring = Consumer::open(ns, stream, co);
  if (!ring) {
    if (ring.error().code == Errc::kBusy)
      return make_error(Errc::kBusy, "stream '" + std::string(stream) +
                                         "' already has a persister: " + ring.error().message);
    return ring.error();
  }
  impl->ring.emplace(std::move(ring.value()));
  // The settings only once the consumer group is ours: a second persister (even with
  // another data directory) gets kBusy above and leaves the header alone.
  PersistSettings ps;
  ps.store_dir = store_dir;
  ps.store_kind = impl->opts.kind;
  ps.hold_producers = impl->opts.hold_producers;
  ps.sync = impl->opts.durability == Durability::kSync;
  ps.flush_interval = impl->opts.flush_interval;
  ps.retention_age = impl->opts.retention_age;
  ps.retention_bytes = impl->opts.retention_bytes;
  ps.segment_bytes = impl->opts.segment_bytes;
  ps.secure_delete = impl->opts.secure_delete;
  if (auto r = impl->ctl->set_persist(ps); !r) return r.error();
  // Beside the store too: a ring re-created over it (after a reboot) gets them back.
  {
    const std::string parts[] = {std::string(ns), std::string(stream)};
    auto dir = detail::open_dir_path(impl->opts.data_dir, parts, /*create=*/false, detail::Use::kWrite);
    if (auto r = dir ? detail::write_settings(dir->get(), ps) : Result<void>(dir.error()); !r)
      detail::logger().warn("persister {}/{}: cannot record its settings beside the store: {}", ns, stream,
                            r.error().message);
  }
  impl->published_durable = std::max(impl->store->durable_seq(), impl->ctl->durable_seq());
  impl->ctl->set_durable_seq(impl->published_durable);
  impl->publish_stats();
  detail::logger().info("persister {}/{}: started ({} store in {}, next seq {})", ns, stream,
               store_kind_name(impl->opts.kind), ps.store_dir, impl->store->next_seq());
  impl->running = true;
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->run(); });
  return std::unique_ptr<Persister>(new Persister(std::move(impl)));
}

Result<void> Persister::flush(std::chrono::nanoseconds timeout) {
  if (!impl_) return make_error(Errc::kClosed, "persister is not running");
  // Everything published before this call lies below the ring's next sequence now.
  auto info = stream_info(impl_->ns, impl_->stream);
  if (!info) return info.error();
  auto done = std::make_shared<std::promise<Result<void>>>();
  auto fut = done->get_future();
  {
    // Under req_mu: a request queued while the thread still accepts is always answered.
    std::lock_guard lock(impl_->req_mu);
    if (!impl_->accepting || !impl_->running) return make_error(Errc::kClosed, "persister is not running");
    impl_->requests.enqueue(Request{Request::Kind::kFlush, done, info->next_seq});
  }
  if (fut.wait_for(timeout) != std::future_status::ready)
    return make_error(Errc::kTimeout, "persister flush timed out");
  return fut.get();
}

Result<void> Persister::stop() { return stop(impl_ && impl_->opts.detach_on_stop); }

Result<void> Persister::stop(bool detach) {
  if (!impl_) return {};
  std::lock_guard stop_lock(impl_->stop_mu);
  if (!impl_->thread.joinable()) {
    if (detach && !impl_->detached) return impl_->detach();
    return {};
  }
  auto done = std::make_shared<std::promise<Result<void>>>();
  auto fut = done->get_future();
  {
    std::lock_guard lock(impl_->req_mu);
    impl_->requests.enqueue(Request{Request::Kind::kStop, done});
  }
  impl_->thread.join();
  auto r = fut.get();
  detail::logger().info("persister {}/{}: stopped", impl_->ns, impl_->stream);
  if (detach) {
    if (auto d = impl_->detach(); !d && r.ok()) return d;
  }
  return r;
}

bool Persister::running() const noexcept { return impl_ && impl_->running; }

PersisterStats Persister::stats() const {
  std::lock_guard lock(impl_->mu);
  return impl_->stats_;
}

}  // namespace shmbus::persist
