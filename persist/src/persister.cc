// persister.cc: starting a Persister (settings, following a recorded store) and the
// calls other threads make on it (flush, stop, stats); the thread itself is in
// persister_loop.cc, the shared state in persister_impl.h.
#include "persister_impl.h"

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
#include <future>
#include <mutex>
#include <thread>

namespace shmbus::persist {

Result<void> Persister::Impl::detach() {
  if (ring) ring->close();
  auto r = detach_persistence(ns, stream);
  if (!r) return r.error();
  detached = true;
  detail::logger().info("persister {}/{}: detached: persistence ended, producers are free", ns, stream);
  return {};
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
  if (detail::same_dir(ps->store_dir, want.value())) return {};
  // A recorded store the caller cannot look at is another user's, not absent: taken over
  // into a store of the caller's, its `delete` would pass every check.
  if (auto r = detail::refuse_hidden_store(ps->store_dir, ns, stream, "persist the stream elsewhere"); !r)
    return r.error();
  if (::lstat(ps->store_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return {};
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
        // Its lock, and its recovery, which may cut a torn tail or finish a deletion: with
        // --secure (asked now, or recorded by the header) those are overwritten first (an
        // adversarial review: the move's recovery freed a torn tail's plaintext as it was).
        StoreOptions old_opts;
        old_opts.secure_delete =
            opts.secure_delete || ps->secure_delete || detail::store_recorded_secure(*old_root, ns, stream);
        auto old = SegmentStore::open(*old_root, ns, stream, old_opts);
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
  // --secure belongs to the store: once recorded (in its `settings` file, or in the
  // header of a ring persisted into this very directory) a persister started without it
  // keeps it, or everything it deleted would stay readable on disk and its settings would
  // tell `delete` and `rm --data` to forget it too (a review).  Removing the store ends it.
  if (!impl->opts.secure_delete) {
    bool damaged = false;
    bool recorded = detail::store_recorded_secure(impl->opts.data_dir, ns, stream, &damaged);
    if (damaged)
      detail::logger().warn("persister {}/{}: the store's settings file is damaged: whether it was "
                            "persisted with --secure is not known (pass --secure if it was)",
                            ns, stream);
    if (auto ps = impl->ctl->persist(); ps && ps->secure_delete &&
        detail::same_dir(ps->store_dir, impl->opts.data_dir + "/" + std::string(ns) + "/" + std::string(stream)))
      recorded = true;
    if (recorded) {
      impl->opts.secure_delete = true;
      detail::logger().info("persister {}/{}: the store was persisted with --secure: keeping it", ns,
                            stream);
    }
  }

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
  {
    // (At this first open only.)
    const auto w = impl->ctl->ring_window();
    so.source = StoreOptions::Source{w.oldest, w.next};
  }
  auto store = SegmentStore::open(impl->opts.data_dir, ns, stream, so);
  if (!store) return store.error();
  impl->store.emplace(std::move(store.value()));
  // The header says durable only what the store holds now, from the moment the store is
  // open (its recovery may have cut a torn tail or withdrawn a marker fsck left): it kept
  // the old end, and a persister killed during its start left `rm` taking the records
  // above the store's end for stored and `rm --force` recording nothing lost (reviews).
  // (A store that takes any first sequence holds nothing yet: the header's word stands.)
  if (!impl->store->takes_any_sequence() && impl->ctl->durable_seq() > impl->store->durable_seq())
    impl->ctl->set_durable_seq(impl->store->durable_seq());
  const std::string store_dir = impl->opts.data_dir + "/" + std::string(ns) + "/" + std::string(stream);
  // A store that holds no record deletes nothing by following the header's watermark: a
  // deletion made on the ring before there was a store (`delete` on a ring without one)
  // is kept, also on a ring others can write (persister_loop.cc: deletion_asked()); at
  // most to the ring's end now, beyond which no deletion can lie.
  if (const StoreStats st = impl->store->stats(); st.oldest_seq >= st.end_seq)
    impl->fresh_deleted_below = std::min(impl->ctl->deleted_below(), impl->ctl->ring_window().next);

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
  // A store that ends below where the group stands (its tail cut or zeroed while no
  // persister ran, then recovered): the group goes back to the store's end, so that what
  // the ring still holds is stored again and only what it no longer holds is recorded
  // lost (a review: the whole range was recorded "not persisted", the records the ring
  // held included).  Never otherwise: the group commits only what the store made durable.
  if (!impl->store->takes_any_sequence() && impl->store->next_seq() < impl->ring->next_seq()) {
    detail::logger().warn("persister {}/{}: the store ends at sequence {}, below the {} it had made durable: "
                          "storing again what the ring still holds",
                          ns, stream, impl->store->next_seq(), impl->ring->next_seq());
    if (auto r = impl->ring->seek(StartFrom::seq(impl->store->next_seq())); !r) return r.error();
  }
  impl->ring_gaps_seen = impl->ring_lost_seen = 0;
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
    impl_->requests.enqueue(
        Impl::Request{Impl::Request::Kind::kFlush, done, info->next_seq, info->tail_pos});
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
  bool asked = false;  // false: the thread stopped by itself (its ring was removed)
  {
    std::lock_guard lock(impl_->req_mu);
    if (impl_->accepting) {
      impl_->requests.enqueue(Impl::Request{Impl::Request::Kind::kStop, done});
      asked = true;
    }
  }
  impl_->thread.join();
  // After join(): end_result was written by the thread before it stopped accepting.
  auto r = asked ? fut.get() : impl_->end_result;
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

bool persister_registered(std::string_view ns, std::string_view stream,
                          std::chrono::nanoseconds within, const std::function<bool()>& stop) {
  const auto until = std::chrono::steady_clock::now() + within;
  for (;;) {
    auto info = stream_info(ns, stream);
    if (!info || info->persist) return true;
    for (const auto& c : info->consumers)
      if (c.name == kPersisterGroup) return true;
    if (std::chrono::steady_clock::now() >= until || (stop && stop())) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace shmbus::persist
