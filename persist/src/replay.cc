// replay.cc: a consumer that starts in the store and lands on the live ring.
//
// Store mode reads the segments from `next`.  At the end of what is stored it opens a
// tailing ring consumer that skips everything below `next`; the first record it returns
// decides: seq == next, and we are live with no gap and no duplicate; seq > next (or a
// lap), and the ring has already let `next` go, which on a persisted stream means the
// store has it by now: back to store mode.  If the store still lacks it on the second
// try and no persister is attached to write it (a let-go stream whose persister died,
// or an abandoned claim), it is gone: kGap "not persisted", and on with the ring.
//
// Store mode also ends before the end of the store: once `next` is in the ring again,
// past its oldest quarter (so that a producer running ahead does not lap it at once), it
// goes live the same way.  A replay that has caught up thus reads the ring, at the ring's
// latency, even when the persister keeps the store level with it and the end is never
// met (as Aeron's replay-merge joins the live stream once the replay is close to it).
// The ring's window is a few loads of its header, looked at once per ring's worth read
// until `next` nears it, then at every entry.
#include "shmbus/persister.h"
#include "shmbus/detail/steady_clock.h"
#include "shmbus/detail/stream_control.h"
#include "shmbus/store_admin.h"
#include "start_point.h"
#include "store_path.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>

namespace shmbus::persist {

namespace {

using shmbus::detail::steady_ns;  // shmbus/detail/steady_clock.h

}  // namespace

struct ReplayConsumer::Impl {
  std::string ns, stream;
  ReplayOptions opts;
  std::optional<StreamControl> ctl;     // read-only: the watermark and the store's place
  std::optional<SegmentReader> reader;  // store mode when set
  // Live mode when set and `reader` is not.  Kept in store mode, so that the next switch
  // to the ring is a seek(), not a new mapping of the ring (~0.7 ms a 4 MiB ring).
  std::optional<Consumer> ring;
  std::string store_root;               // empty: the stream is not persisted
  uint64_t next = 0;                    // the sequence we owe the user next
  bool next_known = false;              // false until the first record fixes it
  uint64_t skip_ts = 0;                 // @TIME start: skip records older than this
  uint64_t switches = 0;
  bool switch_pending = false;          // on the ring after the store, not yet confirmed
  // In store mode, the next `next` at which to look at the ring's window (caught_up()).
  uint64_t live_check_at = 0;
  bool waited_for_durable = false;  // caught_up() waited for the durable position
  ReplayGap gap;
  Error error{Errc::kIo, ""};
  // A record read (from the store or the ring) while reporting the gap before it; its
  // view stays valid because nothing is read until it is delivered.
  Record held;
  bool have_held = false;
  // A gap found with the one before it (a segment the reader could not serve, right
  // after a range that was never stored): reported at the next poll.
  std::optional<ReplayGap> held_gap;
  uint64_t bounced_at = ~0ULL;          // `next` at the last return from ring to store
  // Live with the start not fixed yet (the store was empty, or absent, when we looked):
  // before the first live record is delivered, look at the store once more (see
  // store_has_older()).
  bool recheck_store = false;
  // The records the ring said had left it when a start lay below its oldest record
  // (kBeforeOldest: its last_loss()).  On a plain stream a gap that lies inside them is
  // reported as such; any other gap is the ring's own, after a deletion above the oldest
  // record too (a review: an aborted claim there took that reason).
  LossRange left_ring{0, 0};

  Result<void> open_store_at(uint64_t seq);
  // A stream not persisted when this replay opened may be persisted now: a persister
  // attached after the replay did (e.g. `tail -f` following a stream created again before
  // `shmbus persist` ran on it).  What the ring then laps is in the store, not lost (it
  // said "lost (lapped on a stream that is not persisted)" of records the store held: a
  // CI failure's inquiry).  Looked at only where the ring has let records go.
  bool has_store() {
    if (store_root.empty())
      if (auto root = header_store_root()) store_root = *root;
    return !store_root.empty();
  }
  // Whether the header now names another store than the one read (a persister started
  // with --move-store moved it, or with --new-store began one elsewhere): then that one is
  // read from here on.  (A lapped replay went back to the old place, gone after a move:
  // `tail -f` took the error for its ring's removal, said so, and printed everything
  // again; after --new-store it bounced between the old store's end and the ring.)
  bool store_moved() {
    if (store_root.empty()) return false;
    auto root = header_store_root();
    if (!root || *root == store_root) return false;
    store_root = *root;
    return true;
  }
  // The store the stream's header names now, if any.
  std::optional<std::string> header_store_root() const {
    if (!ctl) return std::nullopt;
    auto ps = ctl->persist();
    if (!ps) return std::nullopt;
    return detail::store_root_of(ps->store_dir, ns, stream);
  }
  // From live back to the store at `next`.  When the persister has not written that far
  // yet, the store ends at once and we bounce: nap briefly so that it can catch up.
  Result<void> back_to_store() {
    switch_pending = false;
    if (bounced_at == next) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    bounced_at = next;
    // The ring did not give `next` (a lap, or a record it skipped: a dead producer's
    // claim made a gap, which the store records as lost): the store decides about it, so
    // no switch back before the store has moved past it, whatever the ring's window says.
    // (Found by the chaos harness: switching at once, replays went back and forth
    // between the ring and the store at the same `next` for ever.)
    live_check_at = next + 1;
    auto r = open_store_at(next);
    if (!r && r.error().code == Errc::kNotFound && store_moved()) r = open_store_at(next);
    if (!r) {
      // The ring is past `next` and the store cannot be read now: neither is read until
      // the store opens (poll() tries it again), so that nothing the ring skipped over is
      // reported lost for want of it.
      error = r.error();
      ring.reset();
    }
    return r;
  }
  Result<void> go_live(bool from_store);
  // At the store's end (the reader's kEnd, with a ring): the sequences below the
  // persister's durable position, and below the ring's oldest record, that the store does
  // not hold, [from, to) (empty if none).  The first time it finds some it reads the
  // store's end again instead (look_again: the reader is sought back), with the durable
  // position read now; the second time it answers.
  struct Missing {
    uint64_t from = 0, to = 0;
    bool look_again = false;
  };
  Missing missing_at_end(uint64_t deleted);
  uint64_t end_durable = ~0ULL;  // the durable position read at the first look, or ~0
  uint64_t end_looked_at = 0;    // the store's end at the first look
  // The ring consumer's options (a tailing reader) with `start`.
  ConsumerOptions ring_options(StartFrom start) const {
    ConsumerOptions co;
    co.wait = opts.wait;
    co.read_only = opts.read_only;
    co.start = start;
    return co;
  }
  // Whether the ring still holds `next`, past the oldest quarter of what it holds: the
  // replay has caught up and may read the ring instead of the store.  Sets when to look
  // again: the ring's oldest record only moves up, so below it the answer stays no until
  // `next` reaches it (one look per lap of the ring's worth read); in the oldest quarter,
  // at every entry.
  bool caught_up() {
    if (!next_known || !ctl || next < live_check_at) return false;
    const auto w = ctl->ring_window();
    if (next < w.oldest) {
      live_check_at = w.oldest;
      return false;
    }
    if (next > w.next) {  // the store is ahead of the ring (a ring re-created lower)
      live_check_at = next + kAheadRecheck;
      return false;
    }
    live_check_at = next + 1;
    if (next < w.oldest + (w.next - w.oldest) / 4) return false;
    // Once, a switch waits for the records the persister had made durable: its consumer
    // slot commits there (after each sync), and the ring reader starts from the nearest
    // committed position at or below `next` (nearest_start()) and walks record by record
    // from it; below it the nearest is often the ring's oldest record.  The switch at a
    // quarter of the window walked ~2,300 records (a 4 MiB ring, 64 B) before its first:
    // 0.4-0.7 ms on a VM where each page a mapping reads first costs ~2-7 us, 50-85 us
    // from the persister's position (bench/README.md, "The replay's switch to the
    // ring").  Only once: a store that keeps up (every record durable before the replay
    // asks for it) stays ahead, and the replay goes live all the same.
    if (const uint64_t durable = ctl->durable_seq(); next < durable && !waited_for_durable) {
      waited_for_durable = true;
      live_check_at = durable;
      return false;
    }
    // The window is that of the ring found at open(): trusted while the name still
    // refers to it (two system calls, once per switch).  A ring removed or created again
    // since: no switch before the store's end, as before this look existed.
    if (ctl->name_state() != NameState::kSame) {
      live_check_at = ~0ULL;
      return false;
    }
    return true;
  }
  static constexpr uint64_t kAheadRecheck = 4096;
  // Whether the store entry `e` is owed to the user: nothing below `next` (once known) or
  // below the header's watermark `deleted`, and no record older than an @TIME start.
  // The one filter of store entries, for poll() and store_has_older().
  bool owed(const Entry& e, uint64_t deleted) const {
    if (e.kind == EntryKind::kRecord)
      return !(next_known && e.seq < next) && e.seq >= deleted && e.ts_ns >= skip_ts;
    return !(next_known && e.end_seq <= next) && e.end_seq > deleted;  // a gap entry
  }
  // Whether the store now holds something the user is owed before `seq` (a record that
  // passes the start filters, or a gap entry): the persister may have stored records
  // older than the ring's first one since the store was found empty, and the ring let
  // them go.  "Earliest" is the oldest of both.  Leaves the reader unset.
  Result<bool> store_has_older(uint64_t seq, uint64_t deleted);
  // Whether a live persister is attached to the ring (so that what it has not stored
  // yet will come).
  bool persister_attached() const;
  ReplayStatus deliver(const Record& r, Record* out);
  ReplayStatus hold_and_report_gap(const Record& r, std::string reason, bool never_published = false) {
    held = r;
    have_held = true;
    return report_gap(next, r.seq, std::move(reason), never_published);
  }
  ReplayStatus report_gap(uint64_t from, uint64_t to, std::string reason, bool never_published = false) {
    gap = ReplayGap{from, to, std::move(reason), never_published};
    next = to;
    next_known = true;
    return ReplayStatus::kGap;
  }
};

Result<void> ReplayConsumer::Impl::open_store_at(uint64_t seq) {
  auto r = SegmentReader::open(store_root, ns, stream);
  if (!r) return r.error();
  reader.emplace(std::move(r.value()));
  if (!next_known) {
    if (opts.start.kind == StartFrom::Kind::kTime) return reader->seek_time(opts.start.value);
    return reader->seek_earliest();
  }
  return reader->seek_seq(seq);
}

Result<void> ReplayConsumer::Impl::go_live(bool from_store) {
  const ConsumerOptions co =
      ring_options(next_known ? StartFrom::seq(next)
                   : opts.start.kind == StartFrom::Kind::kTime ? StartFrom::time_ns(opts.start.value)
                                                                : opts.start);
  // (seek() maps the stream now under the name anew if it is another; on error it
  // leaves the consumer closed: then a new one.)
  if (!ring || !ring->is_open() || !ring->seek(co.start)) {
    ring.reset();
    auto c = Consumer::open(ns, stream, co);
    if (!c) return c.error();
    ring.emplace(std::move(c.value()));
  }
  reader.reset();
  live_check_at = 0;  // (after the store's end made it after all)
  waited_for_durable = false;
  switch_pending = from_store;
  recheck_store = !next_known && !store_root.empty() && opts.start.kind != StartFrom::Kind::kLatest;
  return {};
}

ReplayConsumer::Impl::Missing ReplayConsumer::Impl::missing_at_end(uint64_t deleted) {
  Missing m;
  const uint64_t end = reader->position();
  // Where the owed sequences begin: not below `next`, nor below the deletion watermark
  // (read again: retention may have deleted more while the store was read).
  m.from = std::max({end, next_known ? next : 0, deleted, ctl->deleted_below()});
  // (A first look again if the store grew since the first: its records came.)
  if (end_durable == ~0ULL || end != end_looked_at) {
    // The durable position is that of the store the header names now: of ours only if
    // it is still this store (a persister moved to another data dir makes records
    // durable there: they were reported missing from this one; a review).
    const auto ps = ctl->persist();
    const auto root = ps ? detail::store_root_of(ps->store_dir, ns, stream) : std::nullopt;
    const uint64_t durable = root && *root == store_root ? ctl->durable_seq() : 0;
    end_durable = ~0ULL;
    if (durable > m.from && reader->seek_seq(end)) {
      end_durable = durable;
      end_looked_at = end;
      m.look_again = true;
    }
    m.to = m.from;
    return m;
  }
  // What the ring still holds is read from it: not a gap.  (Its window is read racily;
  // a record that leaves it meanwhile makes the ring's reader bounce back to the store,
  // which ends here again.)
  m.to = std::min(end_durable, std::max(ctl->ring_window().oldest, m.from));
  end_durable = ~0ULL;
  return m;
}

Result<bool> ReplayConsumer::Impl::store_has_older(uint64_t seq, uint64_t deleted) {
  auto r = SegmentReader::open(store_root, ns, stream);
  if (!r) {
    if (r.error().code == Errc::kNotFound) return false;
    return r.error();
  }
  SegmentReader& rd = r.value();
  auto s = opts.start.kind == StartFrom::Kind::kTime ? rd.seek_time(opts.start.value) : rd.seek_earliest();
  if (!s) return s.error();
  for (;;) {  // bounded: the store's entries below `seq`
    auto e = rd.next();
    if (!e) return e.error();
    if (e->kind == EntryKind::kEnd || e->seq >= seq) return false;
    if (owed(e.value(), deleted)) return true;
  }
}

bool ReplayConsumer::Impl::persister_attached() const {
  auto info = stream_info(ns, stream);
  if (!info) return true;  // cannot tell: keep waiting for the store
  for (const auto& c : info->consumers)
    if (c.name == kPersisterGroup) return c.alive && !c.evicted;
  return false;
}

ReplayStatus ReplayConsumer::Impl::deliver(const Record& r, Record* out) {
  next = r.seq + 1;
  next_known = true;
  *out = r;
  return ReplayStatus::kOk;
}

ReplayConsumer::ReplayConsumer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ReplayConsumer::ReplayConsumer(ReplayConsumer&&) noexcept = default;
ReplayConsumer& ReplayConsumer::operator=(ReplayConsumer&&) noexcept = default;
ReplayConsumer::~ReplayConsumer() = default;

Result<ReplayConsumer> ReplayConsumer::open(std::string_view ns, std::string_view stream,
                                            const ReplayOptions& opts) {
  auto impl = std::make_unique<Impl>();
  Impl& c = *impl;
  c.ns = ns;
  c.stream = stream;
  c.opts = opts;
  auto ctl = StreamControl::open(ns, stream, true);
  if (!ctl && ctl.error().code == Errc::kNotFound) {
    // No ring: the stream outlives it in its store.
    auto loc = locate_store(ns, stream, opts.data_dir);
    if (!loc || !loc->exists) return ctl.error();
    c.store_root = loc->root;
    if (opts.start.kind == StartFrom::Kind::kTime) c.skip_ts = opts.start.value;
    if (opts.start.kind == StartFrom::Kind::kSeq) {
      c.next = opts.start.value;
      c.next_known = true;
    }
    if (auto r = c.open_store_at(c.next); !r) return r.error();
    if (opts.start.kind == StartFrom::Kind::kLatest) {
      // Latest: past everything stored so far.
      for (;;) {
        auto e = c.reader->next();
        if (!e) return e.error();
        if (e->kind == EntryKind::kEnd) break;
      }
      c.next = c.reader->position();
      c.next_known = true;
    }
    return ReplayConsumer(std::move(impl));
  }
  if (!ctl) return ctl.error();
  c.ctl.emplace(std::move(ctl.value()));
  if (auto ps = c.ctl->persist()) {
    // store_dir is ROOT/NS/STREAM: the reader wants ROOT.
    if (auto root = detail::store_root_of(ps->store_dir, ns, stream)) c.store_root = *root;
  }
  if (opts.start.kind == StartFrom::Kind::kTime) c.skip_ts = opts.start.value;
  if (opts.start.kind == StartFrom::Kind::kSeq) {
    c.next = opts.start.value;
    c.next_known = true;
  }
  bool want_history = opts.start.kind != StartFrom::Kind::kLatest;
  if (opts.start.kind == StartFrom::Kind::kSeq) {
    // Still in the ring: no need for the store.
    auto info = stream_info(ns, stream);
    if (info && opts.start.value >= info->oldest_seq) want_history = false;
  } else if (want_history && !c.store_root.empty()) {
    // Earliest or a time that the store finds at or above the ring's oldest record: the
    // ring has it, and older records too when retention deleted from the store what the
    // ring still holds (a review: a replay from earliest began at the store's first
    // record and skipped the ring's older ones unsaid).  An empty store: as before, the
    // ring with the start left open (go_live()).
    auto info = stream_info(ns, stream);
    // (kCommitted, a tailing reader's default, is earliest.)
    const StartFrom where = opts.start.kind == StartFrom::Kind::kTime ? opts.start : StartFrom::earliest();
    auto s = detail::store_start_seq(c.store_root, ns, stream, where);
    if (info && s && *s >= info->oldest_seq) want_history = false;
  }
  bool from_store = false;
  if (!c.store_root.empty() && want_history) {
    // Start in the store when it holds something at or after the start point that the
    // ring may no longer have; the switch logic sorts out the rest.
    if (auto r = c.open_store_at(c.next); r) from_store = true;
    else if (r.error().code != Errc::kNotFound) return r.error();
  }
  if (!from_store) {
    if (auto r = c.go_live(false); !r) return r.error();
  } else {
    // The ring's consumer now, idle until the switch (then a seek(): the ring is mapped
    // and its pages populated here, not between the last stored record and the first
    // live one).  Not allowed to write the stream: said now (open_tail() then tries
    // read-only), not after the whole store.  Otherwise, if it cannot be opened now,
    // go_live() tries again and says why.
    auto r = Consumer::open(ns, stream, c.ring_options(StartFrom::latest()));
    if (r) c.ring.emplace(std::move(r.value()));
    else if (r.error().code == Errc::kPermission) return r.error();
  }
  return ReplayConsumer(std::move(impl));
}

ReplayStatus ReplayConsumer::poll(Record* out, std::chrono::nanoseconds timeout) {
  if (!impl_) return ReplayStatus::kClosed;
  Impl& c = *impl_;
  const uint64_t deadline = steady_ns() + static_cast<uint64_t>(std::max<int64_t>(timeout.count(), 0));
  // (Without a ring the reader applies the store's own watermark; so it does on a ring
  // others can write, whose header's watermark is not the store owner's word.)
  const uint64_t deleted = c.ctl ? c.ctl->deleted_below_for_store() : 0;
  if (c.next_known && c.next < deleted) {
    if (c.have_held && c.held.seq < deleted) c.have_held = false;
    return c.report_gap(c.next, deleted, "deleted");
  }
  if (c.have_held) {
    c.have_held = false;
    if (c.held.seq == c.next) return c.deliver(c.held, out);
  }
  if (c.held_gap) {
    ReplayGap g = std::move(*c.held_gap);
    c.held_gap.reset();
    if (g.to > c.next) return c.report_gap(std::max(g.from, c.next), g.to, std::move(g.reason));
  }
  for (;;) {
    if (c.reader) {
      if (c.caught_up()) {
        // The ring cannot be read now (all its consumer slots taken, say): on with the
        // store, whose end tries again and reports what stops it (no other try before it:
        // each may map the whole ring).
        if (c.go_live(true)) continue;
        c.live_check_at = ~0ULL;
      }
      const uint64_t at = c.reader->position();
      auto e = c.reader->next();
      if (!e) {
        // A segment the reader could not serve and moved past (a damaged header, not a
        // regular file, another stream's): the sequences it skipped are a gap, as damage
        // inside a segment is (README: the records after it are still served).  Other
        // errors end the replay.
        const uint64_t past = c.reader->position();
        if ((e.error().code == Errc::kCorrupt || e.error().code == Errc::kIncompatible ||
             e.error().code == Errc::kPermission) && past > at) {
          const uint64_t from = std::max(c.next_known ? std::max(c.next, at) : at, deleted);
          std::string why = "corrupt in the store: " + e.error().message;
          // Below the segment's first sequence, nothing was ever stored (the reader had
          // moved up to the oldest segment): that part is not damage.
          const uint64_t bad = std::max(from, c.reader->skipped_segment_first());
          if (bad > from && past > bad) {
            c.held_gap = ReplayGap{bad, past, std::move(why)};
            return c.report_gap(from, bad, "not in the store");
          }
          if (past > from) return c.report_gap(from, past, std::move(why));
          continue;
        }
        c.error = e.error();
        return ReplayStatus::kError;
      }
      switch (e->kind) {
        case EntryKind::kRecord: {
          if (!c.owed(e.value(), deleted)) continue;
          c.skip_ts = 0;
          Record r;
          r.seq = e->seq;
          r.ts_ns = e->ts_ns;
          r.type = e->type;
          r.data = e->data;
          // The store starts later than asked (older records were never stored): the gap,
          // then this record.
          if (c.next_known && e->seq > c.next) return c.hold_and_report_gap(r, "not in the store");
          return c.deliver(r, out);
        }
        case EntryKind::kSkipped:
        case EntryKind::kLost:
        case EntryKind::kDeleted:
        case EntryKind::kCorrupt: {
          if (!c.owed(e.value(), deleted)) continue;
          // (Not below the watermark: that part is deleted, not lost.)
          const uint64_t from = std::max(c.next_known ? std::max(c.next, e->seq) : e->seq, deleted);
          return c.report_gap(from, e->end_seq,
                              e->kind == EntryKind::kSkipped   ? "never published (claims aborted or abandoned)"
                              : e->kind == EntryKind::kLost    ? (e->detail.empty() ? "not persisted" : e->detail)
                              : e->kind == EntryKind::kDeleted ? "deleted"
                                                               : "corrupt in the store: " + e->detail,
                              e->kind == EntryKind::kSkipped);
        }
        case EntryKind::kEnd:
          if (!c.ctl) {
            // No ring (yet): it may be re-created (then we go live), or the store grow.
            if (auto ctl = StreamControl::open(c.ns, c.stream, true); ctl) {
              c.ctl.emplace(std::move(ctl.value()));
            } else {
              const uint64_t now = steady_ns();
              if (now >= deadline) return ReplayStatus::kTimeout;
              std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<uint64_t>(deadline - now, 10'000'000)));
              continue;
            }
          }
          // Everything this store holds is read: the rest is in the store the header
          // names now, if it names another (store_moved()).
          if (c.next_known && c.store_moved()) {
            if (auto r = c.open_store_at(c.next); !r) {
              c.error = r.error();
              return ReplayStatus::kError;
            }
            continue;
          }
          // Everything stored is read.  Below the persister's durable position the store
          // had every record, or an entry for its gap: what it lacks there was destroyed
          // behind the persister's back (a segment's tail cut or zeroed, a file removed by
          // hand).  A gap "corrupt in the store" up to the ring's oldest record, not
          // skipped unsaid on the way to the ring, nor taken for records never persisted
          // (a review).  Looked at twice: the durable position read at the first end
          // is checked against a second read of the store, so that what the persister
          // wrote after the first read's end is not taken for missing.
          if (auto missing = c.missing_at_end(deleted); missing.to > missing.from) {
            const ReplayStatus st = c.report_gap(missing.from, missing.to,
                                                 "corrupt in the store: the persister had made these records "
                                                 "durable, and the store's end no longer holds them");
            if (auto r = c.go_live(true); !r) {
              c.error = r.error();
              return ReplayStatus::kError;
            }
            return st;
          } else if (missing.look_again) {
            continue;
          }
          // Try the live ring.
          if (auto r = c.go_live(true); !r) {
            c.error = r.error();
            return ReplayStatus::kError;
          }
          continue;
      }
    }
    // Live mode, or neither (back_to_store() failed): the store again.
    if (!c.ring) {
      if (auto r = c.back_to_store(); !r) return ReplayStatus::kError;
      continue;
    }
    Record rec;
    const uint64_t now = steady_ns();
    // The ring reader's counts before this read: a record after a hole that it counted
    // wholly as gaps, with no loss, follows claims nothing was published under (below).
    // The ring reader must owe this replay exactly its next sequence (a "deleted" report
    // moves the replay's next without moving the reader, whose gaps below it would count:
    // a review).
    const uint64_t gaps_before = c.ring->gaps(), lost_before = c.ring->lost();
    const bool ring_at_next = c.next_known && c.ring->next_seq() == c.next;
    ReadStatus st = c.ring->poll(&rec, std::chrono::nanoseconds(deadline > now ? deadline - now : 0));
    if (st == ReadStatus::kTimeout) {
      // Nothing missing before the live end: the switch holds.
      if (c.switch_pending) ++c.switches;
      c.switch_pending = false;
      return ReplayStatus::kTimeout;
    }
    if (st == ReadStatus::kClosed) return ReplayStatus::kClosed;
    if (st == ReadStatus::kCorrupt) {
      c.error = make_error(Errc::kCorrupt, "the ring holds corrupt bytes");
      return ReplayStatus::kError;
    }
    // A start below the ring's oldest record: the record that comes next decides (below).
    if (st == ReadStatus::kBeforeOldest) {
      c.left_ring = c.ring->last_loss();
      continue;
    }
    if (st == ReadStatus::kLapped) {
      if (!c.next_known) continue;  // nothing owed yet: take what comes
      if (c.has_store()) {
        // The ring overran us; what we still owe is in the store.
        if (auto r = c.back_to_store(); !r) return ReplayStatus::kError;
        continue;
      }
      // The ring resumes at its oldest record: lost is what lies between.  (It may also
      // resume below `next`, when it was overrun while skipping to the start: no loss.)
      if (c.ring->next_seq() <= c.next) continue;
      return c.report_gap(c.next, c.ring->next_seq(), "lost (lapped on a stream that is not persisted)");
    }
    if (!c.next_known && c.recheck_store) {
      c.recheck_store = false;
      auto older = c.store_has_older(rec.seq, deleted);
      if (!older) {
        c.error = older.error();
        return ReplayStatus::kError;
      }
      if (*older) {  // read the store first: poll() delivers what store_has_older() saw
        if (auto r = c.open_store_at(0); !r) {
          c.error = r.error();
          return ReplayStatus::kError;
        }
        continue;
      }
    }
    if (c.next_known && rec.seq < c.next) continue;  // never twice
    if (c.next_known && rec.seq > c.next) {
      if (ring_at_next && c.ring->lost() == lost_before && c.ring->gaps() >= gaps_before &&
          c.ring->gaps() - gaps_before == rec.seq - c.next) {
        // The ring reader stepped over exactly these sequences as gaps (aborted claims, or
        // dead producers' claims) when it read this record: nothing was published under
        // them, stored or not (it said "not persisted" after the store's end with no
        // persister attached, and `tail` printed a loss that was none: a review).
        if (c.switch_pending) ++c.switches;  // live from here on, after the gap
        c.switch_pending = false;
        return c.hold_and_report_gap(rec, "never published (claims aborted or abandoned)", true);
      }
      if (c.has_store()) {
        // The ring has let `next` go: the store should have it by now.  If it did not have
        // it a moment ago either and no persister is attached to store it, it never will.
        const bool again = c.bounced_at == c.next;
        if (again && !c.persister_attached()) {
          if (c.switch_pending) ++c.switches;  // live from here on, after the gap
          c.switch_pending = false;
          return c.hold_and_report_gap(rec, "not persisted");
        }
        if (auto r = c.back_to_store(); !r) return ReplayStatus::kError;
        if (again && steady_ns() >= deadline) return ReplayStatus::kTimeout;
        continue;
      }
      // Inside what the ring said had left it after a start below its oldest record
      // (left_ring): not dead producers' claims, as it used to say (a review).
      if (c.next >= c.left_ring.from && rec.seq <= c.left_ring.to)
        return c.hold_and_report_gap(rec, "no longer in the ring (the stream is not persisted)");
      return c.hold_and_report_gap(rec, "gap in the ring (claims of dead producers)");
    }
    if (rec.ts_ns < c.skip_ts) continue;
    c.skip_ts = 0;
    if (rec.seq < deleted) continue;
    if (c.switch_pending) ++c.switches;
    c.switch_pending = false;
    return c.deliver(rec, out);
  }
}

const ReplayGap& ReplayConsumer::gap() const noexcept { return impl_->gap; }
const Error& ReplayConsumer::error() const noexcept { return impl_->error; }
uint64_t ReplayConsumer::next_seq() const noexcept { return impl_ ? impl_->next : 0; }
bool ReplayConsumer::from_store() const noexcept { return impl_ && impl_->reader.has_value(); }
NameState ReplayConsumer::name_state() const noexcept {
  if (!impl_) return NameState::kSame;
  if (impl_->ring && !impl_->reader) return impl_->ring->name_state();
  return impl_->ctl ? NameState::kSame : NameState::kRemoved;
}
uint64_t ReplayConsumer::switches_to_live() const noexcept { return impl_ ? impl_->switches : 0; }

}  // namespace shmbus::persist
