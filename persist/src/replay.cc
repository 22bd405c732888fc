// replay.cc: a consumer that starts in the store and lands on the live ring.
//
// Store mode reads the segments from `next`.  At the end of what is stored it opens a
// tailing ring consumer that skips everything below `next`; the first record it returns
// decides: seq == next, and we are live with no gap and no duplicate; seq > next (or a
// lap), and the ring has already let `next` go, which on a persisted stream means the
// store has it by now: back to store mode.
#include "shmbus/persister.h"

#include <thread>

namespace shmbus::persist {

struct ReplayConsumer::Impl {
  std::string ns, stream;
  ReplayOptions opts;
  std::optional<StreamControl> ctl;     // read-only: the watermark and the store's place
  std::optional<SegmentReader> reader;  // store mode when set
  std::optional<Consumer> ring;         // live mode when set
  std::string store_root;               // empty: the stream is not persisted
  uint64_t next = 0;                    // the sequence we owe the user next
  bool next_known = false;              // false until the first record fixes it
  uint64_t skip_ts = 0;                 // @TIME start: skip records older than this
  uint64_t switches = 0;
  ReplayGap gap;
  Error error{Errc::kIo, ""};
  Record held;                          // a ring record read while deciding to switch
  bool have_held = false;

  Result<void> open_store_at(uint64_t seq);
  // From live back to the store at `next`.  When the persister has not written that far
  // yet, the store ends at once and we bounce: nap briefly so that it can catch up.
  Result<void> back_to_store() {
    if (bounced_at == next) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    bounced_at = next;
    auto r = open_store_at(next);
    if (!r) error = r.error();
    return r;
  }
  uint64_t bounced_at = ~0ULL;
  Result<void> go_live();
  ReplayStatus deliver(const Record& r, Record* out);
  ReplayStatus report_gap(uint64_t from, uint64_t to, std::string reason) {
    gap = ReplayGap{from, to, std::move(reason)};
    next = to;
    return ReplayStatus::kGap;
  }
};

Result<void> ReplayConsumer::Impl::open_store_at(uint64_t seq) {
  ring.reset();
  auto r = SegmentReader::open(store_root, ns, stream);
  if (!r) return r.error();
  reader.emplace(std::move(r.value()));
  if (!next_known) {
    if (opts.start.kind == StartFrom::Kind::kTime) return reader->seek_time(opts.start.value);
    return reader->seek_earliest();
  }
  return reader->seek_seq(seq);
}

Result<void> ReplayConsumer::Impl::go_live() {
  ConsumerOptions co;
  co.wait = opts.wait;
  co.read_only = opts.read_only;
  co.start = next_known ? StartFrom::seq(next)
                        : opts.start.kind == StartFrom::Kind::kTime ? StartFrom::time_ns(opts.start.value)
                                                                     : opts.start;
  auto c = Consumer::open(ns, stream, co);
  if (!c) return c.error();
  ring.emplace(std::move(c.value()));
  reader.reset();
  ++switches;
  return {};
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
  if (!ctl) return ctl.error();
  c.ctl.emplace(std::move(ctl.value()));
  if (auto ps = c.ctl->persist()) {
    // store_dir is ROOT/NS/STREAM: the reader wants ROOT.
    const std::string suffix = "/" + std::string(ns) + "/" + std::string(stream);
    if (ps->store_dir.size() > suffix.size() &&
        ps->store_dir.compare(ps->store_dir.size() - suffix.size(), suffix.size(), suffix) == 0)
      c.store_root = ps->store_dir.substr(0, ps->store_dir.size() - suffix.size());
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
  }
  bool from_store = false;
  if (!c.store_root.empty() && want_history) {
    // Start in the store when it holds something at or after the start point that the
    // ring may no longer have; the switch logic sorts out the rest.
    if (auto r = c.open_store_at(c.next); r) from_store = true;
    else if (r.error().code != Errc::kNotFound) return r.error();
  }
  if (!from_store) {
    if (auto r = c.go_live(); !r) return r.error();
    c.switches = 0;
  }
  return ReplayConsumer(std::move(impl));
}

ReplayStatus ReplayConsumer::poll(Record* out, std::chrono::nanoseconds timeout) {
  if (!impl_) return ReplayStatus::kClosed;
  Impl& c = *impl_;
  const uint64_t deleted = c.ctl->deleted_below();
  if (c.next_known && c.next < deleted) return c.report_gap(c.next, deleted, "deleted");
  for (;;) {
    if (c.reader) {
      auto e = c.reader->next();
      if (!e) {
        c.error = e.error();
        return ReplayStatus::kError;
      }
      switch (e->kind) {
        case EntryKind::kRecord: {
          if (c.next_known && e->seq < c.next) continue;  // before the start point
          if (e->seq < deleted) continue;
          if (e->ts_ns < c.skip_ts) continue;
          c.skip_ts = 0;
          if (c.next_known && e->seq > c.next) {
            // The store starts later than asked (older records were never stored).
            return c.report_gap(c.next, e->seq, "not in the store");
          }
          Record r;
          r.seq = e->seq;
          r.ts_ns = e->ts_ns;
          r.type = e->type;
          r.data = e->data;
          return c.deliver(r, out);
        }
        case EntryKind::kLost:
        case EntryKind::kDeleted:
        case EntryKind::kCorrupt: {
          if (c.next_known && e->end_seq <= c.next) continue;
          const uint64_t from = c.next_known ? std::max(c.next, e->seq) : e->seq;
          c.next_known = true;
          return c.report_gap(from, e->end_seq,
                              e->kind == EntryKind::kLost      ? "not persisted"
                              : e->kind == EntryKind::kDeleted ? "deleted"
                                                               : "corrupt in the store: " + e->detail);
        }
        case EntryKind::kEnd:
          // Everything stored is read: try the live ring.
          if (auto r = c.go_live(); !r) {
            c.error = r.error();
            return ReplayStatus::kError;
          }
          continue;
      }
    }
    // Live mode.
    Record rec;
    if (c.have_held) {
      c.have_held = false;
      rec = c.held;
    } else {
      ReadStatus st = c.ring->poll(&rec, timeout);
      if (st == ReadStatus::kTimeout) return ReplayStatus::kTimeout;
      if (st == ReadStatus::kClosed) return ReplayStatus::kClosed;
      if (st == ReadStatus::kCorrupt) {
        c.error = make_error(Errc::kCorrupt, "the ring holds corrupt bytes");
        return ReplayStatus::kError;
      }
      if (st == ReadStatus::kLapped) {
        if (!c.next_known) continue;  // nothing owed yet: take what comes
        if (!c.store_root.empty()) {
          // The ring overran us; what we still owe is in the store.
          if (auto r = c.back_to_store(); !r) return ReplayStatus::kError;
          continue;
        }
        const uint64_t from = c.next;
        return c.report_gap(from, c.ring->next_seq(), "lost (lapped on a stream that is not persisted)");
      }
    }
    if (c.next_known && rec.seq < c.next) continue;  // never twice
    if (c.next_known && rec.seq > c.next) {
      if (!c.store_root.empty()) {
        if (auto r = c.back_to_store(); !r) return ReplayStatus::kError;
        continue;
      }
      c.held = rec;  // deliver it after the gap
      c.have_held = true;
      return c.report_gap(c.next, rec.seq, "gap in the ring (claims of dead producers)");
    }
    if (rec.ts_ns < c.skip_ts) continue;
    c.skip_ts = 0;
    if (rec.seq < deleted) continue;
    return c.deliver(rec, out);
  }
}

const ReplayGap& ReplayConsumer::gap() const noexcept { return impl_->gap; }
const Error& ReplayConsumer::error() const noexcept { return impl_->error; }
uint64_t ReplayConsumer::next_seq() const noexcept { return impl_ ? impl_->next : 0; }
bool ReplayConsumer::from_store() const noexcept { return impl_ && impl_->reader.has_value(); }
uint64_t ReplayConsumer::switches_to_live() const noexcept { return impl_ ? impl_->switches : 0; }

}  // namespace shmbus::persist
