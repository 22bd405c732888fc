// index.h: the sparse sequence/time index kept beside each segment (NAME.idx).
//
// One entry for the first record of a segment, then one for each record that starts
// at least `interval` bytes after the previous entry, and, when the segment is
// sealed, a seal entry for its last record.  The segment is the truth: the index is
// rebuilt from it with the same IndexBuilder, so a rebuilt index of a sealed segment
// equals the one the writer wrote, byte for byte (fsck relies on that).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "fs.h"
#include "shmbus/result.h"

namespace shmbus::persist::detail {

inline constexpr char kIndexMagic[8] = {'S', 'H', 'M', 'B', 'I', 'D', 'X', '\0'};
inline constexpr uint16_t kIndexVersion = 1;
inline constexpr uint32_t kIndexHeaderSize = 64;
inline constexpr uint32_t kIndexEntrySize = 48;
inline constexpr uint32_t kEntrySeal = 1;  // entry flag: last record of a sealed segment
// Entry flag, set by fsck --repair only: damaged bytes lie just before this frame (the
// sequences from the previous frame's end to this one's are unreadable), and fsck has
// recorded that.  The entry itself is always there (rule 4), with or without the flag.
inline constexpr uint32_t kEntryDamageRecorded = 2;

struct IndexHeader {
  uint32_t interval = 0;    // bytes between entries
  uint64_t first_seq = 0;   // of the segment (== its name)
  uint64_t created_ns = 0;  // of the segment (ties the index to one incarnation of it)
};

struct IndexEntry {
  uint64_t offset = 0;   // of the record's frame in the segment
  uint64_t seq = 0;      // its first sequence
  uint64_t end_seq = 0;  // one past its last sequence
  uint64_t max_ts = 0;   // largest timestamp of the records up to and including it
  uint64_t count = 0;    // data records up to and including it
  uint32_t flags = 0;
  bool operator==(const IndexEntry&) const = default;
};

void encode_index_header(const IndexHeader& h, std::byte* out /*64*/);
void encode_index_entry(const IndexEntry& e, std::byte* out /*48*/);
std::vector<std::byte> encode_index(const IndexHeader& h, std::span<const IndexEntry> entries);

// Applies the entry rule to the records of one segment, in order.
class IndexBuilder {
 public:
  explicit IndexBuilder(uint32_t interval) : interval_(interval) {}
  // Feeds the next record.  Returns true, with *e filled, when it gets an entry.
  // `after_damage`: the first frame after a damaged range always gets an entry, so that
  // readers resume exactly there.
  // `first_ts` / `max_ts`: the stamp of its first record and the newest of its records
  // (the same for a data frame or a lost-range marker); `records`: how many it holds (0
  // for a lost-range marker).
  bool add(uint64_t offset, uint64_t seq, uint64_t end_seq, uint64_t first_ts, uint64_t max_ts,
           uint64_t records, IndexEntry* e, bool after_damage = false);
  bool empty() const noexcept { return !any_; }
  IndexEntry seal_entry() const noexcept;  // for the last record fed; needs !empty()
  uint32_t interval() const noexcept { return interval_; }
  uint64_t first_ts() const noexcept { return first_ts_; }
  uint64_t max_ts() const noexcept { return max_ts_; }
  uint64_t count() const noexcept { return count_; }

 private:
  uint32_t interval_;
  bool any_ = false;
  uint64_t last_entry_offset_ = 0;
  uint64_t first_ts_ = 0;
  uint64_t max_ts_ = 0;
  uint64_t count_ = 0;
  IndexEntry last_{};
};

struct IndexFile {
  IndexHeader header;
  std::vector<IndexEntry> entries;  // the longest valid prefix
  bool sealed = false;              // ends with a seal entry
  uint64_t file_size = 0;
  uint64_t valid_bytes = 0;         // header + valid entries
};

// Reads NAME.idx of the segment starting at `first_seq`.  kNotFound when missing,
// kIncompatible / kCorrupt when the header is not an index header.  Entries stop at
// the first one that fails its CRC, goes backwards, or follows a seal entry.
// Reads at most what an index of a segment of `segment_size` bytes can hold (one entry
// per 32-byte frame at most, plus the seal entry): a huge or sparse index file costs no
// more memory than its segment justifies; bytes past that are not valid.
Result<IndexFile> read_index(int dir, uint64_t first_seq, uint64_t segment_size);
// Whether a segment whose header reads as not written (header_not_written()) was flushed
// all the same: bytes after the header, and an index with a valid header, which the
// writer adds only after the segment's first sync (FORMAT.md), so the header reached the
// disk then and its zeros now are damage (a zeroed first block of a last segment with
// intact records after it was taken for a creation never completed and the segment
// removed: a review).  A file no longer than a header holds no record: not judged so.
bool flushed_despite_its_header(int dir, uint64_t first_seq, uint64_t segment_size);
// The offset of the last whole entry of the index of segment `first_seq`, as the file is
// `file_size` bytes long: one pread of 48 bytes.  nullopt when that entry is not intact
// (its CRC; a torn or damaged tail) or cannot be read.  Entries only grow in offset, so a
// reader at the live end learns from it alone whether any entry lies past a position.
std::optional<uint64_t> last_entry_offset(int dir, uint64_t first_seq, uint64_t file_size);
// Writes NAME.idx from scratch (a rebuild).
Result<void> write_index(int dir, const IndexHeader& h, std::span<const IndexEntry> entries);

// Damage ending at `resume` (the offset of the first valid frame after it, which rule 4
// gives an entry): whether `entries` record it, and recording it (the flag on that entry).
bool damage_recorded_at(std::span<const IndexEntry> entries, uint64_t resume);
void mark_damage_recorded(std::span<IndexEntry> entries, uint64_t resume);
// A rebuilt index keeps what fsck --repair recorded in the one it replaces: the
// damage-recorded flag of every entry at the same offset (the caller checks that `old`
// belongs to the same incarnation of the segment).
void keep_damage_recorded(std::span<IndexEntry> rebuilt, std::span<const IndexEntry> old);

// The last entry with seq <= target, or nullptr.
const IndexEntry* floor_by_seq(std::span<const IndexEntry> entries, uint64_t target);
// The last entry whose max_ts < ts (every record up to it is older than ts), or nullptr.
const IndexEntry* last_older_than(std::span<const IndexEntry> entries, uint64_t ts);

}  // namespace shmbus::persist::detail
