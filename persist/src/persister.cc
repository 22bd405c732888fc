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

#include <condition_variable>
#include <future>
#include <cstdlib>
#include <mutex>
#include <thread>

namespace shmbus::persist {

std::string resolve_data_dir(std::string_view flag) {
  if (!flag.empty()) return std::string(flag);
  if (const char* env = std::getenv("SHMBUS_DATA_DIR"); env && *env) return env;
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.local/share/shmbus";
}

namespace {

constexpr const char* kPersisterGroup = "_persister";

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

  uint64_t published_deleted_records = 0, published_deleted_bytes = 0;  // persister thread
  // The ring cannot reuse what is not yet durable: flush early once this much of it is
  // waiting (a quarter of the ring), not only every flush_interval.
  uint64_t flush_after_bytes = 0;
  uint64_t unflushed_bytes = 0;

  mutable std::mutex mu;  // guards stats_ (copied out by stats())
  PersisterStats stats_;

  void run();
  Result<void> make_durable();
  Result<void> store_record(const Record& rec);
  void publish_stats();
};

Result<void> Persister::Impl::make_durable() {
  const uint64_t before = store->durable_seq();
  if (auto r = store->flush(); !r) return r;
  unflushed_bytes = 0;
  // Durable now: the ring may reuse what we read, and producers may stop waiting.
  ring->commit();
  if (store->durable_seq() != before || ctl->durable_seq() != store->durable_seq())
    ctl->set_durable_seq(store->durable_seq());
  return {};
}

Result<void> Persister::Impl::store_record(const Record& rec) {
  const uint64_t next = store->next_seq();
  const bool empty = store->stats().end_seq == store->stats().oldest_seq && next == 0;
  if (!empty && rec.seq < next) return {};  // stored before a restart: not twice
  if (!empty && rec.seq > next) {
    // Sequences the ring skipped (claims of dead producers) or lost while the persister
    // was away on a stream that lets producers go on: say so in the store.
    if (auto r = store->append_lost(next, rec.seq); !r) return r;
    std::lock_guard lock(mu);
    stats_.lost += rec.seq - next;
    spdlog::warn("persister {}/{}: records {}..{} were not persisted (gap in the ring)", ns,
                 stream, next, rec.seq - 1);
  }
  return store->append(rec.seq, rec.ts_ns, rec.type, rec.data);
}

void Persister::Impl::publish_stats() {
  StoreStats s = store->stats();
  {
    std::lock_guard lock(mu);
    stats_.store = s;
    stats_.durable_seq = store->durable_seq();
  }
  // Deletions accumulate across persister restarts: add what this run did since the
  // last publication to what the header already says.
  auto info = stream_info(ns, stream);
  const uint64_t base_records = info ? info->deleted_records : 0;
  const uint64_t base_bytes = info ? info->deleted_bytes : 0;
  const uint32_t gran = s.granularity == PmemGranularity::kByte        ? 1
                        : s.granularity == PmemGranularity::kCacheLine ? 2
                        : s.granularity == PmemGranularity::kPage      ? 3
                                                                       : 0;
  ctl->set_store_stats(s.bytes_on_disk, s.segments,
                       base_records + (s.deleted_records - published_deleted_records),
                       base_bytes + (s.deleted_bytes - published_deleted_bytes), gran);
  published_deleted_records = s.deleted_records;
  published_deleted_bytes = s.deleted_bytes;
}

void Persister::Impl::run() {
  const auto poll_wait = std::min<std::chrono::nanoseconds>(opts.flush_interval / 2 + std::chrono::microseconds(100),
                                                            std::chrono::milliseconds(50));
  uint64_t next_retention = 0, next_beat = 0;
  std::optional<Record> pending;  // a record the store refused for lack of space
  bool stopping = false;
  std::vector<Request> stop_waiters;
  while (!stopping) {
    // 1. requests
    Request req;
    while (requests.try_dequeue(req)) {
      if (req.kind == Request::Kind::kStop) {
        stopping = true;
        stop_waiters.push_back(req);
      } else {
        req.done->set_value(pending ? Result<void>(make_error(Errc::kNoSpace, "store is full")) : make_durable());
      }
    }
    // 2. records
    uint32_t batch = 0;
    while (batch < 4096) {
      Record rec;
      if (pending) {
        rec = *pending;
      } else {
        ReadStatus st = ring->poll(&rec, batch == 0 && !stopping ? poll_wait : std::chrono::nanoseconds(0));
        if (st != ReadStatus::kOk) {
          if (st == ReadStatus::kCorrupt) {
            std::lock_guard lock(mu);
            stats_.last_error = "the ring holds corrupt bytes";
          }
          break;
        }
      }
      auto r = store_record(rec);
      if (!r) {
        // Disk full (or another write error): keep the record, hold the ring (producers
        // feel backpressure), try again shortly.  Nothing is dropped.
        if (!pending) {
          spdlog::error("persister {}/{}: {} (holding producers; retrying)", ns, stream, r.error().message);
        }
        {
          std::lock_guard lock(mu);
          stats_.last_error = r.error().message;
          stats_.disk_full_waits++;
        }
        // The view points into the ring, which cannot move on while uncommitted.
        pending = rec;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        break;
      }
      if (pending) {
        spdlog::info("persister {}/{}: writing again", ns, stream);
        std::lock_guard lock(mu);
        stats_.last_error.clear();
      }
      pending.reset();
      unflushed_bytes += rec.data.size() + 64;  // payload + ring header and padding, roughly
      std::lock_guard lock(mu);
      stats_.records++;
      stats_.bytes += rec.data.size();
      ++batch;
    }
    // 3. durability
    if (!pending) {
      Result<void> r;
      if (opts.durability == Durability::kSync || stopping || unflushed_bytes >= flush_after_bytes) {
        r = make_durable();
      } else {
        const uint64_t before = store->durable_seq();
        r = store->tick();
        if (r && store->durable_seq() != before) {
          unflushed_bytes = 0;
          ring->commit();
          ctl->set_durable_seq(store->durable_seq());
        }
      }
      if (!r) {
        std::lock_guard lock(mu);
        stats_.last_error = r.error().message;
      }
    }
    // 4. deletion: the watermark set by `shmbus delete`, then retention
    const uint64_t now = now_ns();
    if (now >= next_retention) {
      next_retention = now + static_cast<uint64_t>(opts.retention_every.count());
      const uint64_t wm = ctl->deleted_below();
      if (wm > store->stats().deleted_below) {
        if (auto d = store->delete_before(wm); d)
          spdlog::info("persister {}/{}: deleted below {} ({} segments, {} bytes)", ns, stream, wm,
                       d->segments, d->bytes);
      }
      if (opts.retention_age.count() > 0 || opts.retention_bytes > 0) {
        if (auto d = store->apply_retention(opts.retention_age, opts.retention_bytes, now); d && d->segments)
          spdlog::info("persister {}/{}: retention deleted {} segments ({} records, {} bytes)", ns, stream,
                       d->segments, d->records, d->bytes);
      }
      ctl->set_oldest_persisted_seq(store->stats().oldest_seq);
    }
    if (now >= next_beat) {
      next_beat = now + 100'000'000;
      ctl->beat();
      publish_stats();
    }
  }
  Result<void> final_flush = pending ? Result<void>(make_error(Errc::kNoSpace, "store is full: "
                                                             "unstored records stay in the ring"))
                                     : make_durable();
  publish_stats();
  ring->close();
  auto closed = store->close();
  if (final_flush && !closed) final_flush = closed;
  running = false;
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
  auto ctl = StreamControl::open(ns, stream);
  if (!ctl) return ctl.error();
  impl->ctl.emplace(std::move(ctl.value()));

  StoreOptions so;
  so.kind = impl->opts.kind;
  so.segment_bytes = impl->opts.segment_bytes;
  so.roll_age = impl->opts.roll_age;
  so.durability = Durability::kAsync;  // the persister decides when to flush
  so.flush_interval = impl->opts.flush_interval;
  so.secure_delete = impl->opts.secure_delete;
  auto store = SegmentStore::open(impl->opts.data_dir, ns, stream, so);
  if (!store) return store.error();
  impl->store.emplace(std::move(store.value()));

  PersistSettings ps;
  ps.store_dir = impl->opts.data_dir + "/" + std::string(ns) + "/" + std::string(stream);
  ps.store_kind = store_kind_name(impl->opts.kind);
  ps.hold_producers = impl->opts.hold_producers;
  ps.sync = impl->opts.durability == Durability::kSync;
  ps.flush_interval = impl->opts.flush_interval;
  ps.retention_age = impl->opts.retention_age;
  ps.retention_bytes = impl->opts.retention_bytes;
  ps.segment_bytes = impl->opts.segment_bytes;
  if (auto r = impl->ctl->set_persist(ps); !r) return r.error();

  ConsumerOptions co;
  co.group = kPersisterGroup;
  co.persister = true;
  co.auto_commit = false;
  co.wait = WaitStrategy::kBlock;
  // A restarted persister continues at its last commit; a new one at the oldest record
  // the ring still has, or after what the store already holds.
  auto ring = Consumer::open(ns, stream, co);
  if (!ring) return ring.error();
  impl->ring.emplace(std::move(ring.value()));
  if (auto info = stream_info(ns, stream); info) impl->flush_after_bytes = info->capacity / 4;
  if (impl->ring->lost() > 0)
    spdlog::warn("persister {}/{}: {} records left the ring while no persister ran", ns, stream,
                 impl->ring->lost());
  impl->ctl->set_durable_seq(std::max(impl->store->durable_seq(), impl->ctl->durable_seq()));
  impl->publish_stats();
  spdlog::info("persister {}/{}: started ({} store in {}, next seq {})", ns, stream,
               store_kind_name(impl->opts.kind), ps.store_dir, impl->store->next_seq());
  impl->running = true;
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->run(); });
  return std::unique_ptr<Persister>(new Persister(std::move(impl)));
}

Result<void> Persister::flush(std::chrono::nanoseconds timeout) {
  if (!impl_ || !impl_->running) return make_error(Errc::kClosed, "persister is not running");
  auto done = std::make_shared<std::promise<Result<void>>>();
  auto fut = done->get_future();
  impl_->requests.enqueue(Request{Request::Kind::kFlush, done});
  if (fut.wait_for(timeout) != std::future_status::ready)
    return make_error(Errc::kTimeout, "persister flush timed out");
  return fut.get();
}

Result<void> Persister::stop() {
  if (!impl_ || !impl_->thread.joinable()) return {};
  auto done = std::make_shared<std::promise<Result<void>>>();
  auto fut = done->get_future();
  impl_->requests.enqueue(Request{Request::Kind::kStop, done});
  impl_->thread.join();
  auto r = fut.get();
  spdlog::info("persister {}/{}: stopped", impl_->ns, impl_->stream);
  return r;
}

bool Persister::running() const noexcept { return impl_ && impl_->running; }

PersisterStats Persister::stats() const {
  std::lock_guard lock(impl_->mu);
  return impl_->stats_;
}

}  // namespace shmbus::persist
