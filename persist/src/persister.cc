// persister.cc: ring -> segment store, on a thread of its own.
//
// The thread reads the ring as the durable consumer "_persister" and appends every
// record to the SegmentStore.  Its ring position is committed only after a flush has
// made the records durable, so a crash of the persister (or the host) never loses a
// record that the ring has already let go of.  Requests from other threads (flush,
// stop) reach it through a moodycamel ConcurrentQueue.
#include "shmbus/persister.h"

#include <concurrentqueue/concurrentqueue.h>
#include <spdlog/spdlog.h>

#include "log.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace shmbus::persist {

std::string resolve_data_dir(std::string_view flag) {
  if (!flag.empty()) return std::string(flag);
  if (const char* env = std::getenv("SHMBUS_DATA_DIR"); env && *env) return env;
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.local/share/shmbus";
}

namespace {

// After a failed write (disk full, file-size limit, I/O error) the next attempt waits this
// long, so that a full disk is not hammered with writes and truncations.
constexpr uint64_t kRetryNs = 100'000'000;

uint64_t steady_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// A request from another thread, answered through `done`.
struct Request {
  enum class Kind { kFlush, kStop } kind;
  std::shared_ptr<std::promise<Result<void>>> done;
};

}  // namespace

struct Persister::Impl {
  std::string ns, stream;
  PersisterOptions opts;
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
  uint64_t base_deleted_records = 0, base_deleted_bytes = 0;
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
  std::optional<Record> pending;      // a record the store refused (its view stays valid:
                                      // the ring cannot overwrite what is not committed)

  mutable std::mutex mu;  // guards stats_ (copied out by stats())
  PersisterStats stats_;

  void run();
  void read_records(bool stopping);
  void make_durable_if_due(bool stopping);
  Result<void> make_durable();
  Result<bool> store_record(const Record& rec);
  void note_write_error(const Error& e);
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
    detail::logger().error("persister {}/{}: {} (holding producers; retrying)", ns, stream, e.message);
  write_failing = true;
  last_write_error = e;
  retry_at_ns = steady_ns() + kRetryNs;
  std::lock_guard lock(mu);
  stats_.last_error = e.message;
  if (e.code == Errc::kNoSpace) stats_.disk_full_waits++;
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
      if (st != ReadStatus::kOk) break;
    }
    auto r = store_record(rec);
    if (!r) {
      // Disk full (or another write error): keep the record, hold the ring (producers
      // feel backpressure), try again shortly.  Nothing is dropped.
      note_write_error(r.error());
      pending = rec;
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
  if (auto r = make_durable(); !r) note_write_error(r.error());
  else note_write_ok();
}

void Persister::Impl::publish_stats() {
  StoreStats s = store->stats();
  {
    std::lock_guard lock(mu);
    stats_.store = s;
    stats_.durable_seq = store->durable_seq();
  }
  const uint32_t gran = s.granularity == PmemGranularity::kByte        ? 1
                        : s.granularity == PmemGranularity::kCacheLine ? 2
                        : s.granularity == PmemGranularity::kPage      ? 3
                                                                       : 0;
  ctl->set_store_stats(s.bytes_on_disk, s.segments, base_deleted_records + s.deleted_records,
                       base_deleted_bytes + s.deleted_bytes, gran);
}

void Persister::Impl::housekeeping(uint64_t* next_retention, uint64_t* next_beat) {
  // Deletion: the watermark set by `shmbus delete`, then retention.
  const uint64_t now = now_ns();
  if (now >= *next_retention) {
    *next_retention = now + static_cast<uint64_t>(opts.retention_every.count());
    const uint64_t wm = ctl->deleted_below();
    if (wm > store->stats().deleted_below) {
      if (auto d = store->delete_before(wm); d)
        detail::logger().info("persister {}/{}: deleted below {} ({} segments, {} bytes)", ns, stream, wm,
                     d->segments, d->bytes);
    }
    if (opts.retention_age.count() > 0 || opts.retention_bytes > 0) {
      if (auto d = store->apply_retention(opts.retention_age, opts.retention_bytes, now); d && d->segments)
        detail::logger().info("persister {}/{}: retention deleted {} segments ({} records, {} bytes)", ns, stream,
                     d->segments, d->records, d->bytes);
    }
    ctl->set_oldest_persisted_seq(store->stats().oldest_seq);
  }
  if (now >= *next_beat) {
    *next_beat = now + 100'000'000;
    ctl->beat();
    publish_stats();
  }
}

void Persister::Impl::run() {
  uint64_t next_retention = 0, next_beat = 0;
  bool stopping = false;
  std::vector<Request> stop_waiters;
  while (!stopping) {
    Request req;
    while (requests.try_dequeue(req)) {
      if (req.kind == Request::Kind::kStop) {
        stopping = true;
        stop_waiters.push_back(req);
        continue;
      }
      Result<void> r;
      // What was published before the flush was asked for is read first (else a flush
      // that overtakes the reader answers with less than the caller published).
      read_records(true);
      if (pending) {
        r = make_error(last_write_error.code, "records wait to be stored: " + last_write_error.message);
      } else {
        r = make_durable();
        if (!r) note_write_error(r.error());
        else note_write_ok();
      }
      req.done->set_value(r);
    }
    read_records(stopping);
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
  publish_stats();
  ring->close();
  auto closed = store->close();
  if (final_flush && !closed) final_flush = closed;
  running = false;
  {
    std::lock_guard lock(req_mu);
    accepting = false;
  }
  for (auto& w : stop_waiters) w.done->set_value(final_flush);
  Request req;
  while (requests.try_dequeue(req)) req.done->set_value(make_error(Errc::kClosed, "persister stopped"));
}

Persister::Persister(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Persister::~Persister() { (void)stop(); }

Result<std::unique_ptr<Persister>> Persister::start(std::string_view ns, std::string_view stream,
                                                    const PersisterOptions& opts_in) {
  auto impl = std::make_unique<Impl>();
  impl->ns = ns;
  impl->stream = stream;
  impl->opts = opts_in;
  impl->opts.data_dir = resolve_data_dir(opts_in.data_dir);
  if (impl->opts.data_dir.empty() || impl->opts.data_dir[0] != '/') {
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) return make_error(Errc::kIo, "cannot resolve the data directory");
    impl->opts.data_dir = std::string(cwd) + "/" + impl->opts.data_dir;
  }
  if (impl->opts.flush_interval.count() < 0 || impl->opts.retention_every.count() < 0)
    return make_error(Errc::kInvalidArgument, "flush_interval and retention_every cannot be negative");
  auto ctl = StreamControl::open(ns, stream);
  if (!ctl) return ctl.error();
  impl->ctl.emplace(std::move(ctl.value()));

  StoreOptions so;
  so.kind = impl->opts.kind;
  so.segment_bytes = impl->opts.segment_bytes;
  so.roll_age = impl->opts.roll_age;
  // The persister decides when to flush (it must commit the ring right after): the store
  // never flushes by itself inside append().
  so.durability = Durability::kAsync;
  so.flush_interval = std::chrono::hours(24 * 365);
  so.secure_delete = impl->opts.secure_delete;
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
  ps.store_kind = store_kind_name(impl->opts.kind);
  ps.hold_producers = impl->opts.hold_producers;
  ps.sync = impl->opts.durability == Durability::kSync;
  ps.flush_interval = impl->opts.flush_interval;
  ps.retention_age = impl->opts.retention_age;
  ps.retention_bytes = impl->opts.retention_bytes;
  ps.segment_bytes = impl->opts.segment_bytes;
  if (auto r = impl->ctl->set_persist(ps); !r) return r.error();
  if (impl->ring->lost() > 0)
    detail::logger().warn("persister {}/{}: {} records left the ring while no persister ran", ns, stream,
                 impl->ring->lost());
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
  auto done = std::make_shared<std::promise<Result<void>>>();
  auto fut = done->get_future();
  {
    // Under req_mu: a request queued while the thread still accepts is always answered.
    std::lock_guard lock(impl_->req_mu);
    if (!impl_->accepting || !impl_->running) return make_error(Errc::kClosed, "persister is not running");
    impl_->requests.enqueue(Request{Request::Kind::kFlush, done});
  }
  if (fut.wait_for(timeout) != std::future_status::ready)
    return make_error(Errc::kTimeout, "persister flush timed out");
  return fut.get();
}

Result<void> Persister::stop() {
  if (!impl_) return {};
  std::lock_guard stop_lock(impl_->stop_mu);
  if (!impl_->thread.joinable()) return {};
  auto done = std::make_shared<std::promise<Result<void>>>();
  auto fut = done->get_future();
  {
    std::lock_guard lock(impl_->req_mu);
    impl_->requests.enqueue(Request{Request::Kind::kStop, done});
  }
  impl_->thread.join();
  auto r = fut.get();
  detail::logger().info("persister {}/{}: stopped", impl_->ns, impl_->stream);
  return r;
}

bool Persister::running() const noexcept { return impl_ && impl_->running; }

PersisterStats Persister::stats() const {
  std::lock_guard lock(impl_->mu);
  return impl_->stats_;
}

}  // namespace shmbus::persist
