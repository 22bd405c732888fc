// reader.cc: SegmentReader: iterating one stream's records across segments.
//
// Position model: `pos` is the next sequence next() may return; `off` is the offset of
// the next frame in the open segment and `scan_seq` the sequence that frame must
// carry (scan_seq <= pos: frames wholly below pos are skipped silently, which is how a
// seek lands between two index entries).
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include "coding.h"
#include "format.h"
#include "fs.h"
#include "index.h"
#include "scan.h"
#include "shmbus/persist.h"
#include "store_path.h"
#include "watermark.h"

namespace shmbus::persist {

using namespace detail;

const char* entry_kind_name(EntryKind k) noexcept {
  switch (k) {
    case EntryKind::kRecord: return "record";
    case EntryKind::kLost: return "lost";
    case EntryKind::kSkipped: return "skipped";
    case EntryKind::kDeleted: return "deleted";
    case EntryKind::kCorrupt: return "corrupt";
    case EntryKind::kEnd: return "end";
  }
  return "unknown";
}

namespace {
// A delete_before() made while a reader is inside a segment reaches it within this
// time (it is also re-read after every listing of the segments).
uint64_t g_watermark_recheck_ns = 10'000'000;

// The clock of that interval, read on every next(): CLOCK_MONOTONIC_COARSE costs a load
// from the vDSO page, where CLOCK_REALTIME reads the TSC (about a fifth of the time a
// 1 KiB replay spent per record), and does not jump with the wall clock.  It advances in
// ticks (1-4 ms): a deletion reaches a reader within the interval plus one tick.
uint64_t recheck_clock_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}
}  // namespace

uint64_t detail::watermark_recheck_ns() { return g_watermark_recheck_ns; }
void detail::set_watermark_recheck_ns_for_testing(uint64_t ns) { g_watermark_recheck_ns = ns; }

struct SegmentReader::Impl {
  std::string where;
  std::string ns, stream;  // checked against every segment header
  UniqueFd dir;
  std::vector<uint64_t> segs;  // first sequences, as last listed
  Watermark wm;

  std::optional<SegmentFile> file;  // the open segment
  // A batch frame (format version 2) served a record at a time: its payload, a view of
  // the file's window (valid while no other call is made on `file`: next() serves it
  // before anything else, and drop_file() forgets it), the offset of its next
  // sub-record and that record's sequence, up to batch_end (the frame's end_seq).
  // `off` and `scan_seq` are already past the frame.
  Bytes batch;
  size_t batch_at = 0;
  uint64_t batch_seq = 0, batch_end = 0;
  void drop_file() {
    file.reset();
    batch = {};
    batch_seq = batch_end = 0;
  }
  uint64_t seg_first = 0;
  std::optional<IndexFile> idx;     // its index, when usable
  uint64_t idx_size_looked = 0;     // its index file's size when zeros last made us look
  // Zeros at `off` in the live segment: its end (a pmem segment's unused room), or damage
  // with records after it?  Damage only if an index entry lies past them (the writer
  // indexes a frame only after the frames before it are written): the index held says
  // so, or its file's last entry does.  That is read only when the file's size changed
  // since the last look (a stat per poll at the live end; a pread of one entry per flush
  // of the writer; never the whole index, nor again for a damaged one that does not grow).
  bool zeros_may_be_damage() {
    if (idx && !idx->entries.empty() && idx->entries.back().offset > off) return true;
    struct stat st {};
    if (::fstatat(dir.get(), index_file_name(seg_first).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return false;
    const auto size = static_cast<uint64_t>(st.st_size);
    if (size == idx_size_looked) return false;
    idx_size_looked = size;
    const std::optional<uint64_t> last = last_entry_offset(dir.get(), seg_first, size);
    return !last || *last > off;  // not intact: let the full read decide
  }
  uint64_t seg_created_ns = 0;      // of the open segment (its index must match)
  uint64_t off = 0;
  uint64_t scan_seq = 0;
  uint64_t pos = 0;
  uint64_t skipped_first = 0;  // skipped_segment_first(): set by locate(), cleared by next()
  uint64_t wm_checked_ns = 0;  // when the watermark was last read (recheck_clock_ns)
  // A clean segment end at `pos` with a later next segment is looked at again once,
  // from a fresh listing and open, before it is reported: the `pos` of that look.
  static constexpr uint64_t kNoHole = UINT64_MAX;
  uint64_t hole_checked_at = kNoHole;
  uint64_t damage_checked_at = kNoHole;  // skip_damage() relocated once at this position
  uint64_t repair_tried_at = kNoHole;    // skip_claimed() tried a frame's repair at this offset
  uint64_t repaired = 0;                 // ... and found this span (0: none)
  bool ts_mode = false;  // skipping records older than ts_target (after seek_time)
  uint64_t ts_target = 0;
  // The last segment's header that did not decode: its first sequence, its bytes, and
  // since when (recheck_clock_ns()).  A writer creating the segment writes its header with one
  // pwrite, which a concurrent read can see in part (the page cache copies it while the
  // write copies in: test Reader.TailsAWriterThreadWithoutGapsOrDamage failed here about
  // once in 1000 runs with the cores busy, "damaged header (CRC mismatch)").  A header
  // read in part holds, at every byte, either what the writer writes there or the zero
  // that was there before; the reader knows all of it but the creation time and the CRC
  // (torn_header()).  Such a header is "nothing more yet" until the same bytes have
  // failed for kHeaderSettleNs; any other is damage at once.
  static constexpr uint64_t kHeaderSettleNs = 1'000'000'000;
  bool torn_header(Bytes head, uint64_t first) const {
    std::byte want[kSegmentHeaderSize];
    const uint64_t created = head.size() >= kHdrCreatedNs + 8 ? get_u64(head.data() + kHdrCreatedNs) : 0;
    encode_new_segment_header(first, created, ns, stream, want);
    const size_t n = std::min<size_t>(head.size(), kHdrCrc);
    for (size_t i = 0; i < n; ++i)
      if (head[i] != std::byte{0} && head[i] != want[i]) return false;
    return true;
  }
  uint64_t bad_head_first = kNoHole;
  std::vector<std::byte> bad_head;
  uint64_t bad_head_since = 0;
  // true while the last segment's undecodable header may still be being written.
  bool header_in_flux(uint64_t first, Bytes head) {
    const uint64_t now = recheck_clock_ns();
    if (bad_head_first != first ||
        !std::equal(head.begin(), head.end(), bad_head.begin(), bad_head.end())) {
      bad_head_first = first;
      bad_head.assign(head.begin(), head.end());
      bad_head_since = now;
      return true;
    }
    return now - bad_head_since < kHeaderSettleNs;
  }

  std::string seg_name(uint64_t first) const { return where + "/" + segment_file_name(first); }

  Result<void> relist() {
    auto l = list_segments(dir.get());
    if (!l) return l.error();
    segs = std::move(l.value());
    return {};
  }
  Result<void> reload_wm() {
    auto w = read_watermark(dir.get());
    if (!w) return w.error();
    wm = w.value();
    wm_checked_ns = recheck_clock_ns();
    return {};
  }
  std::optional<uint64_t> next_segment_after(uint64_t first) const {
    for (uint64_t s : segs)
      if (s > first) return s;
    return std::nullopt;
  }

  enum class Located { kOk, kNothing, kRetry };
  Result<Located> locate();
  Result<Entry> resync(FrameStatus st, uint64_t next_first, bool* returned);
  enum class Skip { kNone, kSkipped, kRetry };
  // relocate_first (the live segment): before the first report of damage at a position,
  // kRetry with the file closed, so that `pos` is found again by sequence (see next()).
  Result<Skip> skip_damage(FrameStatus st, Entry* e, bool* returned, bool relocate_first = false);
  // A frame whose checksum fails (or whose header repaired_span() repairs), whose header
  // is plausible, and right after the bytes that header claims a valid frame with a
  // later sequence: damage in between, whether or not an index entry says so (the
  // index has one per interval: a closed store's last records, or 23 intact records of a
  // sealed segment, were lost to one bad byte).
  // Never inside the claimed bytes (a payload may embed frames).  A writer fills a
  // segment in order, so a later frame visible means this one was written: the frame
  // is read again (after a refresh) before it is called damaged.
  Result<Skip> skip_claimed(FrameStatus st, Entry* e, bool* returned, bool relocate_first);
  // The common end of both: the bad frame at `off` (status `st`) is followed by an intact
  // frame of sequence `to_seq` at `to_off`.  Reads it again after a refresh (kRetry: it
  // has become valid), relocates once per position when relocate_first (kRetry, file
  // closed), else reports [pos, to_seq) kCorrupt in *e and goes on there (kSkipped).
  Result<Skip> skip_to(FrameStatus st, uint64_t to_off, uint64_t to_seq, Entry* e, bool* returned,
                       bool relocate_first);
  Result<Entry> next();
};

// Opens the segment that holds `pos` and positions at the best index entry.
Result<SegmentReader::Impl::Located> SegmentReader::Impl::locate() {
  if (auto r = relist(); !r) return r.error();
  if (auto r = reload_wm(); !r) return r.error();
  // Below the watermark (read after the listing, so it covers every segment deleted from
  // it): next() reports the range as deleted first.  Checked before `pos` is moved up to
  // the oldest segment below, which would otherwise skip the deleted range unreported.
  if (pos < wm.deleted_below) return Located::kRetry;
  if (segs.empty()) return Located::kNothing;
  size_t i = 0;
  while (i + 1 < segs.size() && segs[i + 1] <= pos) ++i;
  if (pos < segs[i]) pos = segs[i];  // below the oldest segment, above the watermark: never stored
  const uint64_t first = segs[i];
  const bool last = i + 1 == segs.size();
  // A segment that cannot be served: an error; past it first unless it is the last, so
  // that the next call goes on with the next segment.  But a segment deleted (and, with
  // secure_delete, zeroed first) between the listing and here is below the watermark
  // now: reported as deleted (kRetry), never as damage (found by a review).
  auto unservable = [&](Errc code, std::string what) -> Result<Located> {
    if (auto r = reload_wm(); !r) return r.error();
    if (pos < wm.deleted_below) return Located::kRetry;
    if (!last) {
      what += "; sequences [" + std::to_string(pos) + ", " + std::to_string(segs[i + 1]) +
              ") skipped";
      pos = segs[i + 1];
      skipped_first = first;
    }
    return make_error(code, "cannot read " + seg_name(first) + ": " + what);
  };
  auto f = SegmentFile::open(dir.get(), first);
  if (!f) {
    if (f.error().code == Errc::kNotFound) return Located::kRetry;
    // Not a regular file, a symbolic link, refused: moved past like a bad header (it once
    // stopped every later read at this position).  An I/O error (EMFILE, EIO) may pass:
    // the next call tries again.
    if (f.error().code == Errc::kIo) return f.error();
    return unservable(f.error().code, f.error().message);
  }
  auto head = f->header_bytes();
  if (!head) return head.error();
  if (last && header_not_written(head.value())) return Located::kNothing;  // being created
  auto hdr = decode_segment_header(head.value(), f->name());
  if (!hdr && last && torn_header(head.value(), first) && header_in_flux(first, head.value()))
    return Located::kNothing;  // being written: read in part
  if (!hdr || hdr->first_seq != first || hdr->ns != ns || hdr->stream != stream) {
    // A segment copied in from another stream is not served as this one's.
    std::string what = !hdr ? hdr.error().message
                       : hdr->first_seq != first
                           ? "it says it starts at sequence " + std::to_string(hdr->first_seq)
                           : "it belongs to stream " + hdr->ns + "/" + hdr->stream;
    return unservable(hdr ? Errc::kCorrupt : hdr.error().code, std::move(what));
  }
  drop_file();
  file.emplace(std::move(f.value()));
  file->set_version(hdr->version);
  repair_tried_at = kNoHole;  // (another file)
  seg_first = first;
  seg_created_ns = hdr->created_ns;
  off = kSegmentHeaderSize;
  scan_seq = first;
  idx.reset();
  idx_size_looked = 0;
  if (auto x = read_index(dir.get(), first, file->size()); x && x->header.created_ns == hdr->created_ns)
    idx = std::move(x.value());
  if (idx && !idx->entries.empty()) {
    const IndexEntry* e = floor_by_seq(idx->entries, pos);
    if (ts_mode) {
      const IndexEntry* t = last_older_than(idx->entries, ts_target);
      if (t && (!e || t->offset > e->offset)) e = t;
    }
    FrameView fv;
    if (e) {
      auto st = file->read_frame(e->offset, &fv);
      if (st && st.value() == FrameStatus::kOk && fv.h.seq == e->seq) {
        off = e->offset;
        scan_seq = e->seq;
        if (pos < scan_seq) pos = scan_seq;
      }
    }
  }
  return Located::kOk;
}

// A sealed segment stopped at `off` with `st`: decide what was lost and where to go on.
// Sets *returned when the result is an entry for the caller.
Result<Entry> SegmentReader::Impl::resync(FrameStatus st, uint64_t next_first, bool* returned) {
  *returned = false;
  Entry e;
  const std::string seg = seg_name(seg_first);
  bool clean = st == FrameStatus::kEof;
  if (st == FrameStatus::kZero) {
    auto z = file->zero_from(off);
    if (!z) return z.error();
    clean = z.value();
  }
  if (!clean) {
    auto k = skip_claimed(st, &e, returned, false);
    if (!k) return k.error();
    if (k.value() == Skip::kSkipped) return e;
  }
  if (!clean && idx) {
    auto k = skip_damage(st, &e, returned);
    if (!k) return k.error();
    if (k.value() == Skip::kSkipped) return e;
  }
  const uint64_t dropped = file->size() > off ? file->size() - off : 0;
  if (pos < next_first) {
    e = Entry{EntryKind::kCorrupt, pos, next_first, 0, 0, {}, clean ? 0 : dropped,
              clean ? "sequences missing between " + seg + " and the next segment"
                    : seg + " offset " + std::to_string(off) + ": " + frame_status_name(st) +
                          ", " + std::to_string(dropped) + " bytes skipped"};
    *returned = true;
    pos = next_first;
  }
  drop_file();
  return e;
}

// Damage with an intact frame after it: the first later index entry whose frame is
// intact (the index has one for the first frame after any damage) is where reading goes
// on; the sequences in between are reported kCorrupt.  In the live segment the index is
// read again first, and the frame at `off` too: the writer syncs a frame before it
// indexes a later one, so a frame still invalid after that is damage, not a write in
// progress (kRetry: it has become valid).
Result<SegmentReader::Impl::Skip> SegmentReader::Impl::skip_damage(FrameStatus st, Entry* e,
                                                                   bool* returned,
                                                                   bool relocate_first) {
  *returned = false;
  if (!idx) return Skip::kNone;
  for (const IndexEntry& ie : idx->entries) {
    if (ie.offset <= off || ie.seq < scan_seq) continue;
    FrameView fv;
    auto s = file->read_frame(ie.offset, &fv);
    if (!s) return s.error();
    if (s.value() != FrameStatus::kOk || fv.h.seq != ie.seq) continue;
    return skip_to(st, ie.offset, ie.seq, e, returned, relocate_first);
  }
  return Skip::kNone;
}

Result<SegmentReader::Impl::Skip> SegmentReader::Impl::skip_to(FrameStatus st, uint64_t to_off,
                                                               uint64_t to_seq, Entry* e,
                                                               bool* returned,
                                                               bool relocate_first) {
  FrameView fv;
  if (auto r = file->refresh(); !r) return r.error();
  auto again = file->read_frame(off, &fv);
  if (!again) return again.error();
  if (again.value() == FrameStatus::kOk && fv.h.seq == scan_seq) return Skip::kRetry;
  if (relocate_first && damage_checked_at != pos) {
    // The bytes at `off` may be another write of the same sequences: a writer that cut
    // the segment back (after a failed fdatasync) wrote from there again, maybe
    // otherwise (a lost-range marker, then later records), and grew the file past `off`
    // before this reader saw it shorter.  Found again by sequence, before damage is
    // reported (a review saw intact records 40 and 41 reported corrupt and skipped).
    damage_checked_at = pos;
    drop_file();
    return Skip::kRetry;
  }
  *e = Entry{EntryKind::kCorrupt, pos, to_seq, 0, 0, {}, to_off - off,
             seg_name(seg_first) + " offset " + std::to_string(off) + ": " +
                 frame_status_name(st) + ", " + std::to_string(to_off - off) + " bytes skipped"};
  *returned = pos < to_seq;
  off = to_off;
  scan_seq = to_seq;
  if (pos < scan_seq) pos = scan_seq;
  return Skip::kSkipped;
}

Result<SegmentReader::Impl::Skip> SegmentReader::Impl::skip_claimed(FrameStatus st, Entry* e,
                                                                    bool* returned,
                                                                    bool relocate_first) {
  *returned = false;
  if (st != FrameStatus::kBadCrc && st != FrameStatus::kShort && st != FrameStatus::kBadHeader &&
      st != FrameStatus::kBadLength)
    return Skip::kNone;
  // Past the length with one flipped bit undone, or with a valid kind and reserved field,
  // when that makes the CRC match (a header damaged on disk: the bytes a damaged length
  // claims may end inside its payload, at a frame embedded there), else past what the
  // header claims (scan.h).  The repair (up to 32 CRCs) is tried once per offset of the
  // open file, not at every poll of a reader waiting at a frame being written.
  if (repair_tried_at != off) {
    RepairBudget budget = RepairBudget::for_size(file->size());
    auto r = file->repaired_span(off, &budget);
    if (!r) return r.error();
    repair_tried_at = off;
    repaired = r.value();
  }
  uint64_t span = repaired;
  if (span == 0) {
    if (st != FrameStatus::kBadCrc) return Skip::kNone;  // a claim past the end: not judged here
    auto claim = file->claimed_span(off);
    if (!claim) return claim.error();
    span = claim.value();
  }
  const uint64_t at = off + span;
  if (span == 0 || at + kFrameHeaderSize > file->size()) return Skip::kNone;
  FrameView fv;
  auto after = file->read_frame(at, &fv);
  if (!after) return after.error();
  // (No sequence bound here: the frame after a damaged lost-range marker is as far on as
  // the marker said.)
  if (after.value() != FrameStatus::kOk || fv.h.seq <= scan_seq) return Skip::kNone;
  return skip_to(st, at, fv.h.seq, e, returned, relocate_first);
}

Result<Entry> SegmentReader::Impl::next() {
  bool refreshed = false;
  std::optional<uint64_t> next_first;  // the segment after this one, as seen at the refresh
  for (;;) {
    if (pos < wm.deleted_below) {
      Entry e{EntryKind::kDeleted, pos, wm.deleted_below, 0, 0, {}, 0,
              "deleted below sequence " + std::to_string(wm.deleted_below)};
      pos = wm.deleted_below;
      drop_file();  // relocate through the index
      if (!ts_mode) return e;
    }
    if (!file) {
      auto l = locate();
      if (!l) return l.error();
      if (l.value() == Located::kRetry) continue;
      if (l.value() == Located::kNothing) return Entry{};
      refreshed = false;
      if (pos < wm.deleted_below) continue;
    }
    if (recheck_clock_ns() - wm_checked_ns >= watermark_recheck_ns()) {
      if (auto r = reload_wm(); !r) return r.error();
      if (pos < wm.deleted_below) continue;
    }
    if (batch_seq < batch_end) {
      // The next record of the batch frame read last.
      SubRecord r;
      const uint64_t seq = batch_seq++;
      if (!next_sub_record(batch, &batch_at, &r)) {  // (decode_frame() walked them all)
        batch_seq = batch_end;
        continue;
      }
      if (seq < pos) continue;  // below the seek target
      pos = seq + 1;
      if (ts_mode && r.ts_ns < ts_target) continue;
      ts_mode = false;
      return Entry{EntryKind::kRecord, seq, seq + 1, r.ts_ns, r.type, r.data, 0, {}};
    }
    FrameView fv;
    FrameStatus s;
    if (auto in_window = file->frame_in_window(off, &fv)) {
      s = *in_window;
    } else {
      auto st = file->read_frame(off, &fv);
      if (!st) return st.error();
      s = st.value();
    }
    if (s == FrameStatus::kOk && fv.h.seq != scan_seq) s = FrameStatus::kBadSeq;
    if (s == FrameStatus::kOk) {
      refreshed = false;
      off += fv.size;
      scan_seq = fv.end_seq;
      if (fv.end_seq <= pos) continue;  // below the seek target
      if (fv.h.kind == FrameKind::kBatch) {  // served from the top of the loop
        batch = fv.payload;
        batch_at = 0;
        batch_seq = fv.h.seq;
        batch_end = fv.end_seq;
        hole_checked_at = kNoHole;
        continue;
      }
      const uint64_t from = std::max(fv.h.seq, pos);
      pos = fv.end_seq;
      hole_checked_at = kNoHole;
      // A time seek stops at the first *record* at or after the time: a lost-range marker
      // carries the writer's clock when it marked the range, not a record's stamp (one
      // once ended the seek, and older records followed it: found by a review).
      if (ts_mode && (fv.h.kind == FrameKind::kLost || fv.h.ts_ns < ts_target)) continue;
      ts_mode = false;
      if (fv.h.kind == FrameKind::kLost)
        return Entry{fv.h.type == kLostSkipped ? EntryKind::kSkipped : EntryKind::kLost, from, fv.end_seq,
                     fv.h.ts_ns, 0, {}, 0,
                     fv.h.type == kLostEndUnknown ? std::string(kEndUnknownDetail) : std::string()};
      return Entry{EntryKind::kRecord, fv.h.seq, fv.end_seq, fv.h.ts_ns, fv.h.type, fv.payload,
                   0, {}};
    }
    // No valid frame here: the live end of the last segment, or the end of (or damage
    // in) a sealed one.  List the segments, then look at this one again: a writer
    // completes a segment before it creates the next, so once a next segment is seen,
    // a second look at this one sees all of it.
    if (!refreshed) {
      if (auto r = relist(); !r) return r.error();
      next_first = next_segment_after(seg_first);
      // The watermark after the listing: a writer raises it before it deletes a segment,
      // so segments missing from this listing because they were deleted lie below the
      // value read now (reported kDeleted above, not as a hole).
      if (auto r = reload_wm(); !r) return r.error();
      auto size = file->refresh();
      if (!size) return size.error();
      refreshed = true;
      if (size.value() < off) {
        // Cut back under us (a writer going back to its last synced byte, to write the
        // same sequences again): find `pos` again by sequence.
        drop_file();
      }
      continue;
    }
    if (!next_first) {  // (the watermark was read after the listing, and checked above)
      // Damage inside the live segment rather than its end?  Its index says (skip_damage).
      // For zeros only when an entry may lie past them (zeros_may_be_damage): a zeroed
      // range inside the live segment once stopped readers there until it was sealed.
      if (s != FrameStatus::kEof && (s != FrameStatus::kZero || zeros_may_be_damage())) {
        if (auto x = read_index(dir.get(), seg_first, file->size());
            x && x->header.created_ns == seg_created_ns)
          idx = std::move(x.value());
        Entry e;
        bool returned = false;
        auto k = skip_claimed(s, &e, &returned, /*relocate_first=*/true);
        if (!k) return k.error();
        if (k.value() == Skip::kNone) {
          k = skip_damage(s, &e, &returned, /*relocate_first=*/true);
          if (!k) return k.error();
        }
        if (k.value() != Skip::kNone) {
          refreshed = false;
          if (returned) return e;
          continue;
        }
      }
      return Entry{};
    }
    if ((s == FrameStatus::kEof || s == FrameStatus::kZero) && pos < *next_first &&
        hole_checked_at != pos) {
      // A clean end with sequences missing before the next segment.  Before saying so,
      // look once more from scratch: the file we hold may no longer be the segment of
      // that name (a segment whose creation was never synced is removed and created
      // again by the writer; we may hold the first one), so list, open and seek `pos`
      // again.  Only a second clean end at the same place reports a hole.  (Damage is
      // judged by resync and skip_damage, which read the index again.)
      hole_checked_at = pos;
      drop_file();
      continue;
    }
    bool returned = false;
    auto e = resync(s, *next_first, &returned);
    if (!e) return e.error();
    refreshed = false;
    if (returned) return e;
  }
}

// ---- public ---------------------------------------------------------------------------

Result<SegmentReader> SegmentReader::open(std::string_view dir_root, std::string_view ns,
                                          std::string_view stream) {
  if (auto r = validate_name("namespace", ns); !r) return r.error();
  if (auto r = validate_name("stream", stream); !r) return r.error();
  auto impl = std::make_unique<Impl>();
  impl->where = std::string(dir_root) + "/" + std::string(ns) + "/" + std::string(stream);
  impl->ns = std::string(ns);
  impl->stream = std::string(stream);
  const std::string parts[] = {std::string(ns), std::string(stream)};
  auto dir = open_dir_path(dir_root, parts, /*create=*/false, Use::kRead);
  if (!dir) {
    if (dir.error().code == Errc::kNotFound)
      return make_error(Errc::kNotFound, "no stored data for stream '" + std::string(stream) +
                                             "' in namespace '" + std::string(ns) + "' under " +
                                             std::string(dir_root));
    return dir.error();
  }
  impl->dir = std::move(dir.value());
  SegmentReader reader(std::move(impl));
  if (auto r = reader.seek_earliest(); !r) return r.error();
  return reader;
}

SegmentReader::SegmentReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SegmentReader::SegmentReader(SegmentReader&&) noexcept = default;
SegmentReader& SegmentReader::operator=(SegmentReader&&) noexcept = default;
SegmentReader::~SegmentReader() = default;

Result<void> SegmentReader::seek_earliest() {
  Impl& s = *impl_;
  if (auto r = s.relist(); !r) return r;
  if (auto r = s.reload_wm(); !r) return r;
  s.drop_file();
  s.hole_checked_at = Impl::kNoHole;
  s.ts_mode = false;
  s.pos = std::max(s.wm.deleted_below, s.segs.empty() ? uint64_t{0} : s.segs.front());
  return {};
}

Result<void> SegmentReader::seek_seq(uint64_t seq) {
  Impl& s = *impl_;
  if (auto r = s.reload_wm(); !r) return r;
  s.drop_file();
  s.hole_checked_at = Impl::kNoHole;
  s.ts_mode = false;
  s.pos = seq;  // next() reports [seq, watermark) as deleted first, if it applies
  return {};
}

Result<void> SegmentReader::seek_time(uint64_t ts_ns) {
  Impl& s = *impl_;
  if (auto r = s.relist(); !r) return r;
  if (auto r = s.reload_wm(); !r) return r;
  s.drop_file();
  s.hole_checked_at = Impl::kNoHole;
  s.ts_mode = true;
  s.ts_target = ts_ns;
  s.pos = s.wm.deleted_below;
  // Skip the sealed segments whose newest record is older than ts_ns.
  for (size_t i = 0; i + 1 < s.segs.size(); ++i) {
    auto f = SegmentFile::open(s.dir.get(), s.segs[i]);
    if (!f) break;
    auto x = read_index(s.dir.get(), s.segs[i], f->size());
    if (!x || !x->sealed || x->entries.back().max_ts >= ts_ns) break;
    auto h = f->read_header();
    if (!h || h->created_ns != x->header.created_ns) break;
    s.pos = std::max(s.pos, x->entries.back().end_seq);
  }
  return {};
}

Result<Entry> SegmentReader::next() {
  impl_->skipped_first = 0;
  return impl_->next();
}

uint64_t SegmentReader::position() const noexcept { return impl_ ? impl_->pos : 0; }
uint64_t SegmentReader::skipped_segment_first() const noexcept {
  return impl_ ? impl_->skipped_first : 0;
}

}  // namespace shmbus::persist
