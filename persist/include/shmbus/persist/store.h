// shmbus/persist/store.h: the writer of one stream's segments (SegmentStore), its
// options and statistics, and what a deletion removed.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <span>

#include "shmbus/consumer.h"  // Record
#include "shmbus/result.h"
#include "shmbus/stream.h"  // Bytes

namespace shmbus::persist {

// ---- options and statistics --------------------------------------------------------

// The store kinds (file, pmem): the enum the stream header records (shmbus/stream.h).
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
// Records of up to kStoreBatchRecordMax bytes, stored in a run (as the persister stores
// what it reads), share batch frames of up to kStoreBatchFrameBytes of sub-records: each
// takes a kStoreBatchSubHeaderBytes sub-header (padded to 8) and a share of one frame
// header (persist/FORMAT.md, "Batch").
inline constexpr uint32_t kStoreBatchRecordMax = 256;
inline constexpr uint32_t kStoreBatchSubHeaderBytes = 16;
inline constexpr uint32_t kStoreBatchFrameBytes = 4096;
// What a record of `mean_bytes` costs in the store besides its payload, on average, for
// sizing from a measured rate (`stat`'s projected store bytes): kStoreBytesPerRecord for
// a record larger than kStoreBatchRecordMax; for a smaller one its sub-header, half the
// alignment, and its share of a frame header (20.7 bytes at 64 B; 17.1 measured for 64 B
// records, which need no padding).
constexpr double store_bytes_per_record(double mean_bytes) noexcept {
  if (!(mean_bytes <= kStoreBatchRecordMax)) return kStoreBytesPerRecord;
  const double sub = kStoreBatchSubHeaderBytes + kStoreFrameAlign / 2.0;
  return sub + kStoreFrameHeaderBytes * (sub + (mean_bytes > 0 ? mean_bytes : 0)) / kStoreBatchFrameBytes;
}

struct StoreOptions {
  StoreKind kind = StoreKind::kFile;
  uint64_t segment_bytes = 64ull << 20;  // roll when the next record would not fit
  std::chrono::nanoseconds roll_age = std::chrono::hours(1);  // roll an older segment; 0: never
  Durability durability = Durability::kAsync;
  std::chrono::nanoseconds flush_interval = std::chrono::milliseconds(10);
  uint32_t index_interval = 64 << 10;    // bytes of records between index entries
  uint32_t write_buffer = 1 << 20;       // file store: bytes gathered per write()
  bool secure_delete = false;            // overwrite segments with zeros before unlinking
  // The stream's source (its ring), when the caller stores from one.  A last segment that
  // holds only the marker fsck --repair puts in place of a last segment it moved aside
  // ([first, to): its end unknown, `to` a bound past anything it can have held) is
  // withdrawn at open when the source has numbered as far as the records the moved
  // segment was still seen to hold (a source behind a store is an earlier stream's: the
  // persister refuses it, as it refuses one behind any store's end): the store then
  // continues at the oldest sequence the source still holds (what lies between is
  // recorded lost, reason 0), or at `first`, and the caller stores again what its source
  // holds.  Unset: the marker stands, and no new record takes a sequence the moved
  // segment may have held.
  struct Source {
    uint64_t oldest = 0;  // the oldest sequence it still holds
    uint64_t next = 0;    // the sequence it gives next
  };
  std::optional<Source> source;
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
  uint64_t skipped_marked = 0;    // since open; sequences declared skipped (never published)
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
  // Stores recs in order, as append() each would (consecutive sequences, the first
  // next_seq()), but runs of small records (up to 256 bytes each) share one frame of up to
  // 4 KiB: a 16-byte sub-header per record instead of a 32-byte frame header, one CRC,
  // one index check (persist/FORMAT.md, "Batch").  Readers see the same records
  // either way.  A damaged byte costs the records of its frame.  On an error the
  // records before next_seq() are stored (whole frames), the rest are not: append them
  // again from next_seq() (after a failed sync the store goes back further, as for
  // append(): a store stopped() says where only once a call has got it back).  Errors
  // as append()'s.
  Result<void> append_batch(std::span<const Record> recs);
  // Records that sequences [from, to) will never be stored (a lost-range marker).
  // `from` must equal next_seq() (any value for a new store), to > from.  `skipped`:
  // nothing was published under them (claims aborted or abandoned in the ring), so
  // readers skip them as the ring's readers do, without a loss (EntryKind::kSkipped).
  Result<void> append_lost(uint64_t from, uint64_t to, bool skipped = false);

  // Makes everything appended durable (fdatasync, or pmem2 persist), then writes
  // pending index entries.
  Result<void> flush();
  // The same in two halves, so that the writer appends on while the disk syncs (the
  // persister does): flush_start() writes what is buffered and starts the sync on the
  // store's own sync thread; appends after it are not covered by it.  At most one runs
  // (a call while one does changes nothing); flush(), close() and every call that
  // rolls, cuts or syncs the active segment wait for it first.  flush_finish() waits at most
  // `wait` for it: false while it runs; true once none runs, durable_seq() then covers
  // every record appended before flush_start() (never before its sync returned
  // success); an error if it failed, handled as flush()'s (the store went back to its
  // last synced record: append from next_seq() again).
  Result<void> flush_start();
  Result<bool> flush_finish(std::chrono::nanoseconds wait);
  bool flush_running() const noexcept;  // flush_start()'s sync has not been collected
  // kAsync: flushes if the oldest unflushed record is flush_interval old.  Cheap.
  Result<void> tick();

  // The sequence the next append must carry (while stopped(): where the store was; it
  // says where it went back to once a call succeeds in going back).
  uint64_t next_seq() const noexcept;
  // True while the store has never held a record: its first append (or append_lost)
  // picks any sequence.  A store that went back to nothing after an I/O error continues
  // at next_seq() instead, and so does a store opened with no segment left but a
  // watermark (its records were deleted): at the watermark.
  bool takes_any_sequence() const noexcept;
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

}  // namespace shmbus::persist
