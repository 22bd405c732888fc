// recovery.cc: opening a store for writing: summaries of the sealed segments (from
// their indexes when those check out, else from a scan that also rebuilds them), and
// recovery of the last segment (a torn tail is cut at the last valid record).
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>

#include "coding.h"
#include "format.h"
#include "log.h"
#include "marker.h"
#include "scan.h"
#include "store_impl.h"

namespace shmbus::persist {

using namespace detail;

namespace {

constexpr const char* kFsckHint = "; run `shmbus fsck --repair` on the data directory";

Error with_hint(Error e) {
  e.message += kFsckHint;
  return e;
}

}  // namespace

Result<void> SegmentStore::Impl::recover() {
  int damaged_slot = -1;
  auto w = read_watermark(dir.get(), nullptr, &damaged_slot);
  if (!w) return with_hint(w.error());
  wm = w.value();
  if (damaged_slot >= 0)
    log_warn(where + ": one slot of the 'watermark' file is damaged; the other says deleted below " +
             std::to_string(wm.deleted_below) + ": a later deletion it may have recorded is not applied "
             "(repeat the last delete --before if it went further; fsck reports it)");
  (void)remove_file(dir.get(), kWatermarkTmpName, false);  // an interrupted update
  // A version 2 watermark file is raised in place: later deletions need no new space,
  // so that they work on a full disk.  Made now, while there is room (if there is not,
  // the next raise tries again).
  if (auto r = ensure_watermark_file(dir.get(), wm); !r)
    log_warn(where + ": cannot prepare the watermark file: " + r.error().message);
  // The value read may be one whose sync failed (still in the page cache, never on the
  // disk: a sync now would return success without writing it).  Deletions below are
  // finished next, so it is written again and synced first.
  if (wm.deleted_below > 0) {
    if (auto r = write_watermark(dir.get(), wm); !r) return r;
  }

  auto listed = list_segments(dir.get());
  if (!listed) return listed.error();
  std::vector<uint64_t> segs = std::move(listed.value());
  // A deletion (retention, delete_before, a secure erase half done) that a crash
  // interrupted: the watermark was raised first, so every segment whose successor
  // starts at or below it lies wholly below it.  Finish it before reading anything (a
  // half-erased segment has no header left).  The last segment is never one of them.
  const size_t below = segments_wholly_below(segs, wm.deleted_below);
  for (size_t i = 0; i < below; ++i) {
    log_info(seg_path(segs[i]) + ": finishing an interrupted deletion (below the watermark " +
             std::to_string(wm.deleted_below) + ")");
    if (auto r = remove_file(dir.get(), segment_file_name(segs[i]), opts.secure_delete); !r)
      return r;
    if (auto r = remove_file(dir.get(), index_file_name(segs[i]), opts.secure_delete); !r)
      return r;
  }
  segs.erase(segs.begin(), segs.begin() + static_cast<ptrdiff_t>(below));
  // An index whose segment is gone (a kill between unlinking a segment and its index,
  // in retention or in the cleanup below): it describes nothing; it goes.
  if (auto names = list_dir(dir.get()); names) {
    for (const auto& n : names.value()) {
      uint64_t first = 0;
      if (parse_numbered_name(n, kIndexTmpSuffix, &first)) {
        // An index rewrite a crash interrupted: the index it was to replace is as it was.
        // Harmless where it is: a failure to remove it is logged, not fatal.
        log_info(where + "/" + n + ": removing the temporary file of an interrupted index rewrite");
        if (auto r = remove_file(dir.get(), n, opts.secure_delete); !r)
          log_warn(where + "/" + n + ": " + r.error().message);
        continue;
      }
      if (parse_numbered_name(n, kSegmentTmpSuffix, &first)) {
        // A marker a repair or a withdrawal a crash interrupted had prepared: the segment
        // it was for is still under its name.
        log_info(where + "/" + n + ": removing the temporary file of an interrupted marker");
        if (auto r = remove_file(dir.get(), n, false); !r) log_warn(where + "/" + n + ": " + r.error().message);
        continue;
      }
      if (!parse_numbered_name(n, kIndexSuffix, &first) ||
          std::binary_search(segs.begin(), segs.end(), first))
        continue;
      log_info(where + "/" + n + ": removing an index whose segment is gone");
      if (auto r = remove_file(dir.get(), n, opts.secure_delete); !r) return r;
    }
  }
  while (!segs.empty()) {
    auto f = SegmentFile::open(dir.get(), segs.back());
    if (!f) return f.error();
    auto head = f->header_bytes();
    if (!head) return head.error();
    if (!header_not_written(head.value()) || flushed_despite_its_header(dir.get(), segs.back(), f->size()))
      break;  // (damaged: recover_active() refuses it, fsck --repair deals with it)
    log_warn(seg_path(segs.back()) + ": removing a segment whose creation never completed (" +
             std::to_string(f->size()) + " bytes)");
    // (Its pages after the unwritten header may hold records: erased first with --secure.)
    if (auto r = remove_file(dir.get(), segment_file_name(segs.back()), opts.secure_delete); !r) return r;
    (void)remove_file(dir.get(), index_file_name(segs.back()), opts.secure_delete);
    segs.pop_back();
  }
  // The marker fsck --repair put in place of a last segment it moved aside (its end not
  // known, it reaches past anything the segment can have held), under a source that has
  // numbered to its first sequence or past it: withdrawn, so that the caller stores again
  // from there what its source still holds (StoreOptions::source).
  // The store then continues at that first sequence, also when it was the only segment:
  // it does not take any first sequence (the persister then stored nothing again and
  // recorded nothing lost, and a later ring numbered from 0: a review).  Past 0 that lasts
  // through a crash as the watermark (no segment holds a record below it).
  if (!segs.empty()) {
    const uint64_t first = segs.back();
    auto withdrawn = withdraw_end_unknown_marker(first);
    if (!withdrawn) return withdrawn.error();
    if (withdrawn.value()) {
      segs.pop_back();
      if (segs.empty()) {
        if (first > wm.deleted_below) {
          wm = Watermark{first, now()};
          if (auto r = write_watermark(dir.get(), wm); !r) return r;
        }
        fresh_at = wm.deleted_below;
        next_seq = wm.deleted_below;
      }
    }
  }
  for (size_t i = 0; i + 1 < segs.size(); ++i) {
    auto info = summarize_sealed(segs[i]);
    if (!info) return info.error();
    if (!sealed.empty() && sealed.back().end_seq != info->first_seq)
      log_warn(where + ": sequences [" + std::to_string(sealed.back().end_seq) + ", " +
               std::to_string(info->first_seq) + ") are missing between segments");
    sealed.push_back(info.value());
  }
  if (!segs.empty()) {
    if (auto r = recover_active(segs.back()); !r) return r;
    if (!sealed.empty() && sealed.back().end_seq != active.first_seq)
      log_warn(where + ": sequences [" + std::to_string(sealed.back().end_seq) + ", " +
               std::to_string(active.first_seq) + ") are missing before the last segment");
  }
  if (segs.empty() && wm.deleted_below > 0 && fresh_at == kAnySeq) {
    // No segment left, but records were stored and deleted up to the watermark (retention
    // took every sealed segment, then the active one went because its header never
    // reached the disk: a failed sync, a crash).  The store continues where they ended,
    // as the store that went back to nothing did before it closed; taking any first
    // sequence would let a writer restart the numbering below records already handed
    // out (a review: this lived only in memory).
    fresh_at = wm.deleted_below;
    next_seq = wm.deleted_below;
  }
  // What recovery found may still sit in the page cache only (a crashed writer's
  // unsynced tail): every segment was synced above; the directory now, so that their
  // names (and the removals above) last.  Only then is it counted durable.
  if (auto r = detail::sync_all(dir.get(), "directory " + where); !r) return r;
  durable.store(next_seq, std::memory_order_release);  // pairs with durable_seq()
  return {};
}

Result<bool> SegmentStore::Impl::withdraw_end_unknown_marker(uint64_t first) {
  // (Below the watermark nothing is stored again: a deletion into the range stands.)
  const uint64_t floor = std::max(first, wm.deleted_below);
  if (!opts.source || opts.source->next < floor) return false;
  auto marker = end_unknown_marker(dir.get(), first, ns, stream);
  if (!marker) return marker.error();
  if (!marker.value()) return false;
  const uint64_t to = marker.value()->to;
  const StoreOptions::Source& src = *opts.source;
  // A source behind what the segment was still seen to hold: an earlier stream's store
  // (the persister refuses it, as one behind any store's end; a review).
  if (src.next < marker.value()->known) return false;
  // What the source no longer holds stays recorded lost (reason 0), in a segment that
  // replaces the marker's at once (marker.h); the rest it stores again.  Durable before
  // the store counts it (recover() syncs the directory).  Until it has stored them again,
  // a crash of the host leaves the store ending where the source's records begin.
  const uint64_t kept = std::min(std::max(src.oldest, floor), src.next);
  log_warn(seg_path(first) + ": withdrawing the marker fsck --repair left for sequences [" + std::to_string(first) +
           ", " + std::to_string(to) + ") (a last segment it moved aside, its end unknown): the source holds [" +
           std::to_string(src.oldest) + ", " + std::to_string(src.next) + ")" +
           (kept > first ? ", [" + std::to_string(first) + ", " + std::to_string(kept) + ") stays lost" : ""));
  if (kept > first) {
    if (auto r = prepare_marker_segment(dir.get(), first, first, kept, kLostRecords, 0, ns, stream); !r)
      return r.error();
    if (auto r = install_marker_segment(dir.get(), first); !r) return r.error();
    if (auto r = index_marker_segment(dir.get(), first); !r) (void)remove_file(dir.get(), index_file_name(first), false);
    return false;  // (the segment stays, holding the lost range)
  }
  if (auto r = remove_file(dir.get(), segment_file_name(first), false); !r) return r.error();
  (void)remove_file(dir.get(), index_file_name(first), false);
  return true;
}

Result<SegmentInfo> SegmentStore::Impl::summarize_sealed(uint64_t first_seq) {
  auto f = SegmentFile::open(dir.get(), first_seq);
  if (!f) return f.error();
  // A sealed segment was synced before the next one was created, unless an earlier
  // writer's sync failed; a sync of a clean file costs one system call.
  if (auto r = detail::sync_data(f->fd(), f->name()); !r) return r.error();
  auto hdr = f->read_header();
  if (!hdr) return with_hint(hdr.error());
  if (hdr->ns != ns || hdr->stream != stream || hdr->first_seq != first_seq)
    return make_error(Errc::kCorrupt, seg_path(first_seq) + " belongs to stream " + hdr->ns +
                                          "/" + hdr->stream + " at sequence " +
                                          std::to_string(hdr->first_seq) + kFsckHint);
  auto idx = read_index(dir.get(), first_seq, f->size());
  if (idx && idx->sealed && idx->header.created_ns == hdr->created_ns) {
    // The first record's stamp: the first index entry holds the newest stamp so far, a
    // batch frame's newest, not its first record's (a review).  The header's read brought
    // the first frame into the file's window, so it is decoded there, without a read; a
    // frame that does not fit the window is a data frame, whose entry holds its own stamp.
    const IndexEntry& front = idx->entries.front();
    uint64_t first_ts = front.max_ts;
    FrameView first;
    if (auto s0 = f->frame_in_window(front.offset, &first);
        s0 && *s0 == FrameStatus::kOk && first.h.seq == front.seq)
      first_ts = first.h.ts_ns;
    const IndexEntry& seal = idx->entries.back();
    FrameView fv;
    auto st = f->read_frame(seal.offset, &fv);
    if (st && st.value() == FrameStatus::kOk && fv.h.seq == seal.seq &&
        fv.end_seq == seal.end_seq && seal.offset + fv.size == f->size())
      return SegmentInfo{first_seq,   seal.end_seq, first_ts,
                         seal.max_ts, seal.count,   f->size() + idx->file_size};
  }
  const uint32_t interval =
      idx && idx->header.interval >= 256 ? idx->header.interval : opts.index_interval;
  auto scan = scan_segment(f.value(), first_seq, interval, idx ? &idx.value() : nullptr);
  if (!scan) return with_hint(scan.error());
  if (scan->valid_end < scan->file_size)
    log_warn(seg_path(first_seq) + ": damaged at offset " + std::to_string(scan->valid_end) +
             " (" + frame_status_name(scan->stop) + "), " +
             std::to_string(scan->file_size - scan->valid_end) +
             " bytes after it are unreadable" + kFsckHint);
  std::vector<IndexEntry> entries = scan->entries;
  // Keep what fsck --repair recorded about damage in the index being rebuilt.
  if (idx && idx->header.created_ns == scan->header.created_ns)
    keep_damage_recorded(entries, idx->entries);
  if (!scan->builder.empty()) entries.push_back(scan->builder.seal_entry());
  const IndexHeader ih{interval, first_seq, scan->header.created_ns};
  if (auto r = write_index(dir.get(), ih, entries); r)
    log_info(seg_path(first_seq) + ": index rebuilt from the segment");
  else
    log_warn(seg_path(first_seq) + ": cannot rebuild the index: " + r.error().message);
  const uint64_t idx_bytes = kIndexHeaderSize + entries.size() * kIndexEntrySize;
  return SegmentInfo{first_seq,
                     scan->end_seq,
                     scan->builder.first_ts(),
                     scan->builder.max_ts(),
                     scan->builder.count(),
                     scan->file_size + idx_bytes};
}

Result<void> SegmentStore::Impl::recover_active(uint64_t first_seq) {
  const std::string name = segment_file_name(first_seq);
  ScanResult scan;
  {
    auto f = SegmentFile::open(dir.get(), first_seq);
    if (!f) return f.error();
    // Its index (the entries the previous writer synced) lets the scan resync past damage
    // inside a frame's claimed bytes, which a torn record's payload would not allow.
    auto old = read_index(dir.get(), first_seq, f->size());
    auto s = scan_segment(f.value(), first_seq, opts.index_interval, old ? &old.value() : nullptr);
    if (!s) return with_hint(s.error());
    scan = std::move(s.value());
  }
  if (scan.header.ns != ns || scan.header.stream != stream)
    return make_error(Errc::kCorrupt, seg_path(first_seq) + " belongs to stream " +
                                          scan.header.ns + "/" + scan.header.stream + kFsckHint);
  // Damage with valid frames after it is kept (evidence; readers skip it through the
  // index entry of the frame after it); only a torn tail is cut below.
  for (const ScanDamage& d : scan.damage)
    log_warn(seg_path(first_seq) + ": damaged at offset " + std::to_string(d.offset) + " (" +
             frame_status_name(d.why) + "): " + std::to_string(d.bytes) +
             " bytes kept, sequences [" + std::to_string(d.from_seq) + ", " +
             std::to_string(d.to_seq) + ") unreadable; the records after them are intact" +
             kFsckHint);
  if (!scan.damage.empty()) {
    // Keep what fsck --repair recorded about it in the index being rebuilt.
    if (auto old = read_index(dir.get(), first_seq, scan.file_size);
        old && old->header.created_ns == scan.header.created_ns)
      keep_damage_recorded(scan.entries, old->entries);
  }
  auto fd = open_at(dir.get(), name, OpenMode::kReadWrite);
  if (!fd) return fd.error();
  if (scan.valid_end < scan.file_size) {
    const uint64_t tail = scan.file_size - scan.valid_end;
    const uint64_t dropped = scan.tail_nonzero_end - scan.valid_end;
    if (dropped > 0) {
      log_warn(seg_path(first_seq) + ": torn tail at offset " + std::to_string(scan.valid_end) +
               " (" + frame_status_name(scan.stop) + "): dropped " + std::to_string(dropped) +
               " bytes; the store continues at sequence " + std::to_string(scan.end_seq));
      counters.torn_bytes_dropped += dropped;
    } else if (opts.kind == StoreKind::kFile) {
      log_info(seg_path(first_seq) + ": cut " + std::to_string(tail) +
               " zero bytes after the last record");
    }
    // --secure: the cut bytes may hold records; they are overwritten before the
    // space is given back.
    if (opts.secure_delete && dropped > 0) {
      if (auto r = overwrite_zeros(fd->get(), scan.valid_end, scan.tail_nonzero_end, name); !r)
        return r;
    }
    if (auto r = truncate_to(fd->get(), scan.valid_end, name); !r) return r;
  }
  // The bytes found may be in the page cache only: durable once this returns.  Those
  // after the last frame the previous writer saw synced (its index's last entry: entries
  // reach the index only after the sync that covered them) are written again first: after
  // a failed fdatasync Linux marks the pages it could not write clean, and a sync of a
  // clean page writes nothing, so a writer that died (or stopped) before cutting such a
  // tail back would have it counted durable here.  Written again they are dirty, and the
  // sync below writes them or fails.
  {
    uint64_t from = 0;
    if (auto old = read_index(dir.get(), first_seq, scan.file_size);
        old && old->header.created_ns == scan.header.created_ns && !old->entries.empty())
      from = std::min(old->entries.back().offset, scan.valid_end);
    if (auto r = rewrite_bytes(fd->get(), from & ~uint64_t{4095}, scan.valid_end, "segment " + name); !r)
      return r;
  }
  if (auto r = detail::sync_data(fd->get(), name); !r) return r;
  fd->reset();
  auto s = opts.kind == StoreKind::kPmem
               ? open_pmem_sink(dir.get(), name, false, scan.valid_end,
                                std::max(opts.segment_bytes, scan.valid_end), opts.write_buffer)
               : open_file_sink(dir.get(), name, false, scan.valid_end, opts.write_buffer);
  if (!s) return s.error();
  sink = std::move(s.value());
  granularity = sink->granularity();

  // The active segment's index is always rebuilt: it may lag behind the segment or
  // point past a torn tail.
  const IndexHeader ih{opts.index_interval, first_seq, scan.header.created_ns};
  std::span<const IndexEntry> kept = scan.entries;
  auto w = write_index(dir.get(), ih, kept);
  // On a full disk: the index file's size now (0 when there is none).
  uint64_t old_size = 0;
  if (!w && w.error().code == Errc::kNoSpace) {
    struct stat st {};
    if (::fstatat(dir.get(), index_file_name(first_seq).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
      old_size = static_cast<uint64_t>(st.st_size);
  }
  if (!w && w.error().code == Errc::kNoSpace && old_size >= kIndexHeaderSize) {
    // A full disk, and the old index holds fewer entries than the rebuild (a writer
    // stopped between syncing records and appending their entries): the longest prefix
    // that fits in the old file's bytes.  An active segment's index may hold a prefix
    // (the entries the writer appends from here on follow it; the next open rebuilds it
    // whole): the store opens, and its persister can run retention to make room (a
    // review: it did not open).
    const uint64_t fit = (old_size - kIndexHeaderSize) / kIndexEntrySize;
    if (fit < kept.size()) {
      kept = kept.first(static_cast<size_t>(fit));
      log_warn(seg_path(first_seq) + ": disk full: its index keeps " + std::to_string(fit) + " of " +
               std::to_string(scan.entries.size()) + " entries until the next open");
      w = write_index(dir.get(), ih, kept);
    }
  }
  if (!w && w.error().code == Errc::kNoSpace && old_size < kIndexHeaderSize) {
    // A full disk and no index header to keep (a writer that died after starting the
    // segment and before its first flush, which writes the header with the first
    // entries; or no index file at all): the index is written as a new segment's is,
    // header and entries at the next flush, once there is room.  Meanwhile readers find
    // no index and read the segment from its start.  The store opens, so that its
    // persister can run retention (a review: it did not open).
    log_warn(seg_path(first_seq) + ": disk full: its index is written at the next flush");
    auto idx = open_at(dir.get(), index_file_name(first_seq),
                       old_size > 0 ? OpenMode::kReadWrite : OpenMode::kCreateOrOpen);
    if (idx && old_size > 0) {
      // Shorter than a header: what a torn first write left.  Cutting needs no room.
      if (auto r = truncate_to(idx->get(), 0, index_file_name(first_seq)); !r) return r;
    }
    idx_written = 0;
    idx_pending.clear();
    if (idx) {
      idx_fd = std::move(idx.value());
      idx_pending.assign(kIndexHeaderSize + scan.entries.size() * kIndexEntrySize, std::byte{0});
      encode_index_header(ih, idx_pending.data());
      for (size_t i = 0; i < scan.entries.size(); ++i)
        encode_index_entry(scan.entries[i], idx_pending.data() + kIndexHeaderSize + i * kIndexEntrySize);
    } else {
      // Not even an empty file: this writer keeps no index for the segment (nor when it
      // seals it); the next open rebuilds it.  Readers read the segment from its start.
      log_warn(seg_path(first_seq) + ": no index file until the next open: " + idx.error().message);
      idx_fd.reset();
    }
  } else {
    if (!w) return w;
    auto idx = open_at(dir.get(), index_file_name(first_seq), OpenMode::kReadWrite);
    if (!idx) return idx.error();
    idx_fd = std::move(idx.value());
    idx_written = kIndexHeaderSize + kept.size() * kIndexEntrySize;
    idx_pending.clear();
  }

  builder = scan.builder;
  active = SegmentInfo{first_seq,          scan.end_seq,           scan.builder.first_ts(),
                       scan.builder.max_ts(), scan.builder.count(), 0};
  active_created_ns = scan.header.created_ns;
  active_version = scan.header.version;
  next_seq = scan.end_seq;
  fresh = false;
  return {};
}

}  // namespace shmbus::persist
