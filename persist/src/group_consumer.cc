// group_consumer.cc: a durable group that takes from the store what the ring lost.
//
// Ring mode: the group's Consumer.  When it reports a loss [from, to) (kEvicted,
// kBeforeOldest) and the stream is persisted, a SegmentReader reads [from, to) from the
// store; then back to the ring, whose next record is `to` (the ring consumer resumes
// there: it has not returned it yet).  Until then the records of [from, to) not returned
// yet stay owed to the group (Consumer::still_owed()): a commit or a close while reading
// the store leaves them to the group's next holder, which reads them from the store too.
#include <algorithm>
#include <optional>
#include <utility>

#include "shmbus/persister.h"
#include "shmbus/detail/stream_control.h"
#include "start_point.h"
#include "store_path.h"

namespace shmbus::persist {

struct GroupConsumer::Impl {
  std::string ns, stream;
  std::optional<Consumer> ring;
  std::string store_root;               // empty: the stream is not persisted
  // The header (read only), for its deletion watermark: mapped while the store is read
  // (a second mapping of the stream only then).  On a ring others can write it is not the
  // store owner's word: the store's own watermark is then (deleted_below_for_store()).
  std::optional<StreamControl> ctl;
  uint64_t header_watermark() {
    if (!ctl)
      if (auto c = StreamControl::open(ns, stream, true); c) ctl.emplace(std::move(c.value()));
    return ctl ? ctl->deleted_below_for_store() : 0;
  }
  bool auto_commit = true;              // ConsumerOptions::auto_commit, for store records
  bool returned_from_store = false;     // the last poll returned a store record
  std::optional<SegmentReader> reader;  // store mode while set: records below `end`
  uint64_t next = 0;                    // store mode: the sequence owed next
  uint64_t end = 0;                     // store mode: where the ring continues
  Loss loss;
  Error error{Errc::kIo, ""};
  // Of the ring's lost(): records the store supplied, or deleted ones (lost() is the rest).
  uint64_t not_lost = 0;

  // Store mode: the next record below `end`, a hole reported as a loss, or kTimeout when
  // the store has nothing more below `end` (back to the ring).
  ReadStatus read_store(Record* out);
  ReadStatus kind = ReadStatus::kEvicted;  // the status holes in store mode are reported as
  // Of [from, to), a range the store deleted, what is not a loss: all of it for a start
  // below the ring (kBeforeOldest: records asked for that no longer exist), and what lies
  // below the stream's deletion watermark (`delete --before`: never served to anyone).
  // Records that retention deleted before an evicted group read them are lost to it.
  uint64_t deleted_not_lost(uint64_t from, uint64_t to) {
    if (kind == ReadStatus::kBeforeOldest) return to - from;
    const uint64_t wm = header_watermark();
    return from < wm ? std::min(to, wm) - from : 0;
  }
  // A hole [from, to) in the store: lost for good, or deleted (see deleted_not_lost()),
  // which is reported but not counted as a loss.
  ReadStatus hole(uint64_t from, uint64_t to, bool ends_store, bool deleted = false) {
    const uint64_t del = deleted ? deleted_not_lost(from, to) : 0;
    loss = Loss{from, to, to - from - del, false, del};
    // (Inside a range the ring counted lost and not_lost counted as coming from the store.)
    not_lost -= std::min(not_lost, loss.lost);
    next = to;
    if (ends_store || next >= end) reader.reset();
    owe();
    return kind;
  }
  // What the group is owed: the store's records from `next` (none once it is done).
  bool owing = false;  // still_owed() was told of a store read still to finish
  // A store read that failed: the next read reports [next, skip_to) lost (the reader
  // stands at skip_to, past what it could not read; `end` when it could not move on).
  uint64_t skip_to = 0;
  void owe() {
    owing = reader.has_value();
    ring->still_owed(owing ? next : ~0ULL);
  }
  // Where a group starts (a new one, or one reset or sought there) on a persisted
  // stream: `earliest` is the oldest record of the store and the ring together, as
  // Kafka's earliest is the log's start (the store's first record when it is older than
  // the ring's oldest, else the ring's: retention may have deleted from the store what
  // the ring still holds); a time older than the ring is looked up in the store.  A start
  // below the ring then reads the store first (kBeforeOldest), and what the store lacks in
  // between is reported as a loss.  Anything else: `where` as given, for the ring.
  StartFrom store_start(StartFrom where) const;
};

StartFrom GroupConsumer::Impl::store_start(StartFrom where) const {
  if (store_root.empty()) return where;
  if (where.kind != StartFrom::Kind::kEarliest && where.kind != StartFrom::Kind::kTime)
    return where;
  auto info = stream_info(ns, stream);
  if (!info) return where;
  if (auto s = detail::store_start_seq(store_root, ns, stream, where); s && *s < info->oldest_seq)
    return StartFrom::seq(*s);
  // The ring has it.  Earliest as the sequence it is now: a ring that moves on before
  // the group registers then reports what it passed (kBeforeOldest), which the store has,
  // instead of skipping it unsaid.
  if (where.kind == StartFrom::Kind::kEarliest) return StartFrom::seq(info->oldest_seq);
  return where;
}

ReadStatus GroupConsumer::Impl::read_store(Record* out) {
  if (reader && skip_to > next) {
    const uint64_t to = std::min(skip_to, end);
    skip_to = 0;
    return hole(next, to, to >= end);
  }
  while (reader && next < end) {
    auto e = reader->next();
    if (!e) {
      // A segment that cannot be read: the next read reports what the reader skipped
      // (up to where it stands past the segment), or, if it could not move on, the rest
      // of [next, end), as a counted loss: never dropped without a word, and every
      // failure moves `next` on (no endless kCorrupt).  Owed meanwhile.
      error = e.error();
      skip_to = reader->position() > next ? reader->position() : end;
      return ReadStatus::kCorrupt;
    }
    switch (e->kind) {
      case EntryKind::kRecord:
        if (e->seq < next) continue;
        // Below the header's deletion watermark: `delete --before` raised it before it
        // returned, while the store's reader looks at its own watermark file only every
        // 10 ms and served deleted records meanwhile (a review: hundreds to thousands of
        // them).  Reported deleted, as a range the store deleted is.
        if (const uint64_t wm = header_watermark(); e->seq < wm) {
          const uint64_t to = std::min(wm, end);
          const ReadStatus st = hole(next, to, to >= end, /*deleted=*/true);
          if (reader && !reader->seek_seq(next)) reader.reset();
          return st;
        }
        if (e->seq > next) {
          // A hole, then this record: the reader moved past it, so it goes back to it.
          const ReadStatus st = hole(next, std::min(e->seq, end), false);
          if (reader && !reader->seek_seq(next)) reader.reset();
          return st;
        }
        if (e->seq >= end) break;
        // (The reader stays open until the next poll: the record's view is into it.)
        next = e->seq + 1;
        owe();  // (a commit now: this record was returned)
        out->seq = e->seq;
        out->ts_ns = e->ts_ns;
        out->type = e->type;
        out->data = e->data;
        return ReadStatus::kOk;
      case EntryKind::kSkipped:
        // Nothing was published there: on, as the ring's readers go past a gap.
        if (e->end_seq > next) next = std::min(e->end_seq, end);
        continue;
      case EntryKind::kLost:
      case EntryKind::kDeleted:
      case EntryKind::kCorrupt:
        if (e->end_seq <= next) continue;
        return hole(std::max(next, e->seq), std::min(e->end_seq, end), false,
                    e->kind == EntryKind::kDeleted);
      case EntryKind::kEnd:
        // The store ends before `end`: the persister never stored the rest.
        return hole(next, end, true);
    }
    break;
  }
  reader.reset();
  owe();
  return ReadStatus::kTimeout;  // nothing more from the store: back to the ring
}

GroupConsumer::GroupConsumer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GroupConsumer::GroupConsumer(GroupConsumer&&) noexcept = default;
GroupConsumer& GroupConsumer::operator=(GroupConsumer&&) noexcept = default;
GroupConsumer::~GroupConsumer() = default;

Result<GroupConsumer> GroupConsumer::open(std::string_view ns, std::string_view stream,
                                          const ConsumerOptions& opts, std::string_view data_dir) {
  (void)data_dir;  // a group needs the ring: the store's place comes from its header
  auto impl = std::make_unique<Impl>();
  impl->ns = ns;
  impl->stream = stream;
  if (auto ctl = StreamControl::open(ns, stream, true); ctl) {
    if (auto ps = ctl->persist())
      if (auto root = detail::store_root_of(ps->store_dir, ns, stream)) impl->store_root = *root;
  }
  impl->auto_commit = opts.auto_commit;
  ConsumerOptions o = opts;
  // (A new group's default start, kCommitted, is the earliest record.)
  if (!o.group.empty() && o.start.kind == StartFrom::Kind::kCommitted && !o.reset)
    o.start = StartFrom::earliest();
  if (!o.group.empty()) o.start = impl->store_start(o.start);
  auto c = Consumer::open(ns, stream, o);
  if (!c) return c.error();
  impl->ring.emplace(std::move(c.value()));
  return GroupConsumer(std::move(impl));
}

ReadStatus GroupConsumer::poll(Record* rec, std::chrono::nanoseconds timeout) {
  if (!impl_) return ReadStatus::kClosed;
  Impl& c = *impl_;
  // What the last poll returned from the store is committed now, as the ring's consumer
  // commits what its last poll returned: the records still owed (Consumer::still_owed())
  // reach the group's slot.  Before, only commit() or close() wrote them, and a holder
  // killed while it read the store left the whole range to the next one (a review: 13 000
  // records delivered twice).
  if (std::exchange(c.returned_from_store, false) && c.auto_commit) c.ring->commit();
  if (c.reader) {
    const ReadStatus st = c.read_store(rec);
    c.returned_from_store = st == ReadStatus::kOk;
    if (st != ReadStatus::kTimeout) return st;
  }
  c.ctl.reset();  // (the store is done with)
  if (c.owing) c.owe();  // the store's part is done: nothing more owed
  const uint64_t lost_before = c.ring->lost();
  const ReadStatus st = c.ring->poll(rec, timeout);
  if (st != ReadStatus::kEvicted && st != ReadStatus::kBeforeOldest) return st;
  const LossRange r = c.ring->last_loss();
  // What the ring counted lost for this range: its length less the gaps (aborted claims)
  // in it, which it never counts.  What the store supplies is taken off that, not off
  // the length (a review: lost() said 0 where 46 records were lost, the 50 aborted
  // claims in the range paying for them).
  const uint64_t counted = c.ring->lost() - std::min(c.ring->lost(), lost_before);
  c.loss = Loss{r.from, r.to, r.count(), false, 0};
  c.kind = st;
  if (c.store_root.empty() || r.count() == 0) return st;
  auto reader = SegmentReader::open(c.store_root, c.ns, c.stream);
  if (!reader) return st;  // no store (yet): lost for good
  if (auto s = reader->seek_seq(r.from); !s) return st;
  c.reader.emplace(std::move(reader.value()));
  c.next = r.from;
  c.end = r.to;
  // What the store has is read next; the first entry says whether it starts at `from`.
  auto e = c.reader->next();
  if (!e) {
    // A segment that cannot be read where the loss starts: the reader moved past it (the
    // rest comes from the store, what it skipped is lost), or, stuck, all of it is lost.
    c.error = e.error();
    const uint64_t past = c.reader->position();
    if (past <= r.from || past >= r.to || !c.reader->seek_seq(past)) {
      c.reader.reset();
      return st;
    }
    c.loss.lost = past - r.from;
    c.loss.from_store = true;
    c.not_lost += counted - std::min(counted, c.loss.lost);
    c.next = past;
    c.owe();
    return st;
  }
  // The store holds the start: a record, or a skipped range (claims aborted or abandoned:
  // nothing published there, nothing lost; a review found it counted as lost).
  if ((e->kind == EntryKind::kRecord && e->seq == r.from) ||
      (e->kind == EntryKind::kSkipped && e->seq <= r.from && e->end_seq > r.from)) {
    // Read it again from the start (its view would be gone by the next poll otherwise).
    if (auto s = c.reader->seek_seq(r.from); !s) {
      c.reader.reset();
      return st;
    }
    c.loss.lost = 0;
    c.loss.from_store = true;
    c.not_lost += counted;
    c.owe();
    return st;
  }
  // The store lacks the start: that much is lost (or was deleted: below the watermark,
  // skipped without counting a loss); the rest (if any) follows.
  uint64_t gap_end = r.to;
  if (e->kind == EntryKind::kRecord && e->seq > r.from) gap_end = std::min(e->seq, r.to);
  else if (e->kind != EntryKind::kEnd) gap_end = std::min(std::max(e->end_seq, r.from), r.to);
  c.loss.deleted = e->kind == EntryKind::kDeleted ? c.deleted_not_lost(r.from, gap_end) : 0;
  c.loss.lost = gap_end - r.from - c.loss.deleted;
  c.loss.from_store = gap_end < r.to;
  c.not_lost += counted - std::min(counted, c.loss.lost);
  c.next = gap_end;
  if (!c.loss.from_store || !c.reader->seek_seq(gap_end)) c.reader.reset();
  c.owe();
  return st;
}

const GroupConsumer::Loss& GroupConsumer::loss() const noexcept { return impl_->loss; }
uint64_t GroupConsumer::lost() const noexcept {
  if (!impl_) return 0;
  const uint64_t ring = impl_->ring->lost();
  return ring - std::min(ring, impl_->not_lost);
}
void GroupConsumer::defer_loss() noexcept {
  if (impl_) impl_->ring->still_owed(impl_->loss.from);
}
void GroupConsumer::loss_told() noexcept {
  if (impl_) impl_->owe();  // what the store is still to give, if anything
}
const Error& GroupConsumer::error() const noexcept { return impl_->error; }
void GroupConsumer::commit() noexcept {
  if (impl_) impl_->ring->commit();
}
Result<void> GroupConsumer::seek(StartFrom where) {
  if (!impl_) return make_error(Errc::kClosed, "consumer is closed");
  Impl& c = *impl_;
  c.reader.reset();
  c.owing = false;
  c.skip_to = 0;
  c.next = c.end = 0;
  c.loss = Loss{};
  c.not_lost = 0;  // (the ring's lost() starts again too)
  return c.ring->seek(c.store_start(where));
}
Consumer& GroupConsumer::ring() noexcept { return *impl_->ring; }
bool GroupConsumer::from_store() const noexcept { return impl_ && impl_->reader.has_value(); }

}  // namespace shmbus::persist
