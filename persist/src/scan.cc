// scan.cc: windowed reading and full scans of segment files.
#include "scan.h"

#include <fcntl.h>

#include <algorithm>
#include <cstring>

#include "coding.h"
#include "crc32c.h"

namespace shmbus::persist::detail {

namespace {
// The bytes one pread() brings.  Small enough that a frame's CRC reads them from a near
// cache: 1 KiB replay 6.4-6.7 GB/s with 256 KiB, 6.9-7.1 with 128 KiB, 6.8-6.9 with
// 64 KiB (same runs; a raw read() is 9.5-9.8 GB/s with any of them).
constexpr uint64_t kWindow = 128 << 10;
}

Result<SegmentFile> SegmentFile::open(int dir, uint64_t first_seq) {
  std::string name = segment_file_name(first_seq);
  auto fd = open_at(dir, name, OpenMode::kRead);
  if (!fd) return fd.error();
  auto size = file_size(fd->get(), name);
  if (!size) return size.error();
  // Read front to back (replay, recovery, fsck): the kernel's read-ahead window doubled.
  // Replay of 1 KiB records from the disk (page cache dropped) 0.64-0.67x -> 0.86-0.88x
  // of a raw 1 MiB read() of the same files, alternating builds (bench/README.md, "Replay
  // from the disk"); a seek costs at most one larger read-ahead.
  (void)::posix_fadvise(fd->get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  return SegmentFile(std::move(fd.value()), std::move(name), size.value());
}

Result<uint64_t> SegmentFile::refresh() {
  auto size = file_size(fd_.get(), name_);
  if (!size) return size.error();
  size_ = size.value();
  buf_len_ = 0;
  return size_;
}

Result<Bytes> SegmentFile::view(uint64_t off, uint64_t n) {
  if (off >= size_) return Bytes{};
  n = std::min(n, size_ - off);
  if (off >= buf_off_ && off + n <= buf_off_ + buf_len_)
    return Bytes(buf_.data() + (off - buf_off_), static_cast<size_t>(n));
  const uint64_t want = std::min(std::max(n, kWindow), size_ - off);
  if (buf_.size() < want) buf_.resize(static_cast<size_t>(want));
  auto got = pread_some(fd_.get(), {buf_.data(), static_cast<size_t>(want)}, off, name_);
  if (!got) {
    buf_len_ = 0;
    return got.error();
  }
  buf_off_ = off;
  buf_len_ = got.value();
  return Bytes(buf_.data(), std::min<size_t>(buf_len_, static_cast<size_t>(n)));
}

Result<Bytes> SegmentFile::header_bytes() { return view(0, kSegmentHeaderSize); }

Result<SegmentHeader> SegmentFile::read_header() {
  auto v = header_bytes();
  if (!v) return v.error();
  auto h = decode_segment_header(v.value(), name_);
  if (h) set_version(h->version);
  return h;
}

Result<FrameStatus> SegmentFile::read_frame(uint64_t off, FrameView* out) {
  auto head = view(off, kFrameHeaderSize);
  if (!head) return head.error();
  if (head->size() < kFrameHeaderSize) return decode_frame(head.value(), out);
  const uint64_t len = get_u32(head->data() + kFrmLength);
  if (len > kMaxPayload) return decode_frame(head.value(), out);
  auto all = view(off, frame_size(len));
  if (!all) return all.error();
  return allowed(decode_frame(all.value(), out), *out);
}

Result<bool> SegmentFile::zero_from(uint64_t off) {
  while (off < size_) {
    auto v = view(off, kWindow);
    if (!v) return v.error();
    if (v->empty()) break;
    if (!all_zero(v->data(), v->size())) return false;
    off += v->size();
  }
  return true;
}

bool header_not_written(Bytes head) {
  const size_t n = head.size();
  if (all_zero(head.data(), n)) return true;
  return n < kSegmentHeaderSize &&
         std::memcmp(head.data(), kSegmentMagic, std::min(n, sizeof kSegmentMagic)) == 0;
}

Result<uint64_t> SegmentFile::nonzero_end(uint64_t off) {
  uint64_t end = off;
  while (off < size_) {
    auto v = view(off, kWindow);
    if (!v) return v.error();
    if (v->empty()) break;
    for (size_t i = v->size(); i > 0; --i) {
      if ((*v)[i - 1] != std::byte{0}) {
        end = off + i;
        break;
      }
    }
    off += v->size();
  }
  return end;
}

namespace {
// The kind and reserved fields of a frame header hold what decode_frame() accepts.
bool kind_and_reserved_hold(const std::byte* h) {
  const uint16_t kind = get_u16(h + kFrmKind);
  return get_u16(h + kFrmReserved) == 0 && (kind == static_cast<uint16_t>(FrameKind::kData) ||
                                            kind == static_cast<uint16_t>(FrameKind::kLost) ||
                                            kind == static_cast<uint16_t>(FrameKind::kBatch));
}
}  // namespace

Result<uint64_t> SegmentFile::claimed_span(uint64_t off) {
  auto head = view(off, kFrameHeaderSize);
  if (!head) return head.error();
  if (head->size() < kFrameHeaderSize) return uint64_t{0};
  const uint64_t len = get_u32(head->data() + kFrmLength);
  if (len > kMaxPayload || !kind_and_reserved_hold(head->data())) return uint64_t{0};
  return frame_size(len);
}

Result<uint64_t> SegmentFile::repaired_span(uint64_t off, RepairBudget* budget) {
  auto head = view(off, kFrameHeaderSize);
  if (!head) return head.error();
  if (head->size() < kFrameHeaderSize) return uint64_t{0};
  std::byte h[kFrameHeaderSize];
  std::memcpy(h, head->data(), sizeof h);
  if (all_zero(h, sizeof h)) return uint64_t{0};  // not a frame's header
  const uint32_t stored = get_u32(h + kFrmCrc);
  const uint32_t len = get_u32(h + kFrmLength);
  // Whether the frame's CRC matches with `h` as it is now and a length of `n` (read
  // within the file and charged to *left; a length that would overdraw it is not tried).
  auto matches = [&](uint32_t n, uint64_t* left) -> Result<bool> {
    if (n > kMaxPayload || off + frame_size(n) > size_ || frame_size(n) > *left) return false;
    *left -= frame_size(n);
    auto all = view(off, frame_size(n));
    if (!all) return all.error();
    if (all->size() < frame_size(n)) return false;
    put_u32(h + kFrmLength, n);
    return crc32c_extend(crc32c(h, kFrmCrc), all->data() + kFrameHeaderSize, n) == stored;
  };
  if (!kind_and_reserved_hold(h)) {
    // The kind or reserved field is the damage, the length intact: a known kind with the
    // reserved field zero.  (A frame search from inside its bytes once found a frame its
    // payload embedded.)
    put_u16(h + kFrmReserved, 0);
    for (const FrameKind k : {FrameKind::kData, FrameKind::kLost, FrameKind::kBatch}) {
      put_u16(h + kFrmKind, static_cast<uint16_t>(k));
      auto m = matches(len, &budget->kind);
      if (!m) return m.error();
      if (m.value()) return frame_size(len);
    }
    return uint64_t{0};
  }
  for (int b = 0; b < 32; ++b) {
    auto m = matches(len ^ (uint32_t{1} << b), &budget->length);
    if (!m) return m.error();
    if (m.value()) return frame_size(len ^ (uint32_t{1} << b));
  }
  return uint64_t{0};
}

Result<std::optional<uint64_t>> find_next_frame(SegmentFile& f, uint64_t from, uint64_t min_seq,
                                                std::optional<uint64_t> bad_at) {
  const uint64_t left = f.size() > from ? f.size() - from : 0;
  uint64_t budget = 16 * left + (16 << 20);
  for (uint64_t off = from; off + kFrameHeaderSize <= f.size(); off += 8) {
    auto claim = f.claimed_span(off);
    if (!claim) return claim.error();
    if (claim.value() == 0) continue;  // not a frame's header: no read, no CRC
    const uint64_t cost = std::min(claim.value(), f.size() - off);
    if (cost > budget) break;
    budget -= cost;
    FrameView fv;
    auto st = f.read_frame(off, &fv);
    if (!st) return st.error();
    if (st.value() == FrameStatus::kOk && fv.h.seq >= min_seq &&
        (!bad_at || fv.h.seq - min_seq <= (off - *bad_at) / kMinFrameBytesPerSeq))
      return std::optional<uint64_t>(off);
  }
  return std::optional<uint64_t>();
}

namespace {
// The first frame that `index` lists in [from, to) that is valid with a sequence of at
// least `min_seq`.
Result<std::optional<uint64_t>> indexed_frame(SegmentFile& f, const IndexFile* index, uint64_t from,
                                              uint64_t to, uint64_t min_seq) {
  if (!index) return std::optional<uint64_t>();
  for (const IndexEntry& e : index->entries) {
    if (e.offset < from || e.offset >= to || e.offset + kFrameHeaderSize > f.size()) continue;
    FrameView fv;
    auto st = f.read_frame(e.offset, &fv);
    if (!st) return st.error();
    if (st.value() == FrameStatus::kOk && fv.h.seq >= min_seq) return std::optional<uint64_t>(e.offset);
  }
  return std::optional<uint64_t>();
}
}  // namespace

Result<std::optional<uint64_t>> resume_after(SegmentFile& f, uint64_t bad, uint64_t min_seq,
                                             const IndexFile* index, RepairBudget* budget) {
  auto span = f.repaired_span(bad, budget);
  if (!span) return span.error();
  if (span.value() == 0) {
    span = f.claimed_span(bad);
    if (!span) return span.error();
  }
  const uint64_t past = span.value() ? bad + span.value() : bad + 8;
  auto next = indexed_frame(f, index, bad + 8, std::min(past, f.size()), min_seq);
  if (!next) return next.error();
  if (!next.value() && past < f.size()) {
    // The sequence bound only where the search starts inside the bad frame's bytes.
    next = find_next_frame(f, past, min_seq, span.value() ? std::nullopt : std::optional<uint64_t>(bad));
    if (!next) return next.error();
  }
  if (!next.value())  // the search gave up (the entries before `past` were tried)
    next = indexed_frame(f, index, std::min(past, f.size()), f.size(), min_seq);
  return next;
}

Result<ScanResult> scan_segment(SegmentFile& f, uint64_t first_seq, uint32_t index_interval,
                                const IndexFile* index) {
  ScanResult r;
  r.builder = IndexBuilder(index_interval);
  auto hdr = f.read_header();
  if (!hdr) return hdr.error();
  r.header = std::move(hdr.value());
  if (r.header.first_seq != first_seq)
    return make_error(Errc::kCorrupt, "segment " + f.name() + " says it starts at sequence " +
                                          std::to_string(r.header.first_seq) +
                                          ", not the one in its name");
  if (index && index->header.created_ns != r.header.created_ns) index = nullptr;  // another segment's
  r.file_size = f.size();
  r.valid_end = kSegmentHeaderSize;
  r.end_seq = first_seq;
  bool after_damage = false;
  // Repairs (up to 32 CRCs of the rest of the file each) share bounds per scan, one for
  // lengths and one for kinds (RepairBudget): many damaged frames once made it quadratic
  // in the segment's size (a review).
  RepairBudget repair_budget = RepairBudget::for_size(f.size());
  for (;;) {
    FrameView fv;
    auto st = f.read_frame(r.valid_end, &fv);
    if (!st) return st.error();
    r.stop = st.value();
    if (r.stop == FrameStatus::kOk && fv.h.seq != r.end_seq) {
      r.stop = FrameStatus::kBadSeq;
      r.stop_seq = fv.h.seq;
    }
    if (r.stop != FrameStatus::kOk) {
      if (r.stop == FrameStatus::kEof) break;
      // Past the bad frame's first bytes: a valid frame with a wrong sequence at the very
      // end is a torn tail too, not damage.  Past its repaired length, else past what a
      // plausible header claims (scan_segment() in scan.h): inside only where the index
      // lists a frame.
      auto next = resume_after(f, r.valid_end, r.end_seq, index, &repair_budget);
      if (!next) return next.error();
      if (!next.value()) break;  // nothing valid after it: a torn tail
      const uint64_t at = *next.value();
      auto again = f.read_frame(at, &fv);
      if (!again) return again.error();
      r.damage.push_back(ScanDamage{r.valid_end, at - r.valid_end, r.end_seq, fv.h.seq, r.stop});
      r.valid_end = at;
      r.end_seq = fv.h.seq;
      after_damage = true;
      r.stop = FrameStatus::kOk;
    }
    IndexEntry e;
    if (r.builder.add(r.valid_end, fv.h.seq, fv.end_seq, fv.h.ts_ns, fv.max_ts, fv.records, &e,
                      after_damage))
      r.entries.push_back(e);
    after_damage = false;
    ++r.frames;
    r.end_seq = fv.end_seq;
    r.valid_end += fv.size;
  }
  r.tail_nonzero_end = r.valid_end;
  if (r.valid_end < r.file_size) {
    auto z = f.nonzero_end(r.valid_end);
    if (!z) return z.error();
    r.tail_nonzero_end = z.value();
    r.tail_zero = r.tail_nonzero_end == r.valid_end;
  }
  return r;
}

}  // namespace shmbus::persist::detail
