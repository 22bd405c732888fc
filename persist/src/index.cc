// index.cc: the sparse index file (see index.h and FORMAT.md).
#include "index.h"

#include <algorithm>
#include <cstring>

#include "coding.h"
#include "crc32c.h"
#include "format.h"

namespace shmbus::persist::detail {

void encode_index_header(const IndexHeader& h, std::byte* out) {
  std::memset(out, 0, kIndexHeaderSize);
  std::memcpy(out, kIndexMagic, sizeof kIndexMagic);
  put_u16(out + 8, kIndexVersion);
  put_u16(out + 10, static_cast<uint16_t>(kIndexHeaderSize));
  put_u32(out + 12, h.interval);
  put_u64(out + 16, h.first_seq);
  put_u64(out + 24, h.created_ns);
  put_u32(out + 60, crc32c(out, 60));
}

namespace {

// The entry encoded at `q` (48 bytes), if its CRC holds: encode_index_entry's reverse.
std::optional<IndexEntry> decode_index_entry(const std::byte* q) {
  if (crc32c(q, 44) != get_u32(q + 44)) return std::nullopt;
  return IndexEntry{get_u64(q), get_u64(q + 8), get_u64(q + 16), get_u64(q + 24), get_u64(q + 32), get_u32(q + 40)};
}

}  // namespace

void encode_index_entry(const IndexEntry& e, std::byte* out) {
  put_u64(out + 0, e.offset);
  put_u64(out + 8, e.seq);
  put_u64(out + 16, e.end_seq);
  put_u64(out + 24, e.max_ts);
  put_u64(out + 32, e.count);
  put_u32(out + 40, e.flags);
  put_u32(out + 44, crc32c(out, 44));
}

std::vector<std::byte> encode_index(const IndexHeader& h, std::span<const IndexEntry> entries) {
  std::vector<std::byte> out(kIndexHeaderSize + entries.size() * kIndexEntrySize);
  encode_index_header(h, out.data());
  for (size_t i = 0; i < entries.size(); ++i)
    encode_index_entry(entries[i], out.data() + kIndexHeaderSize + i * kIndexEntrySize);
  return out;
}

bool IndexBuilder::add(uint64_t offset, uint64_t seq, uint64_t end_seq, uint64_t first_ts,
                       uint64_t max_ts, uint64_t records, IndexEntry* e, bool after_damage) {
  const bool first = !any_;
  if (first) first_ts_ = first_ts;
  max_ts_ = first ? max_ts : std::max(max_ts_, max_ts);
  count_ += records;
  any_ = true;
  last_ = IndexEntry{offset, seq, end_seq, max_ts_, count_, 0};
  if (!first && !after_damage && offset - last_entry_offset_ < interval_) return false;
  last_entry_offset_ = offset;
  *e = last_;
  return true;
}

IndexEntry IndexBuilder::seal_entry() const noexcept {
  IndexEntry e = last_;
  e.flags = kEntrySeal;
  return e;
}

Result<IndexFile> read_index(int dir, uint64_t first_seq, uint64_t segment_size) {
  const std::string name = index_file_name(first_seq);
  auto fd = open_at(dir, name, OpenMode::kRead);
  if (!fd) return fd.error();
  auto size = file_size(fd->get(), name);
  if (!size) return size.error();
  IndexFile f;
  f.file_size = size.value();
  const uint64_t max_entries = segment_size / kFrameHeaderSize + 2;
  const uint64_t limit = kIndexHeaderSize + max_entries * kIndexEntrySize;
  std::vector<std::byte> buf(static_cast<size_t>(std::min(f.file_size, limit)));
  auto got = pread_some(fd->get(), buf, 0, name);
  if (!got) return got.error();
  buf.resize(got.value());
  if (buf.size() < kIndexHeaderSize)
    return make_error(Errc::kTruncated, "index " + name + " is shorter than its header");
  const std::byte* p = buf.data();
  if (std::memcmp(p, kIndexMagic, sizeof kIndexMagic) != 0)
    return make_error(Errc::kIncompatible, "index " + name + " is not a shmbus index (bad magic)");
  if (get_u16(p + 8) != kIndexVersion)
    return make_error(Errc::kIncompatible, "index " + name + " has version " +
                                               std::to_string(get_u16(p + 8)));
  if (get_u16(p + 10) != kIndexHeaderSize || crc32c(p, 60) != get_u32(p + 60))
    return make_error(Errc::kCorrupt, "index " + name + " has a damaged header");
  f.header.interval = get_u32(p + 12);
  f.header.first_seq = get_u64(p + 16);
  f.header.created_ns = get_u64(p + 24);
  if (f.header.first_seq != first_seq)
    return make_error(Errc::kCorrupt, "index " + name + " belongs to another segment");
  f.valid_bytes = kIndexHeaderSize;
  for (size_t off = kIndexHeaderSize; off + kIndexEntrySize <= buf.size(); off += kIndexEntrySize) {
    const std::optional<IndexEntry> decoded = decode_index_entry(p + off);
    if (!decoded) break;
    const IndexEntry& e = *decoded;
    if (e.end_seq <= e.seq || e.offset < kSegmentHeaderSize) break;
    if (f.sealed) break;
    if (!f.entries.empty()) {
      const IndexEntry& prev = f.entries.back();
      const bool same_record = (e.flags & kEntrySeal) && e.offset == prev.offset;
      if (!same_record && (e.offset <= prev.offset || e.seq < prev.end_seq || e.max_ts < prev.max_ts))
        break;
    } else if (e.seq != first_seq && !(e.seq > first_seq && e.offset > kSegmentHeaderSize)) {
      // The first entry is the segment's first frame, or, when that frame is damaged, the
      // first valid frame after the damage (rule 4 of FORMAT.md), further on.
      break;
    }
    f.sealed = (e.flags & kEntrySeal) != 0;
    f.entries.push_back(e);
    f.valid_bytes = off + kIndexEntrySize;
  }
  return f;
}

bool flushed_despite_its_header(int dir, uint64_t first_seq, uint64_t segment_size) {
  return segment_size > kSegmentHeaderSize && read_index(dir, first_seq, segment_size).ok();
}

std::optional<uint64_t> last_entry_offset(int dir, uint64_t first_seq, uint64_t file_size) {
  if (file_size < kIndexHeaderSize + kIndexEntrySize) return std::nullopt;
  const uint64_t at = kIndexHeaderSize + ((file_size - kIndexHeaderSize) / kIndexEntrySize - 1) * kIndexEntrySize;
  const std::string name = index_file_name(first_seq);
  auto fd = open_at(dir, name, OpenMode::kRead);
  if (!fd) return std::nullopt;
  std::byte q[kIndexEntrySize];
  auto got = pread_some(fd->get(), q, at, name);
  if (!got || got.value() != kIndexEntrySize) return std::nullopt;
  const std::optional<IndexEntry> e = decode_index_entry(q);
  if (!e) return std::nullopt;
  return e->offset;
}

namespace {
// write_index() on a full disk, where the temporary file finds no room: the index
// rewritten in its own blocks.  The bytes past the old file's end first (allocation can
// fail only there on a file system that overwrites in place, not on a copy-on-write one
// such as btrfs: then the file is cut back and the old index is as it was), then the
// rest over the old bytes, then the file cut to the new size, then synced.  A crash in
// between leaves a mix of the two, which readers take as its valid prefix (or as no
// index) and the writer's next open rebuilds; damage that fsck --repair recorded in it
// may then have to be recorded again (fsck finds it again).
Result<void> overwrite_index(int dir, const std::string& name, std::span<const std::byte> bytes) {
  auto fd = open_at(dir, name, OpenMode::kReadWrite);
  if (!fd) return fd.error();
  auto size = file_size(fd->get(), name);
  if (!size) return size.error();
  const uint64_t old_size = size.value();
  if (bytes.size() > old_size) {
    if (auto r = pwrite_all(fd->get(), bytes.subspan(static_cast<size_t>(old_size)), old_size, name); !r) {
      (void)truncate_to(fd->get(), old_size, name);
      return r;
    }
  }
  const size_t head = static_cast<size_t>(std::min<uint64_t>(old_size, bytes.size()));
  if (auto r = pwrite_all(fd->get(), bytes.first(head), 0, name); !r) return r;
  if (bytes.size() < old_size) {
    if (auto r = truncate_to(fd->get(), bytes.size(), name); !r) return r;
  }
  return sync_data(fd->get(), name);
}
}  // namespace

Result<void> write_index(int dir, const IndexHeader& h, std::span<const IndexEntry> entries) {
  // Never truncated in place: a crash, a full disk or a failed write during the rewrite
  // once left an empty index (fsck's damage records gone with it), and a reader could
  // read it in part.  Through a temporary file renamed over it; on a full disk, where
  // that file finds no room, in its own blocks (the writer's open rebuilds the active
  // segment's index every time, and must work on a full disk).
  const std::string name = index_file_name(h.first_seq);
  const std::vector<std::byte> bytes = encode_index(h, entries);
  bool renamed = false;
  auto r = replace_file(dir, name, index_tmp_file_name(h.first_seq), bytes, &renamed);
  // Not after the rename: the directory's sync failed, and an in-place rewrite that
  // synced only the file would report durable what a power loss can undo (a review).
  if (r || renamed || r.error().code != Errc::kNoSpace) return r;
  if (auto w = overwrite_index(dir, name, bytes); !w) return w.error().code == Errc::kNotFound ? r : w;
  return {};
}

bool damage_recorded_at(std::span<const IndexEntry> entries, uint64_t resume) {
  for (const IndexEntry& e : entries)
    if (e.offset == resume && (e.flags & kEntryDamageRecorded)) return true;
  return false;
}

void mark_damage_recorded(std::span<IndexEntry> entries, uint64_t resume) {
  for (IndexEntry& e : entries)
    if (e.offset == resume) e.flags |= kEntryDamageRecorded;
}

void keep_damage_recorded(std::span<IndexEntry> rebuilt, std::span<const IndexEntry> old) {
  for (const IndexEntry& o : old)
    if (o.flags & kEntryDamageRecorded) mark_damage_recorded(rebuilt, o.offset);
}

const IndexEntry* floor_by_seq(std::span<const IndexEntry> entries, uint64_t target) {
  auto it = std::upper_bound(entries.begin(), entries.end(), target,
                             [](uint64_t t, const IndexEntry& e) { return t < e.seq; });
  return it == entries.begin() ? nullptr : &*(it - 1);
}

const IndexEntry* last_older_than(std::span<const IndexEntry> entries, uint64_t ts) {
  // max_ts never decreases along the entries, so the entries older than ts are a prefix.
  auto it = std::partition_point(entries.begin(), entries.end(),
                                 [ts](const IndexEntry& e) { return e.max_ts < ts; });
  return it == entries.begin() ? nullptr : &*(it - 1);
}

}  // namespace shmbus::persist::detail
