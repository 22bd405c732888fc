// shmbus/persist.h: the public face of persist/, the on-disk segment store.
//
// persist/ owns: the segment format (persist/FORMAT.md): per stream a folder
// DATA_DIR/NAMESPACE/STREAM/ of segment files holding CRC32C-framed records, a
// sparse sequence/time index beside each segment, and a "deleted below" watermark;
// the writer (SegmentStore: a file store through write() + batched fdatasync, or a
// pmem store through PMDK libpmem2), torn-tail recovery, the reader (SegmentReader),
// retention and deletion, and fsck.  It knows nothing of the ring: a durable
// consumer feeds it records with their sequence numbers.  Encoders, layouts and PMDK
// stay in persist/src.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shmbus/result.h"
#include "shmbus/shmbus.h"

namespace shmbus::persist {

// ---- options and statistics --------------------------------------------------------

// The store kinds (file, pmem): the enum the stream header records (shmbus.h).
using StoreKind = shmbus::StoreKind;
// "file" or "pmem": the one spelling (CLI --store, Python store=, `stat`, logs).
const char* store_kind_name(StoreKind k) noexcept;
// The kind named `name` ("file" or "pmem", as store_kind_name() spells it); nullopt for
// anything else.
std::optional<StoreKind> parse_store_kind(std::string_view name) noexcept;

enum class Durability : uint8_t {
  kAsync,  // durable within flush_interval (see SegmentStore::tick) or at flush()
  kSync,   // append() returns after the record is durable
};

// The store granularity libpmem2 reports for the active segment's mapping.  kPage
// means no DAX: persisting is msync.  kNotPmem for a file store.  The values are the
// codes the persister publishes in the stream header (StreamControl::set_store_stats,
// StreamInfo::pmem_granularity_code; shm/FORMAT.md).
enum class PmemGranularity : uint8_t { kNotPmem = 0, kByte = 1, kCacheLine = 2, kPage = 3 };
// "none", "byte", "cache-line", "page": the one spelling (`stat`, Persister.stats()).
const char* granularity_name(PmemGranularity g) noexcept;
// The code of `g` in the stream header, and back.  A code read from shared memory that
// is not one of the four reads as kNotPmem.
uint32_t granularity_code(PmemGranularity g) noexcept;
PmemGranularity granularity_from_code(uint32_t code) noexcept;

// ---- the segment format, as far as users size a store by it (persist/FORMAT.md) --------

// A record in a segment is a frame: a header of kStoreFrameHeaderBytes, the payload, and
// zeros up to a multiple of kStoreFrameAlign (persist/src/format.h asserts both against
// the frame layout).
inline constexpr uint32_t kStoreFrameHeaderBytes = 32;
inline constexpr uint32_t kStoreFrameAlign = 8;
// What a record costs in the store besides its payload, on average: its frame header and
// half the alignment (the mean padding is 3.5 bytes for payload sizes spread evenly over
// the remainders; rounded up).  For sizing (`stat`'s projected store bytes).
inline constexpr uint32_t kStoreBytesPerRecord = kStoreFrameHeaderBytes + kStoreFrameAlign / 2;

struct StoreOptions {
  StoreKind kind = StoreKind::kFile;
  uint64_t segment_bytes = 64ull << 20;  // roll when the next record would not fit
  std::chrono::nanoseconds roll_age = std::chrono::hours(1);  // roll an older segment; 0: never
  Durability durability = Durability::kAsync;
  std::chrono::nanoseconds flush_interval = std::chrono::milliseconds(10);
  uint32_t index_interval = 64 << 10;    // bytes of records between index entries
  uint32_t write_buffer = 1 << 20;       // file store: bytes gathered per write()
  bool secure_delete = false;            // overwrite segments with zeros before unlinking
  // Source of segment creation times and of roll/flush ages, in ns since the epoch.
  // nullptr: shmbus::now_ns.  Tests pin it to get reproducible files.
  uint64_t (*clock)() = nullptr;
};

struct StoreStats {
  StoreKind kind = StoreKind::kFile;
  PmemGranularity granularity = PmemGranularity::kNotPmem;
  uint64_t bytes_on_disk = 0;   // segments and indexes (a pmem active segment: pre-sized)
  uint64_t segments = 0;
  uint64_t oldest_seq = 0;      // first sequence a reader can get (watermark applied)
  uint64_t end_seq = 0;         // one past the newest record (== next_seq()); == oldest: empty
  uint64_t newest_seq = 0;      // end_seq - 1 (the newest record or lost marker); 0 if empty
  uint64_t durable_seq = 0;
  uint64_t deleted_below = 0;   // the watermark
  uint64_t records_appended = 0;  // since open; data records only
  uint64_t bytes_appended = 0;    // since open; payload bytes
  uint64_t lost_marked = 0;       // since open; sequences declared lost
  uint64_t flushes = 0;           // syncs that made data durable
  uint64_t torn_bytes_dropped = 0;  // by recovery at open
  // Failed syncs (and seals) since open.  After each the store went back to its last
  // synced record (next_seq() moved back) or, if it could not, stopped (stopped()).
  uint64_t io_errors = 0;
  // Deletions since open (retention and delete_before): divide by the time between
  // reports to get deletion rates.
  uint64_t deleted_segments = 0;
  uint64_t deleted_records = 0;
  uint64_t deleted_bytes = 0;
  uint64_t last_delete_ns = 0;
  std::string last_error;  // the last flush failure not returned by append(), or empty
};

// What one apply_retention() or delete_before() call removed.
struct DeletionReport {
  uint64_t at_ns = 0;          // when (the `now` given, or the clock)
  uint64_t segments = 0;       // whole segments unlinked
  uint64_t records = 0;        // data records in them
  uint64_t bytes = 0;          // file bytes freed (segments and indexes)
  uint64_t first_seq = 0;      // sequences [first_seq, end_seq) went away with them
  uint64_t end_seq = 0;
  uint64_t oldest_ts_ns = 0;   // timestamps of the first and newest deleted records
  uint64_t newest_ts_ns = 0;
  uint64_t deleted_below = 0;  // the watermark afterwards
  uint64_t quarantined = 0;    // quarantined segment files (fsck) removed with them
};

// ---- writer ---------------------------------------------------------------------

// The writer of one stream's segments.  One per stream at a time (an flock on
// DATA_DIR/NS/STREAM/LOCK; a second open gets kBusy).  It has no thread of its own:
// in kAsync mode call tick() when idle so the tail becomes durable within
// flush_interval.  Move-only.
//
// Thread: one thread at a time for everything but durable_seq(), which any thread
// may read.
class SegmentStore {
 public:
  // Opens (creating folders 0700 and files 0600) DIR_ROOT/NS/STREAM, recovers the
  // last segment (a torn tail is truncated to the last valid record and logged), and
  // rebuilds missing or damaged indexes.  Errors: kInvalidArgument (names, options),
  // kBusy (another writer), kCorrupt / kIncompatible (a segment other than a torn
  // tail is unreadable: run fsck), kPermission, kNoSpace, kIo.
  static Result<SegmentStore> open(std::string_view dir_root, std::string_view ns,
                                   std::string_view stream, const StoreOptions& opts = {});
  SegmentStore(SegmentStore&&) noexcept;
  SegmentStore& operator=(SegmentStore&&) noexcept;
  ~SegmentStore();  // flushes (errors are logged) and releases the lock

  // Stores one record.  `seq` must equal next_seq() (any value for a store that has
  // never held a record); skip sequences with append_lost().  Returns an error only
  // when the record was NOT stored: kInvalidArgument (sequence), kTooLarge (> 1 GiB),
  // kNoSpace (disk full or RLIMIT_FSIZE: retry the same record later), kIo.  A failed
  // periodic flush in kAsync mode does not fail append(): see flush() / last_error.
  //
  // A failed sync is never retried alone (Linux forgets the unwritten pages after a
  // failed fdatasync, and a second one returns success without writing them): the
  // store cuts its active segment back to the last synced record, so next_seq() moves
  // back to durable_seq(), and the caller appends the records from there again.  If
  // even that fails the store stops (stopped()): every call tries it again first and
  // fails while it cannot.  (Reopening would not help: recovery would find the bytes
  // the page cache still holds and count them durable.)
  Result<void> append(uint64_t seq, uint64_t ts_ns, uint32_t type, Bytes payload);
  // Records that sequences [from, to) will never be stored (a lost-range marker).
  // `from` must equal next_seq() (any value for a new store), to > from.
  Result<void> append_lost(uint64_t from, uint64_t to);

  // Makes everything appended durable (fdatasync, or pmem2 persist), then writes
  // pending index entries.
  Result<void> flush();
  // kAsync: flushes if the oldest unflushed record is flush_interval old.  Cheap.
  Result<void> tick();

  uint64_t next_seq() const noexcept;   // the sequence the next append must carry
  // The store stopped after an I/O error and could not go back to its last synced
  // record yet: calls fail until it can (each one tries).
  bool stopped() const noexcept;
  uint64_t durable_seq() const noexcept;  // one past the last durable record
  StoreStats stats() const;

  // Deletes whole sealed segments from the oldest: those whose newest record is older
  // than now_ns - max_age (max_age 0: no age limit), then more until the store holds
  // at most max_bytes (0: no limit).  The active segment is never deleted.
  Result<DeletionReport> apply_retention(std::chrono::nanoseconds max_age, uint64_t max_bytes,
                                         uint64_t now_ns);
  // Raises the "deleted below" watermark to `seq` (readers never see records below it,
  // also those still inside a kept segment), then deletes sealed segments that lie
  // wholly below it.  kInvalidArgument for a `seq` above next_seq() (it would hide
  // records not stored yet).  Returns once the new watermark is durable (synced).
  Result<DeletionReport> delete_before(uint64_t seq);

  // Flushes and releases the store; later calls return kClosed.
  Result<void> close();

  struct Impl;

 private:
  explicit SegmentStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ---- reader ---------------------------------------------------------------------

enum class EntryKind : uint8_t {
  kRecord,   // a stored record: seq, ts_ns, type, data
  kLost,     // sequences [seq, end_seq) were never stored (lost-range marker)
  kDeleted,  // sequences [seq, end_seq) were deleted (watermark or retention)
  kCorrupt,  // damaged bytes skipped: sequences [seq, end_seq) (as far as known) are gone
  kEnd,      // nothing more for now; a live writer may add more: call next() again
};
const char* entry_kind_name(EntryKind k) noexcept;

struct Entry {
  EntryKind kind = EntryKind::kEnd;
  uint64_t seq = 0;        // kRecord: its sequence; otherwise the first one of the range
  uint64_t end_seq = 0;    // one past the range (seq + 1 for a record)
  uint64_t ts_ns = 0;
  uint32_t type = 0;
  Bytes data{};            // kRecord: the payload, valid until the next call on the reader
  uint64_t dropped_bytes = 0;  // kCorrupt: bytes skipped
  std::string detail;          // kCorrupt, kDeleted: where and why
};

// Reads one stream's segments without locking or writing anything; follows a live
// writer (new records and segments appear to next()).  A watermark raised while
// reading takes effect within 10 ms (and at every segment switch).  Every frame is validated
// (bounds, CRC, sequence); a damaged frame in a sealed segment is reported as
// kCorrupt and reading goes on at the next indexed record that is intact.
//
// Thread: one thread at a time per reader.  Move-only.
class SegmentReader {
 public:
  // kNotFound when DIR_ROOT/NS/STREAM does not exist.  Positioned at the earliest record.
  static Result<SegmentReader> open(std::string_view dir_root, std::string_view ns,
                                    std::string_view stream);
  SegmentReader(SegmentReader&&) noexcept;
  SegmentReader& operator=(SegmentReader&&) noexcept;
  ~SegmentReader();

  // The first record still stored (nothing reported about what came before).
  Result<void> seek_earliest();
  // The record `seq`.  If it lies below the watermark, next() first returns kDeleted
  // [seq, watermark); if it lies inside a lost range, kLost [seq, to); if it lies
  // below the oldest segment (and above the watermark: never stored), the oldest record.
  Result<void> seek_seq(uint64_t seq);
  // The first stored record (in sequence order) whose timestamp is >= ts_ns; the
  // records after it follow whatever their timestamps.
  Result<void> seek_time(uint64_t ts_ns);

  // The next entry.  Errors (the position stays put, except where said): kIncompatible
  // or kCorrupt for a segment whose header is not readable (the reader moves past that
  // segment, so calling again continues), kIo.
  Result<Entry> next();

  uint64_t position() const noexcept;  // the sequence next() continues from

  struct Impl;

 private:
  explicit SegmentReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ---- fsck -----------------------------------------------------------------------

struct FsckIssue {
  std::string path;     // NS/STREAM/FILE, relative to the checked directory
  uint64_t offset = 0;  // where in the file
  uint64_t bytes = 0;   // bytes affected (dropped when repaired)
  std::string problem;
  bool repaired = false;
};

// A stream whose writer (a persister) was running during the check: its active segment
// was read up to its last complete record, and its tail (being written) not judged.
struct FsckLive {
  std::string stream;     // NS/STREAM
  uint64_t end_seq = 0;   // one past the last record read (0: the segment's header is not
                          // written yet)
  uint64_t bytes = 0;     // of the active segment, read up to there
};

struct FsckReport {
  uint64_t streams = 0;
  uint64_t segments = 0;
  uint64_t records = 0;  // valid data records
  uint64_t bytes = 0;    // segment bytes checked
  std::vector<FsckIssue> issues;
  // Files fsck --repair moved aside (NS/STREAM/NNNN.seg.corrupt[.N]): kept as evidence,
  // never read; `rm --data` removes them.  Listed, not counted as issues.
  std::vector<std::string> quarantined;
  std::vector<FsckLive> live;  // streams being written during the check
  bool clean() const noexcept;  // no issue left unrepaired
};

// Checks every segment (header, every frame, sequence continuity between segments),
// every index (against one rebuilt from its segment) and the watermark file of each
// stream under `dir`: a data root (DIR/NS/STREAM/...) or one stream folder.  With
// `repair`: a torn tail is truncated, a damage inside a sealed segment is cut there
// and replaced by a lost-range marker up to the next segment, a damaged segment header
// whose first frame is intact is rebuilt (from the frame, the file name and the folder),
// unreadable segments are renamed NAME.seg.corrupt (or .corrupt.N: an earlier one is
// never replaced), indexes rewritten, a bad watermark rebuilt from the segments, and the
// directory synced.  A second repair finds nothing to do.  Repair takes each stream's
// writer lock (kBusy if a writer is running).
Result<FsckReport> fsck(std::string_view dir, bool repair);

}  // namespace shmbus::persist
