// retention.cc: deleting whole old segments (by age, by size, below a sequence).
//
// Order, so that a crash at any point leaves a consistent store: first the watermark
// is raised (readers stop serving the records at once), then segments are unlinked
// oldest first, then the directory is synced.
#include "format.h"
#include "store_impl.h"

namespace shmbus::persist {

using namespace detail;

Result<DeletionReport> SegmentStore::apply_retention(std::chrono::nanoseconds max_age,
                                                     uint64_t max_bytes, uint64_t now_ns) {
  if (!impl_) return make_error(Errc::kClosed, "store is closed");
  if (auto u = impl_->usable(); !u) return u.error();
  if (max_age.count() < 0) return make_error(Errc::kInvalidArgument, "max_age is negative");
  Impl& s = *impl_;
  size_t n = 0;
  if (max_age.count() > 0) {
    const auto age = static_cast<uint64_t>(max_age.count());
    const uint64_t cutoff = now_ns > age ? now_ns - age : 0;
    while (n < s.sealed.size() && s.sealed[n].max_ts < cutoff) ++n;
  }
  if (max_bytes > 0) {
    uint64_t total = s.total_bytes();
    for (size_t i = 0; i < n; ++i) total -= s.sealed[i].bytes;
    while (total > max_bytes && n < s.sealed.size()) total -= s.sealed[n++].bytes;
  }
  return s.delete_oldest(n, now_ns);
}

Result<DeletionReport> SegmentStore::delete_before(uint64_t seq) {
  if (!impl_) return make_error(Errc::kClosed, "store is closed");
  if (auto u = impl_->usable(); !u) return u.error();
  Impl& s = *impl_;
  const uint64_t now = s.now();
  // A watermark above what was ever stored would hide records not written yet, for
  // ever: refused (the caller raises it again once they are stored).
  if (seq > s.next_seq)
    return make_error(Errc::kInvalidArgument,
                      "cannot delete before sequence " + std::to_string(seq) + ": " + s.where +
                          " ends at sequence " + std::to_string(s.next_seq) +
                          " (nothing at or above it exists yet)");
  if (seq > s.wm.deleted_below) {
    const Watermark w{seq, now};
    if (auto r = write_watermark(s.dir.get(), w); !r) return r.error();
    s.wm = w;
  }
  size_t n = 0;
  while (n < s.sealed.size() && s.sealed[n].end_seq <= s.wm.deleted_below) ++n;
  return s.delete_oldest(n, now);
}

Result<DeletionReport> SegmentStore::Impl::delete_oldest(size_t n, uint64_t at_ns) {
  DeletionReport rep;
  rep.at_ns = at_ns;
  if (n > 0) {
    const uint64_t floor = sealed[n - 1].end_seq;
    if (wm.deleted_below < floor) {
      const Watermark w{floor, at_ns};
      if (auto r = write_watermark(dir.get(), w); !r) return r.error();
      wm = w;
    }
    rep.first_seq = sealed.front().first_seq;
    rep.oldest_ts_ns = sealed.front().first_ts;
  }
  size_t done = 0;
  Result<void> failed;
  for (; done < n; ++done) {
    const SegmentInfo& info = sealed[done];
    failed = remove_file(dir.get(), segment_file_name(info.first_seq), opts.secure_delete);
    if (!failed) break;
    (void)remove_file(dir.get(), index_file_name(info.first_seq), opts.secure_delete);
    ++rep.segments;
    rep.records += info.records;
    rep.bytes += info.bytes;
    rep.end_seq = info.end_seq;
    rep.newest_ts_ns = std::max(rep.newest_ts_ns, info.max_ts);
  }
  sealed.erase(sealed.begin(), sealed.begin() + static_cast<ptrdiff_t>(done));
  if (done > 0) {
    // Quarantined segments (fsck --repair's NNNN.seg.corrupt[.N]) older than everything
    // kept go with it, overwritten first with secure_delete: retention frees them too.
    const uint64_t kept_from = !sealed.empty() ? sealed.front().first_seq
                               : sink              ? active.first_seq
                                                   : wm.deleted_below;
    if (auto names = list_dir(dir.get()); names) {
      for (const auto& n : names.value()) {
        const size_t at = n.find(".seg.corrupt");
        uint64_t first = 0;
        if (at == std::string::npos || !parse_numbered_name(n.substr(0, at + 4), kSegmentSuffix, &first) ||
            first >= kept_from)
          continue;
        if (auto r = remove_file(dir.get(), n, opts.secure_delete); r) ++rep.quarantined;
      }
    }
    (void)sync_all(dir.get(), "directory " + where);
    counters.deleted_segments += rep.segments;
    counters.deleted_records += rep.records;
    counters.deleted_bytes += rep.bytes;
    counters.last_delete_ns = at_ns;
  }
  rep.deleted_below = wm.deleted_below;
  if (!failed) return failed.error();
  return rep;
}

}  // namespace shmbus::persist
