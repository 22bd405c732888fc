// scan.h: reading one segment file through a window of pread()s, and the full scan
// that recovery, index rebuilds and fsck share.  Never maps the file: a writer that
// trims or deletes a segment cannot make a reader fault.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "coding.h"
#include "format.h"
#include "fs.h"
#include "index.h"

namespace shmbus::persist::detail {

// Work bounds of repaired_span(), in bytes run through the CRC: one for length repairs
// (up to 32 CRCs of a frame each), one for kind repairs (up to 3), so that damage of one
// kind cannot use up the other's repairs (a review: 13 records with a bad payload byte,
// each tried for a length repair, left none for a kind repair further on, and the scan
// searched that record's payload).
struct RepairBudget {
  uint64_t length = 0, kind = 0;
  static RepairBudget for_size(uint64_t file_size) {
    const uint64_t b = 4 * file_size + (16 << 20);
    return RepairBudget{b, b};
  }
};

class SegmentFile {
 public:
  // Opens NAME.seg read-only (O_NOFOLLOW).
  static Result<SegmentFile> open(int dir, uint64_t first_seq);
  SegmentFile(UniqueFd fd, std::string name, uint64_t size)
      : fd_(std::move(fd)), name_(std::move(name)), size_(size) {}

  const std::string& name() const noexcept { return name_; }
  int fd() const noexcept { return fd_.get(); }
  uint64_t size() const noexcept { return size_; }  // as of the last refresh
  // Re-reads the size and forgets the window (a live writer may have added bytes).
  Result<uint64_t> refresh();

  // The first bytes of the file, up to a header's worth (fewer if it is shorter); the
  // view is valid until the next call on this object.
  Result<Bytes> header_bytes();
  Result<SegmentHeader> read_header();
  // Decodes the frame at `off`.  On kOk, out->payload views the window: valid until
  // the next call on this object.  Errors are I/O errors only.
  Result<FrameStatus> read_frame(uint64_t off, FrameView* out);
  // read_frame() without a read: the frame's status when all of it lies in the window
  // already (what read_frame() would return), nullopt when it does not (call
  // read_frame()).  The replay's path for every frame but a window's last.
  std::optional<FrameStatus> frame_in_window(uint64_t off, FrameView* out) const noexcept {
    if (off < buf_off_ || off >= size_ || off - buf_off_ > buf_len_ ||
        buf_len_ - (off - buf_off_) < kFrameHeaderSize)
      return std::nullopt;
    const std::byte* p = buf_.data() + (off - buf_off_);
    const uint64_t len = get_u32(p + kFrmLength);
    if (len > kMaxPayload) return std::nullopt;
    const uint64_t n = frame_size(len);
    if (buf_len_ - (off - buf_off_) < n || size_ - off < n) return std::nullopt;
    return allowed(decode_frame(Bytes(p, static_cast<size_t>(n)), out), *out);
  }
  // The segment's format version, once its header was decoded (read_header() sets it; a
  // caller that decodes the header itself says it here).  A batch frame in a version 1
  // segment is invalid (kBadHeader): no writer puts one there (FORMAT.md).  Until then
  // batch frames are taken (fsck's look at a first frame behind a damaged header).
  void set_version(uint16_t v) noexcept { batches_ = v >= 2; }
  // The format version its frames are read as (set_version(): 1 or 2).
  uint16_t version() const noexcept { return batches_ ? 2 : 1; }
  // The bytes the frame header at `off` claims (the frame_size() of its length) when that
  // header is plausible: a length within kMaxPayload, a known kind, the reserved field
  // zero (what decode_frame() checks before the CRC).  0 when it is not, or when fewer
  // than a header's bytes lie at `off`.  Reads the header only.
  Result<uint64_t> claimed_span(uint64_t off);
  // The frame_size() of the frame at `off` when one header field is the only damage: its
  // length with one bit flipped back (of the 32), or, when the kind or reserved field
  // holds what no frame has, those two set to a known kind and zero; either for which the
  // frame's CRC, stored in its header, matches (a 2^-32 chance by accident), within the
  // file.  0 when none does (the damage is elsewhere, or in more than one place).  At
  // most 32 CRCs of the frame, each charged to its part of *budget (a repair whose CRC
  // would overdraw it is not tried).
  Result<uint64_t> repaired_span(uint64_t off, RepairBudget* budget);
  // Whether the bytes [off, size()) are all zero.
  Result<bool> zero_from(uint64_t off);
  // The offset just past the last non-zero byte in [off, size()), or off if none.
  Result<uint64_t> nonzero_end(uint64_t off);

 private:
  Result<Bytes> view(uint64_t off, uint64_t n);
  FrameStatus allowed(FrameStatus st, const FrameView& fv) const noexcept {
    return st == FrameStatus::kOk && !batches_ && fv.h.kind == FrameKind::kBatch ? FrameStatus::kBadHeader
                                                                                 : st;
  }
  bool batches_ = true;

  UniqueFd fd_;
  std::string name_;
  uint64_t size_ = 0;
  std::vector<std::byte> buf_;
  uint64_t buf_off_ = 0;
  size_t buf_len_ = 0;
};

// True when the header of this segment was never (completely) written: the file holds
// fewer bytes than a header and they are a prefix of one, or the header is all zeros
// (a pmem segment just allocated).  Such a last segment is being created, or its
// creation was interrupted; it cannot hold records.
// `head` is what header_bytes() returned: judge exactly the bytes that failed to decode.
bool header_not_written(Bytes head);

// Damaged bytes with a valid frame after them (not a torn tail): kept in the file, the
// sequences in between unreadable.
struct ScanDamage {
  uint64_t offset = 0;    // of the first bad byte (where a frame should have started)
  uint64_t bytes = 0;     // up to the next valid frame
  uint64_t from_seq = 0;  // sequences [from_seq, to_seq) are unreadable
  uint64_t to_seq = 0;
  FrameStatus why = FrameStatus::kOk;  // what was found at `offset`
};

struct ScanResult {
  SegmentHeader header;
  uint64_t file_size = 0;
  uint64_t valid_end = 0;  // offset just after the last valid frame
  uint64_t end_seq = 0;    // one past the last valid record (header.first_seq if none)
  uint64_t frames = 0;     // valid frames (data and lost)
  FrameStatus stop = FrameStatus::kEof;  // what ended the scan at valid_end
  uint64_t stop_seq = 0;                 // kBadSeq: the sequence found instead of end_seq
  bool tail_zero = true;                 // [valid_end, file_size) is all zero
  uint64_t tail_nonzero_end = 0;         // just past the tail's last non-zero byte
  IndexBuilder builder{0};               // fed with every valid frame
  std::vector<IndexEntry> entries;       // the entries it produced (no seal entry)
  std::vector<ScanDamage> damage;        // damaged ranges before valid_end, in order
};

// Checks the header (and that it starts at `first_seq`) and every frame: length
// bounds, CRC, consecutive sequences.  Header problems are errors.  At a bad frame the
// scan looks for a later valid frame (8-byte aligned, not going back in sequence): if
// there is one, the bad bytes are damage (see damage) and the scan goes on there;
// if not, they are the torn tail that ends the scan (see stop).
//
// Where the next frame starts after a bad one: past the bytes its length claims once one
// flipped bit is undone in it, or its kind or reserved field is made valid, when that
// makes its CRC match (repaired_span(): a header damaged on disk); else past the bytes a
// plausible header claims (claimed_span()), never inside them: those are its payload,
// which holds whatever a publisher sent, valid frames included (a torn record whose
// payload embeds a frame was once served as that frame); a claim that runs past the
// file's end is a torn tail.  Only without a plausible header does the search start
// inside (8-byte steps).  Always
// where `index` (the segment's index, used when its created_ns matches the header) lists
// a frame after the bad one: the writer indexes real frames only.  Candidates found by
// searching from inside the bad frame (no plausible header) keep to find_next_frame()'s
// sequence bound (past its end, none: after a damaged lost-range marker the next frame
// is as far on as the marker said); the search and the repairs are bounded.
Result<ScanResult> scan_segment(SegmentFile& f, uint64_t first_seq, uint32_t index_interval,
                                const IndexFile* index = nullptr);
// The offset of the first valid frame at or after `from` (8-byte steps) whose sequence
// is at least `min_seq` and, when `bad_at` is given (the damaged frame's offset), at
// most min_seq + (offset - bad_at) / 16: every frame takes more than 16 bytes per sequence
// it covers (kMinFrameBytesPerSeq), so real
// frames after damage cannot be further on in sequence than that (unless a lost-range
// marker lies among the damaged bytes: then only the index finds the next frame), while
// a frame embedded in a payload carries whatever sequence its author gave it.  Work is
// bounded: a candidate with a plausible header costs a read and a CRC of what it claims,
// so candidates claiming large lengths at every step (garbage) once took time in the
// product of the two; past 16 times the bytes left in the file plus 16 MiB of such reads
// the search gives up (none).
Result<std::optional<uint64_t>> find_next_frame(SegmentFile& f, uint64_t from, uint64_t min_seq,
                                                std::optional<uint64_t> bad_at = std::nullopt);
// scan_segment()'s rule for where reading resumes after the bad frame at `bad` (above:
// past its repaired or plausible claim, or where `index` lists a frame), with a sequence
// of at least `min_seq`: the frame's offset, or none (a torn tail).  `index` as the
// caller trusts it (scan_segment(): when its created_ns matches the header's).  fsck
// rebuilds a damaged header on the same rule, so that a segment whose header is damaged
// keeps exactly the frames it would keep with the header intact.
Result<std::optional<uint64_t>> resume_after(SegmentFile& f, uint64_t bad, uint64_t min_seq,
                                             const IndexFile* index, RepairBudget* budget);

}  // namespace shmbus::persist::detail
