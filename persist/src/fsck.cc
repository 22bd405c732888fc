// fsck.cc: checking (and repairing) the stored segments of one stream or a data root.
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string_view>

#include "coding.h"
#include "crc32c.h"
#include "fork_lock.h"
#include "format.h"
#include "fs.h"
#include "store_path.h"
#include "index.h"
#include "marker.h"
#include "scan.h"
#include "settings.h"
#include "shmbus/persist.h"
#include "shmbus/stream.h"
#include "watermark.h"

namespace shmbus::persist {

using namespace detail;

bool FsckReport::clean() const noexcept {
  for (const auto& i : issues)
    if (!i.repaired) return false;
  return true;
}

namespace {

constexpr uint32_t kDefaultInterval = StoreOptions{}.index_interval;
// What a damage report adds once --repair records the damage (taken off again when the
// index could not be written).
constexpr std::string_view kRecordedInIndex = "; recorded in the index";

class StreamChecker {
 public:
  StreamChecker(int dir, std::string ns, std::string stream, bool repair, FsckReport* rep)
      : dir_(dir), ns_(std::move(ns)), stream_(std::move(stream)), repair_(repair), rep_(rep) {}

  Result<void> run();

 private:
  void issue(const std::string& file, uint64_t offset, uint64_t bytes, std::string problem,
             bool repaired) {
    rep_->issues.push_back(FsckIssue{ns_ + "/" + stream_ + "/" + file, offset, bytes,
                                     std::move(problem), repaired});
  }
  // A problem --repair has no fix for (a segment that cannot be opened, one of another
  // stream, missing sequences, a damaged settings file): reported, never "repaired".
  void unfixable(const std::string& file, uint64_t offset, uint64_t bytes, std::string problem) {
    issue(file, offset, bytes, std::move(problem), false);
    rep_->issues.back().repairable = false;
  }
  bool can_repair() const { return repair_ && !writer_live_; }
  Result<void> check();     // run()'s checks, the lock decided
  bool writer_now();
  // A gap [from, to) before a live writer's segment `to` that is its doing, not damage:
  // a new segment the directory listing missed (readdir of a large directory while files
  // are created may return a later one and not it: review 4 saw "sequences [a, b) are
  // missing" on a healthy store), so `from` exists now; or retention removed what lay
  // before `to` while fsck read (the oldest segment now is `to` or later).
  bool listing_missed(uint64_t from, uint64_t to) const {
    if (!writer_live_ || from >= to) return false;
    auto now = list_segments(dir_);
    return now && (std::binary_search(now->begin(), now->end(), from) || now->empty() || now->front() >= to);
  }
  // Whether `name` no longer exists (a live writer's retention removed it meanwhile).
  bool gone(const std::string& name) const {
    return ::faccessat(dir_, name.c_str(), F_OK, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT;
  }
  // Segments wholly below the watermark (each one's successor starts at or below it): a
  // deletion that a crash interrupted, which the next writer's recovery finishes.  Not
  // damage: --repair finishes it as recovery does (erasing first on a --secure store),
  // never quarantines it (a half-erased segment has no header left: quarantined, the
  // deleted records' bytes stayed on disk, a review).  Returns how many of `segs` those are.
  size_t finish_interrupted_deletion(const std::vector<uint64_t>& segs, uint64_t deleted_below);
  Result<void> lock();
  // Takes the store's LOCK (opened so): whether it was free; not found: an error.
  Result<bool> try_lock(OpenMode mode);
  void check_files();
  Result<void> check_segment(uint64_t first, bool last, uint64_t next_first);
  // Whether what a repair frees is erased first: unless the store's settings say it is
  // not --secure (unreadable ones: erased).
  bool secure_store() const {
    const auto settings = read_settings(dir_);
    return !settings || settings->secure_delete;
  }
  // `ts_ns`: the marker's timestamp, the newest of the records before it (a marker fsck
  // writes stands for records stored before it: stamped with the time of the repair, it
  // made a sealed segment look new to age retention and to a seek by time).
  Result<bool> cut_and_mark_lost(uint64_t first, uint64_t at, uint64_t from, uint64_t to,
                                 uint64_t ts_ns);
  Result<std::string> quarantine(const std::string& name, bool unlink_name);
  // `head`: a copy of the damaged header's bytes (a view of f's lasts until its next call).
  std::optional<uint64_t> rebuild_anchor(SegmentFile& f, uint64_t first, Bytes head,
                                         const IndexFile* index);
  // The names a header fsck writes (a rebuilt one, a lost-range marker's segment) gives:
  // those of the store's first segment whose header decodes, else the folders' (a store
  // reached through a link, copied or renamed: headers naming the folders were made that
  // no repair could make agree with the other segments, reviews).  Found once per store
  // (per damaged segment, a check of a store of damaged headers took time in the square
  // of their number: a review).
  const std::pair<std::string, std::string>& header_names();
  Result<void> write_header(uint64_t first, const std::byte* head);
  // Whether the index holds `expected` (or, for the last segment, a prefix of it, or all
  // of it and `seal`) once this returns.
  bool check_index(uint64_t first, bool last, uint64_t created_ns,
                   const std::vector<IndexEntry>& expected,
                   const std::optional<IndexEntry>& seal, uint32_t interval,
                   uint64_t segment_size, bool record_damage);

  int dir_;
  std::string ns_, stream_;
  bool repair_;
  FsckReport* rep_;
  // The store's lock while held: a ForkLock, which a child forked meanwhile does not keep
  // (a child of a process running fsck --repair in a thread held it for as long as it
  // lived, and no persister could start: note 65).
  ForkLock lock_;
  bool writer_live_ = false;
  bool dir_changed_ = false;  // a repair created, renamed or removed a file
  std::optional<uint64_t> prev_end_;
  std::optional<std::pair<std::string, std::string>> header_names_;  // header_names()
  uint64_t prev_max_ts_ = 0;  // the newest timestamp of the segments checked so far
};

Result<bool> StreamChecker::try_lock(OpenMode mode) {
  const int dir = dir_;
  return lock_.try_take([dir, mode] { return open_at(dir, "LOCK", mode); },
                        "cannot lock " + ns_ + "/" + stream_);
}

Result<void> StreamChecker::lock() {
  auto taken = try_lock(repair_ ? OpenMode::kCreateOrOpen : OpenMode::kRead);
  if (!taken) return taken.error().code == Errc::kNotFound ? Result<void>() : Result<void>(taken.error());
  if (!taken.value()) {
    if (repair_)
      return make_error(Errc::kBusy, "a writer has " + ns_ + "/" + stream_ +
                                         " open; stop it before fsck --repair");
    writer_live_ = true;  // its active segment is in flux: not judged
  }
  return {};
}

// Gives a segment a quarantine name no earlier quarantine holds (a hard link: linkat
// never replaces a name, renameat silently would), or finds the one a repair a crash
// interrupted gave it (the same file), and, with `unlink_name`, removes its own name.
// A marker put in place of it is renamed over that name instead (install_marker_segment),
// so that the name is never missing.  Other writers are kept out by the stream's lock.
Result<std::string> StreamChecker::quarantine(const std::string& name, bool unlink_name) {
  struct stat seg;
  if (::fstatat(dir_, name.c_str(), &seg, AT_SYMLINK_NOFOLLOW) != 0)
    return errno_error(errno, "cannot stat '" + name + "'");
  for (int i = 0; i < 1000; ++i) {
    std::string q = name + ".corrupt";  // (appended: g++ 12's -Wrestrict misfires on "." + to_string)
    if (i) q += '.' + std::to_string(i);
    if (auto linked = link_file(dir_, name, q); !linked) {
      if (linked.error().code != Errc::kExists) {
        if (!unlink_name) return linked.error();
        // A file system without hard links: renamed, after a look that the name is free.
        if (::faccessat(dir_, q.c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0) continue;
        if (auto r = rename_file(dir_, name, q); !r) return r.error();
        dir_changed_ = true;
        return q;
      }
      struct stat other;
      if (::fstatat(dir_, q.c_str(), &other, AT_SYMLINK_NOFOLLOW) != 0 || other.st_dev != seg.st_dev ||
          other.st_ino != seg.st_ino)
        continue;  // an earlier quarantine's: kept
    }
    dir_changed_ = true;
    if (unlink_name)
      if (auto r = remove_file(dir_, name, false); !r) return r.error();
    return q;
  }
  return make_error(Errc::kExists, "'" + name + "' has 1000 quarantined copies already");
}

// A segment header written by a newer shmbus: the magic, a version above this build's
// (or header flags it does not know) and a CRC that holds over them.  A version field of
// 0 or a stale CRC is damage, not a newer format (the decoder checks the version first,
// so both said "incompatible": a review of the first version of this check): its header
// is rebuilt when an intact frame follows it (rebuild_anchor), else the segment is moved
// aside.
static bool newer_format(Bytes head) {
  if (head.size() < kSegmentHeaderSize ||
      std::memcmp(head.data(), kSegmentMagic, sizeof kSegmentMagic) != 0)
    return false;
  const std::byte* p = head.data();
  if (crc32c(p, kHdrCrc) != get_u32(p + kHdrCrc)) return false;
  const uint16_t version = get_u16(p + kHdrVersion);
  return version > kFormatVersion ||
         (version >= kMinFormatVersion &&
          (get_u32(p + kHdrFlags) != 0 || get_u16(p + kHdrSize) != kSegmentHeaderSize));
}

// The format version of a segment whose header does not decode, or none when it cannot
// be told (the segment is then moved aside, its bytes kept).  Version 1 reads all that
// version 2 reads but batch frames, so a wrong version destroys or forges records: read
// as 1, a version 2 segment's intact batch frames were taken for damage and cut; read as
// 2, a version 1 segment served a batch frame a publisher embedded in a payload (reviews).
// - The version field itself damaged (the header's CRC holds with the other version in
//   it): that version.
// - Else a field naming 2: 2.  A field naming 1: 1 unless a batch frame is among the
//   intact frames that follow one another from the header's end (read as version 2; a
//   frame embedded in a payload is never among them): none then.
// - Else none: a version guessed from the frames went wrong both ways (reviews).
// What is left: a field damaged to the other version together with another field of
// the header (two bits of the field and more) is believed.
static std::optional<uint16_t> damaged_header_version(SegmentFile& f, Bytes head) {
  if (head.size() < kSegmentHeaderSize) return std::nullopt;
  std::byte h[kSegmentHeaderSize];
  std::memcpy(h, head.data(), sizeof h);
  // One flipped bit anywhere (the CRC holds with it flipped back): the header as written
  // tells, and one of a newer format (a version above this build's, flags or a header
  // size it does not know) is not rebuilt (a bit of its version field flipped, it was
  // rebuilt as version 2 and its flags erased: a review).
  auto as_written = [](const std::byte* w) -> std::optional<uint16_t> {
    const uint16_t was = get_u16(w + kHdrVersion);
    if (newer_format(Bytes(w, kSegmentHeaderSize)) || was < kMinFormatVersion || was > kFormatVersion)
      return std::nullopt;
    return was;
  };
  const uint32_t crc = crc32c(h, kHdrCrc), stored = get_u32(h + kHdrCrc);
  for (uint32_t b = 0; b < 32; ++b)
    if (crc == (stored ^ (uint32_t{1} << b))) {  // a bit of the CRC field itself
      put_u32(h + kHdrCrc, crc);
      const auto was = as_written(h);
      put_u32(h + kHdrCrc, stored);
      return was;
    }
  for (size_t i = 0; i < kHdrCrc; ++i)
    for (int b = 0; b < 8; ++b) {
      h[i] ^= static_cast<std::byte>(1 << b);
      const bool holds = crc32c(h, kHdrCrc) == stored;
      const auto was = holds ? as_written(h) : std::nullopt;
      h[i] ^= static_cast<std::byte>(1 << b);
      if (holds) return was;
    }
  const uint16_t v = get_u16(h + kHdrVersion);
  for (const uint16_t other : {kMinFormatVersion, kFormatVersion}) {
    if (other == v) continue;
    put_u16(h + kHdrVersion, other);
    if (crc32c(h, kHdrCrc) == get_u32(h + kHdrCrc))
      return newer_format(Bytes(h, sizeof h)) ? std::nullopt : std::optional<uint16_t>(other);
  }
  put_u16(h + kHdrVersion, v);
  if (v == kFormatVersion) return v;
  if (v != kMinFormatVersion) return std::nullopt;
  f.set_version(kFormatVersion);
  for (uint64_t off = kSegmentHeaderSize;;) {  // bounded: each step passes a frame
    FrameView fv;
    auto st = f.read_frame(off, &fv);
    if (!st) return std::nullopt;
    if (st.value() != FrameStatus::kOk) return v;
    if (fv.h.kind == FrameKind::kBatch) return std::nullopt;
    off += fv.size;
  }
}

// A header that does not decode (not one that decodes and names another sequence: that
// segment is not this name's, a review), in front of frames that do: the offset of the
// frame a rebuilt header rests on, or none.  The first frame at the header's end when it
// carries the file name's sequence; that frame damaged too, the frame a scan with the
// header intact resumes at (resume_after(): scan_segment()'s own rule, with `index` when
// the damaged header's created_ns field still matches it), so that the segment keeps
// what it would keep with its header intact: the whole segment went to quarantine, 10 of
// 11 intact records with it (a review); a search inside a frame whose claim ran past the
// file's end served a record a publisher had embedded in a payload, and cut or marked
// lost the records after it (reviews).  Not for a newer format's header: not damage.
std::optional<uint64_t> StreamChecker::rebuild_anchor(SegmentFile& f, uint64_t first, Bytes head,
                                                      const IndexFile* index) {
  if (head.size() < kSegmentHeaderSize) return std::nullopt;
  const std::byte* bytes = head.data();
  // A header whose CRC holds was written so (by a newer format, whose flags were erased
  // by a rebuild: a review; or on purpose): never rewritten (one of an unknown size, or
  // a zeroed field, was: a review).  A damaged version field (the CRC stale) is rebuilt
  // where the version can be told (damaged_header_version).
  if (newer_format(head) || f.read_header() || crc32c(bytes, kHdrCrc) == get_u32(bytes + kHdrCrc))
    return std::nullopt;
  // Names a rebuilt header could not hold: none.
  const auto& [hns, hstream] = header_names();
  if (!validate_name("namespace", hns) || !validate_name("stream", hstream)) return std::nullopt;
  const auto version = damaged_header_version(f, head);
  if (!version) return std::nullopt;
  f.set_version(*version);  // frames as that version has them
  constexpr uint64_t bad = kSegmentHeaderSize;
  FrameView fv;
  auto st = f.read_frame(bad, &fv);
  if (!st) return std::nullopt;
  if (st.value() == FrameStatus::kOk) return fv.h.seq == first ? std::optional<uint64_t>(bad) : std::nullopt;
  RepairBudget budget = RepairBudget::for_size(f.size());
  auto next = resume_after(f, bad, first, index, &budget);
  return next ? next.value() : std::nullopt;
}

// An upper bound of the sequences a segment holds whose frames cannot be read in order (its
// header damaged past rebuilding, or naming another sequence): what the next writer must
// not number below once the segment is moved aside, so that no record stored in it has
// its sequence given to a new one (the next writer continued at the segment's first
// sequence: reviews).  Past the end of every intact frame in it (those found inside
// damaged bytes included, a frame a publisher embedded in a payload among them: a higher
// bound, never a lower one; but none past 2^63, where no stream starts, unless the
// segment does: one crafted so had every later `create` refuse the store, a review),
// plus one sequence per 16 bytes no intact frame covers (a record takes at least that: a
// data frame 32 bytes, a batch's sub-record 16) up to the last non-zero byte and a
// batch past it (a pmem segment's zeroed room holds nothing), and past every frame the
// segment's index lists (the writer lists frames once synced: a zeroed block hid 20,000
// indexed records from the bound, a review) with an index interval's room after the
// last.  What it cannot see: a damaged lost-range marker that no index entry lists (its
// jump is unknown).  The CRC work on claims of over 256 bytes is bounded as a scan's
// (past it they count as uncovered); smaller ones are always checked (a ladder of large
// claims used the budget up, and an intact marker after it was not seen: a review).
struct EndBound {
  uint64_t known = 0;  // the end of the intact frames and index entries found
  uint64_t to = 0;     // the bound
};
static Result<EndBound> sequences_end_bound(SegmentFile& f, uint64_t first, const IndexFile* index) {
  f.set_version(kFormatVersion);  // every kind of frame counts
  const uint64_t size = f.size();
  auto nz = f.nonzero_end(std::min<uint64_t>(kSegmentHeaderSize, size));
  if (!nz) return nz.error();
  uint64_t counted_end = nz.value() + frame_size(kBatchPayloadMax);
  const uint64_t highest = std::max(first, kMaxFirstSeq);
  uint64_t end = first;
  if (index)
    for (const IndexEntry& e : index->entries) {
      if (e.end_seq <= highest) end = std::max(end, e.end_seq);
      counted_end = std::max(counted_end, e.offset + uint64_t{index->header.interval} + frame_size(kBatchPayloadMax));
    }
  counted_end = std::min(size, counted_end);
  constexpr uint64_t kFreeClaim = 256;
  uint64_t budget = 16 * size + (16 << 20);
  uint64_t uncovered = 0;
  for (uint64_t off = kSegmentHeaderSize; off < counted_end;) {  // bounded: each step advances
    auto span = f.claimed_span(off);
    if (!span) return span.error();
    const uint64_t claim = span.value();
    if (claim != 0 && claim <= size - off && (claim <= kFreeClaim || claim <= budget)) {
      if (claim > kFreeClaim) budget -= claim;
      FrameView fv;
      auto st = f.read_frame(off, &fv);
      if (!st) return st.error();
      if (st.value() == FrameStatus::kOk) {
        if (fv.end_seq <= highest) end = std::max(end, fv.end_seq);
        off += fv.size;
        continue;
      }
    }
    uncovered += std::min<uint64_t>(8, counted_end - off);
    off += 8;
  }
  // (At least one past what is known to have been held, so that the marker tells it:
  // k = min(known, to - 1) came out one short when nothing else was uncovered, a review.)
  const uint64_t more = std::max<uint64_t>((uncovered + kMinFrameBytesPerSeq - 1) / kMinFrameBytesPerSeq,
                                           end > first ? 1 : 0);
  return EndBound{end, end > UINT64_MAX - more ? UINT64_MAX : end + more};
}

const std::pair<std::string, std::string>& StreamChecker::header_names() {
  if (header_names_) return *header_names_;
  header_names_.emplace(ns_, stream_);
  if (auto segs = list_segments(dir_))
    for (const uint64_t seg : segs.value()) {
      auto f = SegmentFile::open(dir_, seg);
      if (!f) continue;
      if (auto h = f->read_header()) {
        header_names_.emplace(h->ns, h->stream);
        break;
      }
    }
  return *header_names_;
}

Result<void> StreamChecker::write_header(uint64_t first, const std::byte* head) {
  const std::string name = segment_file_name(first);
  auto fd = open_at(dir_, name, OpenMode::kReadWrite);
  if (!fd) return fd.error();
  if (auto r = pwrite_all(fd->get(), Bytes(head, kSegmentHeaderSize), 0, name); !r) return r;
  return sync_data(fd->get(), name);  // its index no longer matches: rebuilt below
}

void StreamChecker::check_files() {
  auto names = list_dir(dir_);
  if (!names) return;
  for (const auto& n : names.value()) {
    uint64_t seq;
    if (n.find(".seg.corrupt") != std::string::npos) {
      rep_->quarantined.push_back(ns_ + "/" + stream_ + "/" + n);
    } else if (writer_live_ && (n == kWatermarkTmpName || parse_numbered_name(n, kIndexTmpSuffix, &seq))) {
      continue;  // a live writer's update in progress (every start rewrites an index so)
    } else if (n == kWatermarkTmpName) {
      const bool fixed = can_repair() && remove_file(dir_, n, false).ok();
      dir_changed_ |= fixed;
      issue(n, 0, 0, "leftover temporary file of an interrupted watermark update", fixed);
    } else if (parse_numbered_name(n, kIndexTmpSuffix, &seq)) {
      const bool fixed = can_repair() && remove_file(dir_, n, false).ok();
      dir_changed_ |= fixed;
      issue(n, 0, 0, "leftover temporary file of an interrupted index rewrite", fixed);
    } else if (parse_numbered_name(n, kSegmentTmpSuffix, &seq)) {
      // A lost-range marker a repair a crash interrupted prepared (never a writer's): the
      // segment it was for is still under its name, and this repair deals with it again.
      const bool fixed = can_repair() && remove_file(dir_, n, false).ok();
      dir_changed_ |= fixed;
      issue(n, 0, 0, "leftover temporary file of an interrupted repair or marker withdrawal", fixed);
    } else if (parse_numbered_name(n, kIndexSuffix, &seq)) {
      // (A live writer's retention unlinks a segment, then its index: in flux, not judged.)
      if (writer_live_ || ::faccessat(dir_, segment_file_name(seq).c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0)
        continue;
      const bool fixed = can_repair() && remove_file(dir_, n, false).ok();
      dir_changed_ |= fixed;
      issue(n, 0, 0, "index without a segment", fixed);
    }
  }
}

Result<bool> StreamChecker::cut_and_mark_lost(uint64_t first, uint64_t at, uint64_t from,
                                              uint64_t to, uint64_t ts_ns) {
  const std::string name = segment_file_name(first);
  auto fd = open_at(dir_, name, OpenMode::kReadWrite);
  if (!fd) return fd.error();
  // The bytes cut may hold records: on a --secure store they are overwritten before the
  // space is given back, as recovery does.
  if (secure_store()) {
    auto size = file_size(fd->get(), name);
    if (!size) return size.error();
    if (size.value() > at)
      if (auto r = overwrite_zeros(fd->get(), at, size.value(), name); !r) return r.error();
  }
  if (auto r = truncate_to(fd->get(), at, name); !r) return r.error();
  if (to > from) {
    std::byte frame[frame_size(kLostPayloadSize)];
    encode_lost_marker(from, to, kLostRecords, ts_ns, frame);
    if (auto r = pwrite_all(fd->get(), frame, at, name); !r) return r.error();
  }
  if (auto r = sync_all(fd->get(), name); !r) return r.error();
  return true;
}

// The last segment's index as its writer leaves it: entries appended as it goes (a prefix;
// none and no header before its first flush, or on a full disk: FORMAT.md), and the seal
// entry once it sealed the segment (a roll that then could not create the next one, on a
// full disk or in a crash).
bool last_index_fits(const std::vector<IndexEntry>& got, const std::vector<IndexEntry>& expected,
                     const std::optional<IndexEntry>& seal) {
  if (got.size() <= expected.size()) return std::equal(got.begin(), got.end(), expected.begin());
  return seal && got.size() == expected.size() + 1 && got.back() == *seal &&
         std::equal(expected.begin(), expected.end(), got.begin());
}

bool StreamChecker::check_index(uint64_t first, bool last, uint64_t created_ns,
                                const std::vector<IndexEntry>& expected,
                                const std::optional<IndexEntry>& seal, uint32_t interval,
                                uint64_t segment_size, bool record_damage) {
  const std::string name = index_file_name(first);
  auto idx = read_index(dir_, first, segment_size);
  std::string problem;
  if (!idx) {
    const Errc e = idx.error().code;
    if (!last || (e != Errc::kNotFound && e != Errc::kTruncated))
      problem = e == Errc::kNotFound ? "index missing" : idx.error().message;
  } else if (idx->header.created_ns != created_ns) {
    problem = "index belongs to an earlier segment of the same name";
  } else if (idx->valid_bytes != idx->file_size) {
    problem = "index has " + std::to_string(idx->file_size - idx->valid_bytes) +
              " damaged or stray bytes at offset " + std::to_string(idx->valid_bytes);
  } else if (last ? !last_index_fits(idx->entries, expected, seal) : idx->entries != expected) {
    problem = "index does not match its segment";
  }
  // The last segment's index may hold a prefix of the entries (its writer adds them as it
  // goes), so damage found there is recorded only by writing the index: without that,
  // --repair reported it recorded and readers still stopped at it (no entry past it).
  if (problem.empty() && !record_damage) return true;
  const bool issue_of_its_own = !problem.empty();
  if (!issue_of_its_own) problem = "could not record the damage in the index";
  bool fixed = false;
  if (can_repair()) {
    // The last segment's index gets entries for every frame found, and the next writer
    // trusts an indexed frame as synced (recovery writes again only what lies after the
    // last entry): its bytes are written again and synced first, as a failed sync may
    // have left them in clean pages only.
    Result<void> synced;
    if (last) {
      const std::string seg = segment_file_name(first);
      auto fd = open_at(dir_, seg, OpenMode::kReadWrite);
      synced = fd ? rewrite_bytes(fd->get(), 0, segment_size, "segment " + seg) : Result<void>(fd.error());
      if (synced) synced = sync_data(fd->get(), "segment " + seg);
    }
    fixed = synced && write_index(dir_, IndexHeader{interval, first, created_ns}, expected).ok();
  }
  if (issue_of_its_own || !fixed) issue(name, 0, 0, problem, fixed);
  return fixed;
}

Result<void> StreamChecker::check_segment(uint64_t first, bool last, uint64_t next_first) {
  const std::string name = segment_file_name(first);
  auto f = SegmentFile::open(dir_, first);
  if (!f) {
    // Gone since the listing: a live writer's retention removed it (not judged, nor
    // where the next one starts).
    if (writer_live_ && gone(name)) {
      prev_end_.reset();
      return {};
    }
    unfixable(name, 0, 0, f.error().message);
    prev_end_.reset();
    return {};
  }
  ++rep_->segments;
  rep_->bytes += f->size();
  if (last && writer_live_) {
    // A live writer's active segment: its tail is being written (never judged); the
    // complete frames before it are read and counted, and its header and its place in the
    // sequence are checked.  One whose header is not written yet (a roll's new segment,
    // 0 bytes at first) holds nothing yet: everything below `first` was read.
    auto live = scan_segment(f.value(), first, kDefaultInterval);
    if (!live) {
      auto head = f->header_bytes();
      const bool creating = head && header_not_written(head.value());
      if (!creating)
        if (auto h = f->read_header(); !h) unfixable(name, 0, 0, h.error().message);
      prev_end_.reset();
      rep_->live.push_back(FsckLive{ns_ + "/" + stream_, creating ? first : 0, 0});
      return {};
    }
    if (live->header.ns != ns_ || live->header.stream != stream_)
      unfixable(name, kHdrNsLen, 0, "header names stream " + live->header.ns + "/" + live->header.stream);
    if (prev_end_ && *prev_end_ != first && !listing_missed(*prev_end_, first))
      unfixable(name, 0, 0, "sequences [" + std::to_string(*prev_end_) + ", " + std::to_string(first) +
                                ") are missing before this segment");
    rep_->records += live->builder.count();
    rep_->live.push_back(FsckLive{ns_ + "/" + stream_, live->end_seq, live->valid_end});
    prev_end_ = live->end_seq;
    if (!live->builder.empty()) prev_max_ts_ = std::max(prev_max_ts_, live->builder.max_ts());
    return {};
  }
  auto old_idx = read_index(dir_, first, f->size());
  const uint32_t interval =
      old_idx && old_idx->header.interval >= 256 ? old_idx->header.interval : kDefaultInterval;
  auto scan = scan_segment(f.value(), first, interval, old_idx ? &old_idx.value() : nullptr);
  // A header that does not decode: one copy of its bytes for all that follows (a view
  // lasts only until the next call on the file).  The segment's index is trusted when the
  // header's created_ns field still matches it (an index of an earlier segment of the
  // same name is not: the header ties them, and that field may be what was damaged).
  std::vector<std::byte> kept;
  if (!scan)
    if (auto head = f->header_bytes(); head) kept.assign(head->begin(), head->end());
  const IndexFile* own_idx = nullptr;
  if (old_idx && kept.size() >= kSegmentHeaderSize &&
      get_u64(kept.data() + kHdrCreatedNs) == old_idx->header.created_ns)
    own_idx = &old_idx.value();
  const std::optional<uint64_t> anchor =
      scan ? std::nullopt : rebuild_anchor(f.value(), first, Bytes(kept.data(), kept.size()), own_idx);
  if (anchor) {
    bool fixed = false;
    const std::string why = scan.error().message;
    // The rebuilt header keeps the segment's created_ns where its index tells it, and the
    // scan after the rebuild gets that index with the anchor listed in it, so that it
    // reaches the anchor as rebuild_anchor() did; a scan that still stops short of it has
    // the old header written back, and the segment is moved aside as before.
    IndexFile hint;
    if (own_idx) hint = *own_idx;
    else hint.header.created_ns = now_ns();
    auto at = std::lower_bound(hint.entries.begin(), hint.entries.end(), *anchor,
                               [](const IndexEntry& e, uint64_t off) { return e.offset < off; });
    if (at == hint.entries.end() || at->offset != *anchor) hint.entries.insert(at, IndexEntry{*anchor});
    SegmentHeader rebuilt;
    rebuilt.version = f->version();
    rebuilt.first_seq = first;
    rebuilt.created_ns = hint.header.created_ns;
    rebuilt.ns = header_names().first;
    rebuilt.stream = header_names().second;
    std::byte head[kSegmentHeaderSize];
    encode_segment_header(rebuilt, head);
    if (can_repair() && kept.size() == kSegmentHeaderSize && write_header(first, head)) {
      auto f2 = SegmentFile::open(dir_, first);
      auto again = f2 ? scan_segment(f2.value(), first, interval, &hint) : Result<ScanResult>(f2.error());
      if (again && again->valid_end > *anchor) {
        fixed = true;
        f = std::move(f2);
        scan = std::move(again);
      } else {
        (void)write_header(first, kept.data());
      }
    }
    if (fixed || !can_repair()) {
      issue(name, 0, kSegmentHeaderSize,
            "damaged segment header (" + why + ") in front of intact frames" +
                (fixed ? ": rebuilt from the file name, the store's names and the intact frame at offset " +
                             std::to_string(*anchor)
                       : "; --repair rebuilds it where a scan after the rebuild reaches the intact frame at offset " +
                             std::to_string(*anchor) + " (else it moves the segment aside)"),
            fixed);
      if (!fixed) {
        prev_end_.reset();
        return {};
      }
    }
  }
  if (!scan) {
    auto head = f->header_bytes();
    if (last && head && header_not_written(head.value()) && !flushed_despite_its_header(dir_, first, f->size())) {
      bool fixed = false;
      if (can_repair()) {
        const bool secure = secure_store();  // (its pages after the header may hold records)
        fixed = remove_file(dir_, name, secure).ok();
        (void)remove_file(dir_, index_file_name(first), secure);
        dir_changed_ = true;
      }
      issue(name, 0, f->size(), "segment whose creation never completed", fixed);
    } else if (head && newer_format(head.value())) {
      // A shmbus segment of a format version or header flags this build does not know:
      // written by a newer shmbus, not damaged, whatever the decoder said first (a header
      // size it does not know is a newer format's too).  Left alone (--repair moved it
      // aside as corrupt, and said "clean after repair": reviews).
      unfixable(name, 0, f->size(),
                scan.error().message + " (written by a newer shmbus? read it with that one; --repair "
                                       "leaves it alone)");
      prev_end_.reset();
    } else {
      bool fixed = false;
      std::string how;
      if (can_repair()) {
        // What stands in for the segment: a lost-range marker up to the next segment's
        // first sequence; for the last segment, whose end is not known, up to a bound past
        // anything it can have held (sequences_end_bound: the next writer numbered on from
        // its first sequence, giving stored records' sequences to new ones), marked so
        // (kLostEndUnknown) that a persister whose ring is further withdraws it and stores
        // again what the ring holds (recovery.cc; a marker past the ring's end had the
        // persister refuse the store, and one written only when no ring was there left the
        // reuse to a reboot after the repair: reviews).
        std::optional<uint64_t> to;
        Result<EndBound> bound = EndBound{first, first};
        if (!last) to = next_first;
        else if (bound = sequences_end_bound(f.value(), first, old_idx ? &old_idx.value() : nullptr); bound && bound->to > first)
          to = bound->to;
        // The marker is prepared first, the segment then given its quarantine name, and
        // the marker renamed over the segment's: a crash at any step leaves the segment or
        // its marker under the name, never neither (the next writer would number on from
        // the segment's first sequence).
        Result<void> marker = !bound ? Result<void>(bound.error())
                              : to   ? prepare_marker_segment(dir_, first, bound->known, *to,
                                                              last ? kLostEndUnknown : kLostRecords,
                                                              prev_max_ts_, header_names().first,
                                                              header_names().second)
                                     : Result<void>();
        // (A last segment whose marker cannot be written stays: moved aside without one,
        // the next writer would number on from its first sequence.)
        Result<std::string> q = !bound                      ? Result<std::string>(bound.error())
                                : last && to && !marker ? Result<std::string>(marker.error())
                                                        : quarantine(name, /*unlink_name=*/!to || !marker);
        if (q && to && marker) {
          // Renamed over the segment's name, which it replaces at once (the quarantine name
          // synced first: a rename that lasted without the link would leave the segment's
          // bytes with no name).  A failure there: a last segment stays where it is (its
          // quarantine link removed), another goes as without a marker.  Once in place, an
          // index that could not be written is reported by the next check (and written by
          // its repair).
          if (marker = sync_all(dir_, "the directory of " + name); marker)
            marker = install_marker_segment(dir_, first);
          if (marker) {
            if (!index_marker_segment(dir_, first)) (void)remove_file(dir_, index_file_name(first), false);
          } else if (last) {
            (void)remove_file(dir_, q.value(), false);
            q = Result<std::string>(marker.error());
          } else {
            (void)remove_file(dir_, name, false);
          }
        }
        fixed = q.ok();
        if (!q) how = "; not moved aside: " + q.error().message;
        if (q) rep_->quarantined.push_back(ns_ + "/" + stream_ + "/" + q.value());
        if (q && (!to || !marker)) (void)remove_file(dir_, index_file_name(first), false);
        (void)remove_file(dir_, segment_tmp_file_name(first), false);  // one not installed
        if (q) how = " (moved aside to " + q.value();
        if (q && to && marker) {
          how += "; replaced by a lost-range marker for [" + std::to_string(first) + ", " +
                 std::to_string(*to) + ")" +
                 (last ? " (its end unknown: past anything it can have held, so that no new record takes "
                         "their sequences; a persister whose ring is further withdraws it and stores again "
                         "what the ring holds)"
                       : "");
          prev_end_ = *to;
        } else {
          if (q && to) how += "; no lost-range marker in its place: " + marker.error().message;
          prev_end_.reset();
        }
        if (q) how += ")";
      } else {
        prev_end_.reset();
      }
      issue(name, 0, f->size(), scan.error().message + how, fixed);
      return {};
    }
    prev_end_.reset();
    return {};
  }
  const ScanResult& s = scan.value();
  if (s.header.ns != ns_ || s.header.stream != stream_)
    unfixable(name, kHdrNsLen, 0, "header names stream " + s.header.ns + "/" + s.header.stream);
  if (prev_end_ && *prev_end_ != first && !listing_missed(*prev_end_, first))
    unfixable(name, 0, 0,
              *prev_end_ < first ? "sequences [" + std::to_string(*prev_end_) + ", " +
                                       std::to_string(first) + ") are missing before this segment"
                                 : "overlaps the previous segment (which ends at " +
                                       std::to_string(*prev_end_) + ")");
  rep_->records += s.builder.count();
  uint64_t end_seq = s.end_seq;
  std::vector<IndexEntry> expected = s.entries;
  IndexBuilder builder = s.builder;
  // Damage with intact frames after it: kept, never cut.  Reported until --repair
  // records it (the flag on the index entry of the frame after it).
  bool record_damage = false;  // damage newly recorded by this repair: the index is written
  std::vector<size_t> damage_issues;  // their entries in rep_->issues
  for (const ScanDamage& d : s.damage) {
    const uint64_t resume = d.offset + d.bytes;
    const bool recorded = old_idx && old_idx->header.created_ns == s.header.created_ns &&
                          damage_recorded_at(old_idx->entries, resume);
    if (recorded || can_repair()) mark_damage_recorded(expected, resume);
    if (recorded) continue;
    record_damage = record_damage || can_repair();
    damage_issues.push_back(rep_->issues.size());
    issue(name, d.offset, d.bytes,
          std::string("damaged (") + frame_status_name(d.why) + "): sequences [" +
              std::to_string(d.from_seq) + ", " + std::to_string(d.to_seq) +
              ") are unreadable; the bytes are kept and the records after them are intact" +
              (can_repair() ? std::string(kRecordedInIndex) : ""),
          can_repair());
  }
  if (s.valid_end < s.file_size) {
    const uint64_t tail = s.file_size - s.valid_end;
    const std::string why = frame_status_name(s.stop);
    if (last) {
      if (!s.tail_zero) {  // a zero tail is a pmem segment's unused room
        bool fixed = false;
        if (can_repair()) {
          auto r = cut_and_mark_lost(first, s.valid_end, 0, 0, 0);
          fixed = r.ok();
        }
        issue(name, s.valid_end, s.tail_nonzero_end - s.valid_end,
              "torn tail (" + why + "): records from sequence " + std::to_string(s.end_seq) +
                  " on are unreadable",
              fixed);
      }
    } else {
      const bool benign = s.tail_zero && s.end_seq == next_first;
      end_seq = next_first;  // the gap is this issue: not reported again at the next segment
      bool fixed = false;
      if (can_repair()) {
        const uint64_t to = benign ? 0 : next_first;
        const uint64_t ts = s.builder.empty() ? prev_max_ts_ : s.builder.max_ts();
        fixed = cut_and_mark_lost(first, s.valid_end, s.end_seq, to, ts).ok();
        if (fixed) {  // index what the segment holds now, marker included
          auto f2 = SegmentFile::open(dir_, first);
          auto again = f2 ? scan_segment(f2.value(), first, interval)
                          : Result<ScanResult>(f2.error());
          if (again) {
            expected = again->entries;
            builder = again->builder;
            end_seq = again->end_seq;
            // The damage before the cut stays recorded (flagged above, and lost with the
            // entries of the first scan: fsck then reported it again after every repair).
            for (const ScanDamage& d : s.damage)
              mark_damage_recorded(expected, d.offset + d.bytes);
          }
        }
      }
      std::string what;
      if (benign)
        what = "zero bytes after the last record";
      else if (s.end_seq >= next_first)  // every sequence is there: stray bytes after them
        what = "damaged (" + why + ") bytes after the last record; no sequence is missing" +
               (fixed ? "; cut" : "");
      else
        what = "damaged (" + why + "): sequences [" + std::to_string(s.end_seq) + ", " +
               std::to_string(next_first) + ") are unreadable" +
               (fixed ? "; cut and marked lost" : "");
      issue(name, s.valid_end, tail, what, fixed);
    }
  }
  if (!last && !builder.empty()) expected.push_back(builder.seal_entry());
  uint64_t seg_size = s.file_size;
  if (auto again = SegmentFile::open(dir_, first); again) seg_size = again->size();  // after a cut
  std::optional<IndexEntry> seal;
  if (last && !builder.empty()) seal = builder.seal_entry();
  if (!check_index(first, last, s.header.created_ns, expected, seal, interval, seg_size,
                   record_damage) &&
      record_damage) {
    // The index could not be written: the damage is not recorded after all.
    for (const size_t i : damage_issues) {
      FsckIssue& d = rep_->issues[i];
      d.repaired = false;
      if (std::string_view(d.problem).ends_with(kRecordedInIndex))
        d.problem.resize(d.problem.size() - kRecordedInIndex.size());
    }
  }
  prev_end_ = end_seq;
  if (!builder.empty()) prev_max_ts_ = std::max(prev_max_ts_, builder.max_ts());
  return {};
}

size_t StreamChecker::finish_interrupted_deletion(const std::vector<uint64_t>& segs, uint64_t deleted_below) {
  const size_t below = segments_wholly_below(segs, deleted_below);
  if (below == 0 || writer_live_) return below;  // (live: its own deletion, in progress)
  const bool secure = secure_store();
  for (size_t i = 0; i < below; ++i) {
    const std::string name = segment_file_name(segs[i]);
    bool fixed = false;
    if (can_repair()) {
      fixed = remove_file(dir_, name, secure).ok() && remove_file(dir_, index_file_name(segs[i]), secure).ok();
      dir_changed_ = true;
    }
    issue(name, 0, 0,
          "lies wholly below the watermark (deleted below " + std::to_string(deleted_below) +
              "): a deletion a crash interrupted" +
              (fixed ? std::string(secure ? "; finished (erased, then removed)" : "; finished (removed)")
                     : "; the next persister start or --repair finishes it"),
          fixed);
  }
  return below;
}

// Whether a writer holds the store's lock now (a check that let go of it looks again;
// also a writer that made the LOCK file after the check began).
bool StreamChecker::writer_now() {
  auto taken = try_lock(OpenMode::kRead);
  lock_.reset();
  return taken && !taken.value();
}

Result<void> StreamChecker::run() {
  ++rep_->streams;
  if (auto r = lock(); !r) return r;
  if (repair_ || writer_live_) return check();
  // A check without --repair does not hold the lock while it reads: a persister that
  // starts meanwhile failed with "another writer has it open" (a review).  It looks again
  // at the end: a writer that took the store meanwhile may have changed what was read, so
  // the check is made again as of a live store (once: bounded).
  const FsckReport before = *rep_;
  lock_.reset();
  if (auto r = check(); !r) return r;
  if (!writer_now()) return {};
  *rep_ = before;
  writer_live_ = true;
  prev_end_.reset();
  prev_max_ts_ = 0;
  return check();
}

Result<void> StreamChecker::check() {
  check_files();
  int damaged_slot = -1;
  auto wm = read_watermark(dir_, nullptr, &damaged_slot);
  if (wm && damaged_slot >= 0) {
    // Which value the damaged slot held is not known: an update torn by a crash (never
    // acknowledged: nothing lost) or a later deletion, whose records are served again.
    bool fixed = false;
    if (can_repair()) {
      int again = 0;
      fixed = write_watermark(dir_, wm.value()).ok() && read_watermark(dir_, nullptr, &again).ok() && again < 0;
    }
    issue(kWatermarkName, kWatermarkSlotOffset[damaged_slot], 0,
          "one of its two slots is damaged; the other says 'deleted below " + std::to_string(wm->deleted_below) +
              "': a later deletion the damaged slot may have recorded is not applied (its records are served "
              "again): repeat the last delete --before if it went further" +
              (fixed ? "; the damaged slot was rewritten with the value read" : ""),
          fixed);
  }
  // The settings file says whether the store is --secure, the only record of it once the
  // ring is gone: damaged, delete and rm --data overwrite freed bytes to be safe.
  if (!read_settings(dir_) && ::faccessat(dir_, "settings", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
    unfixable("settings", 0, 0,
              "damaged: whether the store was persisted with --secure is not known (delete and rm "
              "--data overwrite freed bytes as if it were); --repair cannot rewrite it (only a "
              "persister knows its flags): the next persister does");
  auto listed = list_segments(dir_);
  if (!listed) return listed.error();
  const auto& segs = listed.value();
  const size_t first = wm ? finish_interrupted_deletion(segs, wm->deleted_below) : 0;
  for (size_t i = first; i < segs.size(); ++i) {
    const bool last = i + 1 == segs.size();
    // A live writer's retention may remove a sealed segment (and then its index) while it
    // is read: whatever was found in one that is gone now is not judged.
    const size_t issues_before = rep_->issues.size();
    if (auto r = check_segment(segs[i], last, last ? 0 : segs[i + 1]); !r) return r;
    if (writer_live_ && !last && rep_->issues.size() > issues_before && gone(segment_file_name(segs[i])))
      rep_->issues.resize(issues_before);
  }
  // Live, and the last segment listed went before it was read (retention, while the writer
  // rolled on past the listing): still reported live, as far as read.
  const std::string me = ns_ + "/" + stream_;
  if (writer_live_ && std::none_of(rep_->live.begin(), rep_->live.end(), [&](const FsckLive& l) { return l.stream == me; }))
    rep_->live.push_back(FsckLive{me, prev_end_.value_or(0), 0});
  if (!wm) {
    bool fixed = false;
    uint64_t below = 0;
    if (can_repair()) {
      auto again = list_segments(dir_);
      if (again && !again->empty()) below = again->front();
      fixed = write_watermark(dir_, Watermark{below, now_ns()}).ok();
      dir_changed_ = true;
    }
    issue(kWatermarkName, 0, 0,
          wm.error().message +
              (fixed ? "; rebuilt as 'deleted below " + std::to_string(below) +
                           "' (the oldest segment): records deleted inside that segment may be "
                           "visible again until delete_before is repeated"
                     : ""),
          fixed);
  }
  // Renames, removals and new files last only once their directory is synced.
  if (can_repair() && dir_changed_) {
    if (auto r = sync_all(dir_, "directory " + ns_ + "/" + stream_); !r) return r;
  }
  return {};
}

bool looks_like_stream(const std::vector<std::string>& names) {
  for (const auto& n : names) {
    uint64_t s;
    if (n == "LOCK" || n == kWatermarkName || parse_numbered_name(n, kSegmentSuffix, &s) ||
        parse_numbered_name(n, kIndexSuffix, &s))
      return true;
  }
  return false;
}

Result<UniqueFd> open_subdir(int dir, const std::string& name) {
  int fd = ::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno_error(errno, "cannot open '" + name + "'");
  return UniqueFd(fd);
}

}  // namespace

Result<FsckReport> fsck(std::string_view dir, bool repair) { return fsck(dir, repair, {}); }

Result<FsckReport> fsck(std::string_view dir, bool repair, std::string_view only_ns) {
  if (!only_ns.empty()) {
    if (auto v = validate_name("namespace", only_ns); !v) return v.error();
  }
  std::string path(dir);
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  auto d = open_dir_path(path, {}, false, repair ? Use::kWrite : Use::kRead);
  if (!d) return d.error();
  auto names = list_dir(d->get());
  if (!names) return names.error();
  FsckReport rep;
  if (looks_like_stream(names.value())) {
    // One store folder, DATA_DIR/NS/STREAM: its names are its folders' (the path made
    // absolute, its links resolved: "fsck ." or "fsck ns//st" named the stream "." and
    // the namespace "", and a header rebuilt so belonged to no stream: a review).
    // (Links it cannot resolve, a parent it may not read: the path as given, made
    // absolute and normal; names that came out empty then were written: a review.)
    std::error_code ec;
    std::filesystem::path abs = std::filesystem::weakly_canonical(std::filesystem::absolute(path, ec), ec);
    if (ec || abs.empty()) abs = std::filesystem::absolute(path, ec).lexically_normal();
    if (!abs.has_filename()) abs = abs.parent_path();
    const std::string stream = abs.filename().string();
    const std::string ns = abs.parent_path().filename().string();
    if (!only_ns.empty()) {
      // Of that namespace only.
      if (ns != only_ns)
        return make_error(Errc::kInvalidArgument, std::string(dir) + " is a store of namespace '" + ns +
                                                      "', not of '" + std::string(only_ns) + "'");
    }
    // One store folder named directly: by the rules of a store's folder, not of a data
    // root (which may be root's or a shared sticky one: a review).
    if (auto t = check_trusted(d->get(), path, repair ? Use::kWrite : Use::kRead); !t) return t.error();
    if (auto r = StreamChecker(d->get(), ns, stream, repair, &rep).run(); !r) return r.error();
    return rep;
  }
  bool found = false;
  std::string there;  // the namespaces found instead, for the error
  for (const auto& ns : names.value()) {
    if (!validate_name("namespace", ns)) continue;
    auto nsd = open_subdir(d->get(), ns);
    if (!nsd) continue;
    if (!only_ns.empty() && ns != only_ns) {
      there += (there.empty() ? "'" : ", '") + ns + "'";
      continue;
    }
    found = true;
    auto streams = list_dir(nsd->get());
    if (!streams) return streams.error();
    for (const auto& st : streams.value()) {
      if (!validate_name("stream", st)) continue;
      auto sd = open_subdir(nsd->get(), st);
      if (!sd) continue;
      // Not a store (no lock, watermark, segment or index): not checked, nor written to
      // by --repair (a walkthrough: `fsck /etc` said "checked 57 stream(s) ... clean").
      auto files = list_dir(sd->get());
      if (!files) return files.error();
      if (!looks_like_stream(files.value())) continue;
      // A store's namespace and stream folders by the rules every store path follows
      // (store_path.h): --repair writes in them, so they must be the caller's; a check
      // only reads, and refuses folders others may write.  One that fails is reported
      // and left alone; the other stores are checked (fsck skipped both checks: a review).
      const Use use = repair ? Use::kWrite : Use::kRead;
      auto trusted = check_trusted(nsd->get(), path + "/" + ns, use);
      if (trusted) trusted = check_trusted(sd->get(), path + "/" + ns + "/" + st, use);
      if (!trusted) {
        FsckIssue issue;
        issue.path = ns;
        issue.path += '/';
        issue.path += st;
        issue.problem = repair ? "not repaired: " : "not checked: ";
        issue.problem += trusted.error().message;
        issue.repairable = false;  // the folders' owner or mode, not the files, are the matter
        rep.issues.push_back(std::move(issue));
        continue;
      }
      if (auto r = StreamChecker(sd->get(), ns, st, repair, &rep).run(); !r) return r.error();
    }
  }
  if (!only_ns.empty() && !found)
    return make_error(Errc::kNotFound, "no store of namespace '" + std::string(only_ns) + "' in " +
                                           std::string(dir) +
                                           (there.empty() ? "" : " (namespaces there: " + there + ")"));
  return rep;
}

}  // namespace shmbus::persist
