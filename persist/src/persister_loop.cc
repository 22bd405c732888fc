// persister_loop.cc: the persister thread: reads the ring, appends to the store, makes
// it durable before committing the ring, applies deletions and retention, answers flushes.
//
// The thread reads the ring as the durable consumer "_persister" and appends every
// record to the SegmentStore.  Its ring position is committed only after a flush has
// made the records durable, so a crash of the persister (or the host) never loses a
// record that the ring has already let go of.  Requests from other threads (flush,
// stop) reach it through a moodycamel ConcurrentQueue.
#include "persister_impl.h"

#include "shmbus/detail/steady_clock.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "format.h"  // kBatchRecordMax
#include "fs.h"
#include "log.h"
#include "store_path.h"
#include "watermark.h"

namespace shmbus::persist {

namespace {

// After a failed write (disk full, file-size limit, I/O error) the next attempt waits this
// long, so that a full disk is not hammered with writes and truncations.
constexpr uint64_t kRetryNs = 100'000'000;

using shmbus::detail::steady_ns;  // shmbus/detail/steady_clock.h

}  // namespace

// Makes everything stored durable, then lets the ring reuse it and tells producers.
// Waits for a background flush first (the store does).
Result<void> Persister::Impl::make_durable() {
  flushing = false;  // store->flush() collects it
  if (auto r = store->flush(); !r) return r;
  // Durable now: every record read so far is in the store (pending is empty whenever
  // this runs), so the ring may reuse all of it.
  ring->commit();
  uncommitted_bytes = 0;
  first_uncommitted_ns = 0;
  publish_durable();
  return {};
}

// Tells producers (the stream header) and stats() what the store has made durable.
void Persister::Impl::publish_durable() {
  const uint64_t d = store->durable_seq();
  if (d != published_durable || ctl->durable_seq() != d) ctl->set_durable_seq(d);
  published_durable = d;
  std::lock_guard lock(mu);
  stats_.durable_seq = d;
}

// Starts making everything read so far durable in the background (the store's sync
// thread runs the fdatasync) and reads on; finish_flush() commits the ring once the
// sync returned success.  Called only with nothing pending (every record read is
// stored, or was stored before).
void Persister::Impl::start_flush() {
  if (auto r = store->flush_start(); !r) {
    after_store_error(r.error());
    return;
  }
  flushing = true;
  flush_mark = ring->mark();
  flush_target = store->next_seq();
  // What is read from now on waits for the next flush.
  uncommitted_bytes = 0;
  first_uncommitted_ns = 0;
}

bool Persister::Impl::finish_flush(std::chrono::nanoseconds wait) {
  if (!flushing) return true;
  auto r = store->flush_finish(wait);
  if (r && !r.value()) return false;
  flushing = false;
  if (!r) {
    // The store went back to its last synced record (or stopped): read the ring again
    // from its last commit, as after a failed flush().
    after_store_error(r.error());
    return true;
  }
  // Durable up to flush_target (the store may have collected this sync itself, in a
  // roll: its durable_seq says what held).
  if (ring && store->durable_seq() >= flush_target) ring->commit(flush_mark);
  note_write_ok();
  publish_durable();
  return true;
}

void Persister::Impl::absorb_ring_counts(std::span<const Record> recs) {
  uint64_t holes = 0;
  for (size_t k = 1; k < recs.size(); ++k) holes += recs[k].seq - recs[k - 1].seq - 1;
  const uint64_t gaps = ring->gaps(), lost = ring->lost();
  // (A count below what was seen, or below the holes, cannot be judged: lost.)
  first_gaps = gaps >= ring_gaps_seen && gaps - ring_gaps_seen >= holes ? gaps - ring_gaps_seen - holes
                                                                        : UINT64_MAX;
  first_lost = lost - ring_lost_seen;
  ring_gaps_seen = gaps;
  ring_lost_seen = lost;
}

// [from, to): sequences the ring went past without a record, `skipped` when nothing was
// published under them (claims aborted, or abandoned by dead producers: store_records()
// judges), else lost.
Result<void> Persister::Impl::record_range(uint64_t from, uint64_t to, bool skipped) {
  const uint64_t count = to - from;
  if (auto r = store->append_lost(from, to, skipped); !r) return r.error();
  // Before durable_seq passes them: a producer waiting for one of them is told it was
  // not persisted, never that it is durable.
  ctl->record_lost(from, to);
  if (skipped) {
    detail::logger().info("persister {}/{}: sequences {}..{} were never published (claims aborted or "
                          "abandoned): recorded as skipped", ns, stream, from, to - 1);
    return {};
  }
  {
    std::lock_guard lock(mu);
    stats_.lost += count;
  }
  detail::logger().warn("persister {}/{}: records {}..{} were not persisted (gap in the ring)", ns, stream,
                        from, to - 1);
  return {};
}

Persister::Impl::Stored Persister::Impl::store_records(std::span<const Record> recs,
                                                       bool at_batch_start) {
  Stored out;
  while (out.done < recs.size()) {
    const Record& rec = recs[out.done];
    const uint64_t next = store->next_seq();
    const bool empty = store->takes_any_sequence();  // (a store that never held anything)
    if (!empty && rec.seq < next) {  // stored before a restart: not twice
      ++out.done;
      continue;
    }
    if (empty && out.done == 0 && at_batch_start && first_lost > 0 && ring) {
      // A store that holds nothing yet, and the ring lost records before this one (a
      // --let-go stream whose group was evicted while no persister ran, before its store
      // got a record): they are recorded as lost before it is stored.  The empty store
      // took any first sequence, and they went missing without a mark while durable_seq
      // passed them, wait_durable() saying "durable" for a record never stored (a
      // review).
      const LossRange l = ring->last_loss();
      if (l.from < rec.seq) {
        if (auto r = record_range(l.from, rec.seq, false); !r) {
          out.error = r.error();
          return out;
        }
        continue;  // (the store now expects rec.seq)
      }
    }
    if (!empty && rec.seq > next) {
      // Sequences the ring skipped as gaps, or lost while the persister was away on a
      // stream that lets producers go on: say which in the store.  Before a batch's
      // first record: skipped only when the ring lost nothing since the batch before and
      // counted exactly these as gaps (a lap counts the gaps from its own start, which
      // may lie below the store's end: a review found a real loss recorded as skipped
      // that way).  Between two records of a batch: gaps only (a lap or an eviction ends
      // a batch before its record).  A lap right after a batch is counted with it, so an
      // aborted claim before that batch's first record is then recorded as lost, never
      // a loss as skipped.
      const bool first = out.done == 0 && at_batch_start;
      const bool skipped = !first || (first_lost == 0 && first_gaps == rec.seq - next);
      if (auto r = record_range(next, rec.seq, skipped); !r) {
        out.error = r.error();
        return out;
      }
    }
    size_t end = out.done + 1;
    while (end < recs.size() && recs[end].seq == recs[end - 1].seq + 1) ++end;
    auto r = store->append_batch(recs.subspan(out.done, end - out.done));
    // Stored: the records below the store's end (all of the run, or the whole frames
    // before an error; none when a new store's first frame failed).
    const uint64_t now_next = store->next_seq();
    const bool none = store->takes_any_sequence();
    const size_t from = out.done;
    while (out.done < end && !none && recs[out.done].seq < now_next) {
      ++out.stored;
      out.bytes += recs[out.done].data.size();
      ++out.done;
    }
    if (!r) {
      out.error = r.error();
      return out;
    }
    if (out.done != end) {  // (append_batch() stores all of a run or fails)
      out.error = Error{Errc::kIo, "the store took " + std::to_string(out.done - from) + " of " +
                                       std::to_string(end - from) + " records"};
      return out;
    }
  }
  return out;
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
    pending.clear();
    if (ring) ring->close();
    ring.reset();
    flushing = false;
    return;
  }
  if (!ring) flushing = false;
  const uint64_t resume = store->next_seq();
  const uint64_t read_to = !pending.empty() ? pending.front().seq : ring ? ring->next_seq() : 0;
  if (ring && resume < read_to) {
    detail::logger().warn("persister {}/{}: the store went back to sequence {}: reading the ring again "
                          "from the last commit", ns, stream, resume);
    pending.clear();
    ring->close();
    ring.reset();
    flushing = false;  // its mark belongs to the closed consumer
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
    ring_gaps_seen = ring_lost_seen = 0;
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

uint32_t Persister::Impl::read_records(bool stopping) {
  const uint64_t now = steady_ns();
  if (!pending.empty() && now < retry_at_ns) {
    // Short naps, so that requests (stop, flush) are answered meanwhile.
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<uint64_t>(retry_at_ns - now, 10'000'000)));
    return 0;
  }
  const auto poll_wait = std::min<std::chrono::nanoseconds>(
      opts.flush_interval / 2 + std::chrono::microseconds(100), std::chrono::milliseconds(50));
  // The ring is never waited on past the moment the oldest uncommitted record is due
  // (or the retry after an error, if later): async's promise is one flush interval and
  // one sync, not up to half an interval more (test
  // Persister.AsyncMakesARecordDurableOneIntervalAfterItArrived).
  // With nothing uncommitted nothing falls due: the wait is long enough to get past the
  // ring's spin phase into its futex sleep (an adversarial review: at --flush-interval 0
  // the idle persister spun at 100% CPU, at 1 ms ~30%), and requests (flush, stop) are
  // still answered within 20 ms; a record wakes it at once.  Each wait begins with the
  // ring's spin phase (~2000 pauses, ~100 sched_yield): at 5 ms waits that phase cost an
  // idle persister 0.26 s of CPU a second under TSan on a VM with slow sched_yield (its
  // test failed in CI), a few percent of a core without.
  auto ring_wait = std::max<std::chrono::nanoseconds>(poll_wait, std::chrono::milliseconds(20));
  if (first_uncommitted_ns != 0) {
    const uint64_t due = std::max(
        first_uncommitted_ns + static_cast<uint64_t>(opts.flush_interval.count()), retry_at_ns);
    ring_wait = std::min<std::chrono::nanoseconds>(poll_wait, std::chrono::nanoseconds(due > now ? due - now : 0));
  }
  uint64_t records = 0, bytes = 0;
  // While a background flush runs the loop does not sleep in the ring: it waits for the
  // flush below instead, when the ring is empty.
  const bool may_wait = !stopping && !flushing;
  // Up to 4096 records a call, stored as they come.  Small records are read 64 at a time
  // (poll_batch), and a run of them goes into one batch frame; larger ones (each a frame
  // of its own) one at a time, as before batches: at 1 KiB the file store's rate seemed
  // lower with batches of 64 (0.71-0.93 against 1.25-1.59 GB/s in alternating runs of
  // this disk, whose own rate swings 0.3-1.8 GB/s), and gains nothing from them.
  uint32_t batch = 0;
  Record got[64];
  while (batch < 4096) {
    std::span<const Record> recs;
    bool at_batch_start = true;
    if (!pending.empty()) {
      recs = pending;
      at_batch_start = pending_at_batch_start;
    } else {
      size_t n = 0;
      ReadStatus st = ring->poll_batch(got, small_records ? std::size(got) : 1, &n,
                                       batch == 0 && may_wait ? ring_wait : std::chrono::nanoseconds(0));
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
      recs = std::span<const Record>(got, n);
      small_records = recs.back().data.size() <= detail::kBatchRecordMax;
      absorb_ring_counts(recs);
    }
    const Stored r = store_records(recs, at_batch_start);
    records += r.stored;
    bytes += r.bytes;
    batch += static_cast<uint32_t>(r.done);
    // Stored now, or stored before: either way the ring position moves past them and
    // must be committed within flush_interval.
    for (size_t i = 0; i < r.done; ++i) uncommitted_bytes += recs[i].data.size() + 64;  // payload + ring header and padding, at most
    if (r.done && first_uncommitted_ns == 0) first_uncommitted_ns = steady_ns();
    if (r.error) {
      // Disk full (or another write error): keep the records, hold the ring (producers
      // feel backpressure), try again shortly.  Nothing is dropped.
      std::vector<Record> left(recs.begin() + static_cast<ptrdiff_t>(r.done), recs.end());
      pending = std::move(left);
      pending_at_batch_start = at_batch_start && r.done == 0;
      after_store_error(*r.error);
      break;
    }
    if (!pending.empty()) {
      pending.clear();
      note_write_ok();
    }
  }
  if (records) {
    std::lock_guard lock(mu);
    stats_.records += records;
    stats_.bytes += bytes;
  }
  // Nothing to read: wait for the running flush (short, so that new records and
  // requests are seen soon).
  if (batch == 0 && flushing && !stopping && ring)
    (void)finish_flush(std::min<std::chrono::nanoseconds>(poll_wait, std::chrono::milliseconds(1)));
  return batch;
}

bool Persister::Impl::check_ring_name(uint32_t read) {
  const uint64_t now = steady_ns();
  if (!ring_gone) {
    if (now < next_name_check_ns) return false;
    next_name_check_ns = now + 100'000'000;
    // An fstat and an lstat, ten times a second.
    const NameState state = ring->name_state();
    if (state == NameState::kSame) return false;
    const std::string msg =
        "stream " + ns + "/" + stream +
        (state == NameState::kRemoved ? " was removed" : " was removed and created again") +
        " while persisted (shmbus rm --force): its persister stored what the removed ring held and stopped";
    ring_gone = make_error(Errc::kNotFound, msg);
    ring_gone_ns = now;
    detail::logger().warn("persister {}/{}: the stream's ring was removed: storing what it still holds, "
                          "then stopping", ns, stream);
    std::lock_guard lock(mu);
    stats_.last_error = msg;
  }
  // Drained: a read that came back short of its 4096 found the ring caught up (a producer
  // still publishing into the removed ring is not followed past a second).
  return pending.empty() && (read < 4096 || now - ring_gone_ns >= 1'000'000'000);
}

void Persister::Impl::make_durable_if_due(bool stopping) {
  if (!pending.empty()) return;  // a refused record waits: the ring must not move past it
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
  if (!stopping) {
    // In the background: the next records are read and written while this syncs.
    if (!flushing) start_flush();
    return;
  }
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
  const uint64_t header_wm = std::min(ctl->deleted_below(), store->next_seq());
  if (header_wm > applied_deleted_below && now >= delete_retry_ns) {
    const uint64_t wm = deletion_asked(header_wm, now);
    if (wm > applied_deleted_below) {
      attempted = true;
      if (auto d = store->delete_before(wm); d) {
        applied_deleted_below = wm;
        detail::logger().info("persister {}/{}: deleted below {} ({} segments, {} bytes)", ns, stream, wm,
                              d->segments, d->bytes);
        ctl->set_oldest_persisted_seq(store->stats().oldest_seq);
        if (auto dir = store_folder(); dir) detail::remove_delete_requests(dir->get(), wm);
      } else {
        failed = d.error().message;
        delete_retry_ns = now + kRetryNs;
      }
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
  beat_if_due(now, next_beat);
}

Result<detail::UniqueFd> Persister::Impl::store_folder() const {
  const std::string parts[] = {ns, stream};
  return detail::open_dir_path(opts.data_dir, parts, /*create=*/false, detail::Use::kWrite);
}

// How far the header's watermark (`header_wm`, above what was applied) may be applied.
// Its word is trusted when only this process's user can write the ring (and could when
// the persister started: others_can_write() is sticky); otherwise (a group given write
// access, a ring whose name another user created) only as far as a request in the
// store's folder asks (watermark.h: only the store's owner can make one), as far as the
// store has deleted already, or as far as it stood over a store empty at start
// (fresh_deleted_below).  What is refused is said once per value and looked at again
// every second (a request may come later, below a raised header).
uint64_t Persister::Impl::deletion_asked(uint64_t header_wm, uint64_t now) {
  if (!ctl->others_can_write()) return header_wm;
  const uint64_t have = std::max(store->stats().deleted_below, fresh_deleted_below);
  uint64_t asked = 0;
  if (auto dir = store_folder(); dir) {
    if (auto a = detail::highest_delete_request(dir->get()); a) asked = a.value();
  }
  const uint64_t wm = std::min(header_wm, std::max(asked, have));
  if (wm >= header_wm) return wm;
  if (header_wm != refused_deleted_below) {
    refused_deleted_below = header_wm;
    detail::logger().warn(
        "persister {}/{}: the ring's deletion watermark says 'deleted below {}', but users other than "
        "this one can write the ring and no deletion that far was asked through the store's folder "
        "(shmbus delete): the store deletes only below {}",
        ns, stream, header_wm, std::max(wm, applied_deleted_below));
  }
  delete_retry_ns = now + 10 * kRetryNs;
  return wm;
}

void Persister::Impl::beat_if_due(uint64_t now, uint64_t* next_beat) {
  if (now < *next_beat) return;
  *next_beat = now + 100'000'000;
  ctl->beat();
  publish_stats();
}

// Answers the flush requests whose records have all been read: once they are durable,
// or with the write error that keeps them from it.  Requests for records not read yet
// stay (the loop goes on reading).
void Persister::Impl::answer_flushes(std::vector<Request>* waiters, bool stopping) {
  if (waiters->empty() || !ring) return;  // (opened again before the next try)
  Result<void> r;
  if (!pending.empty()) {
    r = make_error(last_write_error.code, "records wait to be stored: " + last_write_error.message);
  } else {
    const uint64_t read_to = ring->next_seq(), read_pos = ring->read_pos();
    // A flush is answered once the reader got up to its sequence, or up to its claim
    // position (the claims between the last record and the position were gaps, stepped
    // over without a sequence: flush() timed out after an aborted last claim), and only
    // while
    // - the ring has counted no loss the store has not taken yet (an eviction reported
    //   alone moves the reader past the lost range before the next batch records it);
    // - the store accounts for every sequence the reader went past (a new group started
    //   at the ring's oldest record, past a hole the store has not recorded, may have
    //   only gaps to read before the record that tells it);
    // - the stream's name still refers to the ring read (a stream created again has
    //   sequences and positions of its own), looked up (system calls) only when it
    //   decides.
    // (Each found by a review of this stop.)
    const bool losses_stored = ring->lost() == ring_lost_seen;
    const bool store_accounts = store->takes_any_sequence() || store->next_seq() >= read_to;
    std::optional<bool> same_ring;
    auto ready = [&](const Request& q) {
      if (!losses_stored || !store_accounts) return false;
      if (q.target > read_to && q.target_pos > read_pos) return false;
      if (!same_ring) same_ring = ring->name_state() == NameState::kSame;
      return *same_ring;
    };
    const bool any_ready = std::any_of(waiters->begin(), waiters->end(), ready);
    if (!any_ready && !stopping) return;
    r = make_durable();
    if (!r) after_store_error(r.error());
    else note_write_ok();
    // What the callers of flush() read next in stats() includes what this made durable
    // (not only the next 100 ms beat's view).
    publish_stats();
    if (r && stopping) {
      // Stopping: whatever was not read by now will not be by this persister.
      for (auto& q : *waiters)
        q.done->set_value(ready(q) ? Result<void>()
                                               : make_error(Errc::kClosed, "persister stopped before "
                                                            "it read every record published before the flush"));
      waiters->clear();
      return;
    }
    if (r) {
      auto it = std::partition(waiters->begin(), waiters->end(),
                               [&](const Request& q) { return !ready(q); });
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
      // Still alive, and saying why it does not store (stat's errors and last error).
      beat_if_due(now_ns(), &next_beat);
      if (!stopping) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    const uint32_t read = read_records(stopping);
    if (ring) (void)finish_flush(std::chrono::nanoseconds(0));
    answer_flushes(&flush_waiters, stopping);
    if (!ring) continue;
    make_durable_if_due(stopping);
    housekeeping(&next_retention, &next_beat);
    // The last turn (stopping) stores what is left and makes it durable.
    if (!stopping && check_ring_name(read)) stopping = true;
  }
  // The last loop made everything read durable, unless writing failed.
  Result<void> final_flush;
  if (!pending.empty())
    final_flush = make_error(Errc::kNoSpace, "records wait to be stored (they stay in the ring): " +
                                                 last_write_error.message);
  else if (write_failing)
    final_flush = last_write_error;
  if (!ring) final_flush = last_write_error;
  if (ring_gone && final_flush && pending.empty()) {
    // What the removed ring numbered past what it stored (a producer that went on
    // publishing into it, claims never committed): recorded as lost, so that the stream
    // created again over the store numbers its records after them.  Before, it continued
    // at the store's end and gave those numbers to new records, which a reader of the old
    // ring (`tail -f`) had seen already (a review).  A record published into the removed
    // ring after this is still numbered again: nobody stores or counts it.
    const auto w = ctl->ring_window();
    const uint64_t from = store->next_seq(), to = w.next;
    // The reader at the claim cursor stepped over everything after what it stored: those
    // are aborted or abandoned claims, skipped (nothing was published: a review found
    // them recorded as lost).
    const bool only_gaps = ring && ring->read_pos() == w.next_pos;
    if (to > from) {
      if (auto r = store->append_lost(from, to, /*skipped=*/only_gaps); !r) {
        final_flush = r.error();
      } else {
        detail::logger().warn("persister {}/{}: sequences {}..{} of the removed ring were not stored: "
                              "recorded as {}", ns, stream, from, to - 1,
                              only_gaps ? "skipped (aborted claims)" : "lost");
        std::lock_guard lock(mu);
        if (!only_gaps) stats_.lost += to - from;
      }
    }
  }
  publish_stats();
  Result<void> closed = store->close();
  if (ring) ring->close();
  if (final_flush && !closed) final_flush = closed;
  if (final_flush && ring_gone) final_flush = *ring_gone;
  end_result = final_flush;
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
  // Requests that came while the loop ended (it stopped by itself): stop() gets what it
  // ended with.
  Request req;
  while (requests.try_dequeue(req))
    req.done->set_value(req.kind == Request::Kind::kStop ? final_flush
                                                          : Result<void>(make_error(Errc::kClosed, "persister stopped")));
}

}  // namespace shmbus::persist
