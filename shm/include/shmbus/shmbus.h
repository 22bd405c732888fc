// shmbus/shmbus.h: the public face of shm/, the shared-memory stream core.
//
// shm/ owns: the ring layout in POSIX shared memory (shm/src/layout.h, documented in
// shm/FORMAT.md), stream creation / validation / removal, lock-free multi-producer
// publish (copy, claim/commit, batch), broadcast consumers (durable named groups and
// anonymous tailing readers), waiting (spin, yield, futex), and the registry of
// producers and consumers with their counters.  Nothing here exposes atomics or
// layout structs; those live in shm/src.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shmbus/result.h"

namespace shmbus {

using Bytes = std::span<const std::byte>;
using MutableBytes = std::span<std::byte>;

// ---- names -----------------------------------------------------------------

// Names match [A-Za-z0-9._-]{1,100} and are neither "." nor "..".
Result<void> validate_name(std::string_view what, std::string_view name);

// The namespace to use: `flag` if non-empty, else $SHMBUS_NAMESPACE, else "default".
std::string resolve_namespace(std::string_view flag = {});

// "shmbus.NS.STREAM": the POSIX shared-memory object name (without the leading '/').
std::string object_name(std::string_view ns, std::string_view stream);

// Parses "4096", "64K", "16M", "1G", "64KiB" (powers of 1024: K M G T, any case, and
// KiB MiB GiB TiB) and "10MB", "1GB" (powers of 1000: KB MB GB TB). Error on anything else.
Result<uint64_t> parse_size(std::string_view text);

// Parses "500ms", "2s", "1m", "1h", "250us", "10ns", decimals ("1.5", "0.2s", "1.5m"; below
// a nanosecond dropped); a bare number is seconds.
Result<std::chrono::nanoseconds> parse_duration(std::string_view text);

// Wall-clock nanoseconds since the epoch (CLOCK_REALTIME through the vDSO).
uint64_t now_ns() noexcept;

// A process-wide "stop requested" check (e.g. set by a SIGINT/SIGTERM handler) that the
// library's bounded set-up waits (the registry lock) poll, so that a stop signal ends
// them at once.  Thread: call once at start-up.  nullptr: none (the default).
using StopCheck = bool (*)() noexcept;
void set_stop_check(StopCheck check) noexcept;

// ---- streams ---------------------------------------------------------------

class StreamMapping;  // shared mapping, kept alive by every handle that uses it

struct StreamOptions {
  uint64_t capacity = 1 << 20;          // ring bytes, power of two, 4 KiB .. 4 GiB
  uint64_t max_record = 0;              // largest payload; 0 = capacity / 8
  uint32_t mode = 0600;                 // permission bits of the shm object
  bool exist_ok = false;                // an existing compatible stream is success
  // exist_ok: an existing object must belong to the caller, or to this uid (-1: none).
  int64_t trusted_owner = -1;
  // The sequence number of the first record (a stream re-created over its store
  // continues the store's numbering: sequence numbers are never reused).
  uint64_t first_seq = 0;
  // A claim left uncommitted this long (its producer died) becomes a gap.
  std::chrono::milliseconds abandon_timeout{1000};
  // A durable consumer whose process is dead stops holding producers back after this
  // (it is evicted: producers may overwrite what it has not read; it learns how many
  // records it lost when it reads again).
  std::chrono::milliseconds consumer_dead_timeout{2000};
  // How long a durable group's position is kept after its last holder went away (as
  // Kafka's offsets retention): a group back within it continues from its position;
  // after it the group is forgotten (it starts anew, where `start` says).  0 = for ever.
  std::chrono::milliseconds consumer_retention{std::chrono::hours(24 * 7)};
};

struct ProducerInfo {
  uint32_t pid = 0;
  bool alive = false;
  uint64_t start_ns = 0;
  uint64_t last_active_ns = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;
};

struct ConsumerInfo {
  std::string name;
  uint32_t pid = 0;          // 0 when no process holds it
  bool alive = false;        // a live process holds it
  bool durable = true;       // false: an anonymous tailing reader
  bool evicted = false;      // stopped holding producers back (dead past the timeout)
  uint64_t next_seq = 0;     // first sequence not yet consumed
  uint64_t lag = 0;          // next_seq of stream - next_seq of consumer
  uint64_t last_active_ns = 0;
};

// The kind of a stream's store, as its header records it (the values are the header's
// codes).  Names and parsing: persist::store_kind_name(), persist::parse_store_kind().
enum class StoreKind : uint8_t {
  kFile = 0,  // buffered pwrite() of large sequential chunks, batched fdatasync()
  kPmem = 1,  // segments pre-sized and mapped with libpmem2; persist = cache flush or msync
};

// How a stream is persisted (issue: persistence).  Stored in the stream's header, so
// that readers find the store without being told.
struct PersistSettings {
  std::string store_dir;                 // absolute path of DATA_DIR/NS/STREAM
  StoreKind store_kind = StoreKind::kFile;
  bool hold_producers = true;            // a dead persister holds producers back; false:
                                         // they go on and the store records lost ranges
  bool sync = false;                     // producers may wait for durability
  std::chrono::nanoseconds flush_interval = std::chrono::milliseconds(10);
  std::chrono::nanoseconds retention_age{0};   // 0 = keep forever
  uint64_t retention_bytes = 0;                // 0 = no limit
  uint64_t segment_bytes = 64ULL << 20;
  bool secure_delete = false;            // deleted bytes are overwritten before release
};

struct StreamInfo {
  std::string ns;
  std::string name;
  uint32_t layout_version = 0;
  uint64_t capacity = 0;
  uint64_t max_record = 0;
  uint64_t created_ns = 0;
  uint64_t next_seq = 0;          // sequence the next published record gets
  uint64_t oldest_seq = 0;        // oldest record still in the ring
  uint64_t tail_pos = 0;          // bytes ever claimed
  uint64_t records_published = 0; // == next_seq minus abandoned
  uint64_t bytes_published = 0;   // payload bytes of committed records
  uint64_t abandoned = 0;         // claims of dead producers turned into gaps
  uint64_t aborted = 0;           // claims aborted by their producer
  uint64_t producer_waits = 0;    // times a producer waited for room
  uint64_t producer_full = 0;     // publishes refused for lack of room
  uint64_t tail_lost = 0;         // records lost by lapped tailing readers
  uint64_t evictions = 0;         // durable consumers evicted as dead
  uint64_t evicted_lost = 0;      // records evicted groups lost (counted when they read again)
  uint64_t abandon_timeout_ms = 0;
  uint64_t consumer_dead_timeout_ms = 0;
  uint64_t consumer_retention_ms = 0;   // 0: positions are kept for ever
  std::vector<ProducerInfo> producers;
  std::vector<ConsumerInfo> consumers;
  // Persistence (empty store_dir when the stream is not persisted).
  std::optional<PersistSettings> persist;
  uint64_t durable_seq = 0;          // records below are durable in the store
  uint64_t oldest_persisted_seq = 0; // oldest record still in the store
  uint64_t deleted_below = 0;        // records below were deleted on purpose
  uint64_t persister_beat_ns = 0;    // last sign of life of the persister
  uint64_t deleted_records = 0;      // cumulative, by retention and explicit delete
  uint64_t deleted_bytes = 0;
  uint64_t disk_bytes = 0;           // the store's size on disk (as last published)
  uint64_t store_errors = 0;         // store write/sync failures (each rewritten from the ring)
  uint64_t segments = 0;
  // The pmem store's granularity as the persister published it: a raw code (0 not pmem,
  // 1 byte, 2 cache line, 3 page; persist::granularity_from_code() and
  // persist::granularity_name() read it; tools/stat shows it).
  uint32_t pmem_granularity_code = 0;
};

Result<void> create_stream(std::string_view ns, std::string_view name, const StreamOptions& opts);
// Refuses while a live producer or consumer is attached unless `force`.
Result<void> remove_stream(std::string_view ns, std::string_view name, bool force = false);
Result<std::vector<std::string>> list_streams(std::string_view ns);
Result<StreamInfo> stream_info(std::string_view ns, std::string_view name);
// Why producers of a full stream wait: the durable consumer groups holding them back,
// quoted, with how far and how long they have been behind and what frees them (one
// sentence, for error messages).  Empty when no group is behind.
std::string explain_held_back(const StreamInfo& info);

// The slow-path handle on a stream's header that the persister and the tools use:
// persistence settings, the durable position, the deletion watermark.
class StreamControl {
 public:
  // read_only: for readers (deleted_below(), persist()); the setters need write access.
  static Result<StreamControl> open(std::string_view ns, std::string_view name,
                                    bool read_only = false);
  StreamControl(StreamControl&&) noexcept;
  StreamControl& operator=(StreamControl&&) noexcept;
  ~StreamControl();

  Result<void> set_persist(const PersistSettings& s);
  // Ends persistence in the header (readers no longer look for a store through it).
  Result<void> clear_persist();
  std::optional<PersistSettings> persist() const;
  // Removes durable consumer group `group` (its position goes; it no longer holds
  // producers back).  kBusy while a live process holds it; false if there is none.
  Result<bool> remove_group(std::string_view group);
  // Thread: the persister.  Release-publishes that records below `seq` are durable and
  // wakes producers waiting in wait_durable().
  void set_durable_seq(uint64_t seq) noexcept;
  uint64_t durable_seq() const noexcept;
  void set_oldest_persisted_seq(uint64_t seq) noexcept;
  // Thread: the persister.  Records [from, to) as never to be stored, before
  // set_durable_seq() passes it: wait_durable() then answers kNotPersisted for them.
  void record_lost(uint64_t from, uint64_t to) noexcept;
  // Raises the deletion watermark (never lowers it).
  void raise_deleted_below(uint64_t seq) noexcept;
  uint64_t deleted_below() const noexcept;
  void beat() noexcept;     // persister heartbeat
  // The persister's store statistics, published for `stat`.  granularity: 0 not pmem,
  // 1 byte, 2 cache line, 3 page.
  // store_errors: write and sync failures, cumulative over the stream's persisters.
  void set_store_stats(uint64_t disk_bytes, uint64_t segments, uint64_t deleted_records,
                       uint64_t deleted_bytes, uint32_t granularity, uint32_t store_errors = 0) noexcept;
  const std::string& ns() const noexcept;
  const std::string& name() const noexcept;

 private:
  StreamControl() = default;
  std::shared_ptr<StreamMapping> m_;
};

// ---- waiting ---------------------------------------------------------------

enum class WaitStrategy : uint8_t {
  kBusySpin,    // lowest latency, burns a core
  kSpinYield,   // spin a while, then sched_yield
  kBlock,       // spin briefly, then sleep on a futex in shared memory
};

// ---- producers -------------------------------------------------------------

enum class FullPolicy : uint8_t { kWait, kFail };

struct ProducerOptions {
  WaitStrategy wait = WaitStrategy::kBlock;
  FullPolicy when_full = FullPolicy::kWait;
  std::chrono::nanoseconds full_timeout = std::chrono::seconds(10);
};

enum class PubStatus : uint8_t {
  kOk,
  kTooLarge,    // payload larger than max_record
  kFull,        // no room (policy kFail, or the wait timed out)
  kAbandoned,   // this claim was declared dead by another process (we were too slow)
  kClosed,
  kTimeout,     // wait_durable: not durable in time (is a persister running?)
  kCorrupt,     // the stream's cursors do not add up, or its object shrank under the
                // mapping: its shared memory was damaged (remove and recreate it)
  kNotPersisted,  // wait_durable: the record will never be durable: the persister
                  // recorded it as lost (a let-go stream whose persister was away)
};

struct [[nodiscard]] PubResult {
  PubStatus status;
  uint64_t seq;      // first sequence assigned (valid when kOk)
  bool ok() const noexcept { return status == PubStatus::kOk; }
};

class Claim;

class Producer {
 public:
  static Result<Producer> open(std::string_view ns, std::string_view name,
                               const ProducerOptions& opts = {});
  Producer(Producer&&) noexcept;
  Producer& operator=(Producer&&) noexcept;
  ~Producer();

  // Thread: one thread at a time per Producer object (make one per thread).
  PubResult publish(Bytes payload, uint32_t type = 0) noexcept;
  // Publishes all payloads as consecutive sequence numbers (one claim).
  PubResult publish_batch(std::span<const Bytes> payloads, uint32_t type = 0) noexcept;
  // Zero-copy: reserve `size` bytes; fill claim.data(), then commit() or abort().
  // On failure returns an invalid Claim and sets *status.
  Claim claim(size_t size, uint32_t type, PubStatus* status) noexcept;

  // Waits until the persister has made record `seq` durable (persisted streams).
  // kOk, kTimeout, kClosed, or kNotPersisted: the persister recorded `seq` as lost (it
  // is never acknowledged as durable; with more than 16 lost ranges recorded past
  // `seq` before this call looked, it cannot tell and says kNotPersisted too).
  PubStatus wait_durable(uint64_t seq, std::chrono::nanoseconds timeout) noexcept;
  // publish() then wait_durable().
  PubResult publish_durable(Bytes payload, uint32_t type, std::chrono::nanoseconds timeout) noexcept;

  uint64_t max_record() const noexcept;
  uint64_t capacity() const noexcept;
  void close() noexcept;
  bool is_open() const noexcept { return impl_ != nullptr; }

  struct Impl;

 private:
  friend class Claim;
  explicit Producer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;  // shared with its outstanding Claims
};

// A claimed, not yet committed record. Move-only; destroying it uncommitted aborts it.
// It shares its producer's state: it stays valid when the Producer is moved, and after
// the Producer is closed or destroyed commit() aborts the record and returns kClosed.
class Claim {
 public:
  Claim() = default;
  Claim(Claim&& o) noexcept;
  Claim& operator=(Claim&& o) noexcept;
  Claim(const Claim&) = delete;
  Claim& operator=(const Claim&) = delete;
  ~Claim();

  MutableBytes data() const noexcept { return data_; }
  uint64_t seq() const noexcept { return seq_; }
  bool valid() const noexcept { return producer_ != nullptr; }
  // Thread: the claiming thread. Makes the record visible.
  PubStatus commit() noexcept;
  // Makes the record visible with only the first `size` bytes of data() (a claim sized
  // for the largest message, filled with a smaller one).  kTooLarge (nothing done, the
  // claim stays open) when `size` exceeds data().size().  The ring bytes after them stay
  // reserved until the ring wraps (readers skip them).
  PubStatus commit(size_t size) noexcept;
  // Turns the record into a gap that consumers skip.
  PubStatus abort() noexcept;

 private:
  friend class Producer;
  std::shared_ptr<Producer::Impl> producer_;
  uint64_t pos_ = 0;
  uint64_t seq_ = 0;
  MutableBytes data_{};
};

// ---- consumers -------------------------------------------------------------

// Whether a stream's name still refers to the object a handle has open (what `tail -F`
// follows): kRemoved (no stream by that name now), kReplaced (a new stream was created
// under the name since).
enum class NameState : uint8_t { kSame, kRemoved, kReplaced };

struct StartFrom {
  enum class Kind : uint8_t { kEarliest, kLatest, kSeq, kTime, kCommitted };
  Kind kind = Kind::kCommitted;  // durable: continue after last commit, else earliest
  uint64_t value = 0;            // sequence, or time in ns since the epoch
  static StartFrom earliest() { return {Kind::kEarliest, 0}; }
  static StartFrom latest() { return {Kind::kLatest, 0}; }
  static StartFrom seq(uint64_t s) { return {Kind::kSeq, s}; }
  // Starts at the first record, in sequence order, stamped at or after t, and from there
  // delivers every record whatever its stamp: stamps are taken after the claim, so those
  // of different producers need not grow with the sequence (nor across a clock step).
  static StartFrom time_ns(uint64_t t) { return {Kind::kTime, t}; }
};
// Parses "earliest", "latest", a number (sequence) or "@TIME": ISO 8601
// "2026-11-25T13:00:00[.fff][Z|+01:00|-0500]" (no zone: UTC), "2026-11-25T13:00", a date
// "2026-11-25" (midnight UTC), "now", "-10s" or "now-10s" (a duration ago), an epoch value
// with its unit "1796015187s", "...ms", "...us", "...ns", or a bare epoch number whose unit
// is inferred from its size (below 1e11: s, 1e14: ms, 1e17: us, else ns).  For a bare
// number, `note` (if given) receives a sentence saying which unit was assumed; else it is
// cleared.
Result<StartFrom> parse_start(std::string_view text, std::string* note = nullptr);

struct ConsumerOptions {
  std::string group;            // empty: anonymous tailing consumer; else durable name
                                // (a dead holder's name is taken over at once)
  // Where a tailing consumer or a *new* group starts.  An existing group continues from
  // its committed position whatever `start` says (as Kafka's auto.offset.reset), unless
  // `reset` (or Consumer::seek) moves it there explicitly.
  StartFrom start{};
  bool reset = false;
  WaitStrategy wait = WaitStrategy::kBlock;
  bool auto_commit = true;      // durable: each poll commits the previous record
  bool read_only = false;       // map read-only (tailing consumers only)
  // The persister's own consumer: never evicted as dead unless the stream lets
  // producers go on without it (then the store records the lost range).
  bool persister = false;
};

struct Record {
  uint64_t seq = 0;
  uint64_t ts_ns = 0;
  uint32_t type = 0;
  Bytes data{};   // zero-copy view into the ring: valid until the next poll
};

enum class ReadStatus : uint8_t {
  kOk,        // *rec is the next record
  kTimeout,   // nothing arrived in time
  kLapped,    // tailing reader was overrun; lost() grew; poll again to resume
  kCorrupt,   // the ring holds bytes no shmbus producer wrote (shared memory damaged)
  kClosed,
  kEvicted,   // durable group was evicted (its holder was gone past the stream's
              // consumer_dead_timeout) and producers wrote over records it had not read:
              // lost() grew by exactly those, last_loss() names them; poll again to
              // resume at the oldest record still in the ring.  Reported by the group's
              // next read, also when a new process opens the group again.  (Evicted with
              // nothing overwritten: nothing to report, it just goes on.)
  kBeforeOldest,  // the start (StartFrom::seq) lies below the oldest record still in the
                  // ring: lost() grew by the records skipped, last_loss() names them;
                  // poll again to read from the oldest record
};

// Sequences [from, to) that a consumer lost (see ReadStatus).
struct LossRange {
  uint64_t from = 0;
  uint64_t to = 0;
  uint64_t count() const noexcept { return to - from; }
};

class Consumer {
 public:
  static Result<Consumer> open(std::string_view ns, std::string_view name,
                               const ConsumerOptions& opts = {});
  Consumer(Consumer&&) noexcept;
  Consumer& operator=(Consumer&&) noexcept;
  ~Consumer();

  // Thread: one thread at a time. A timeout of zero never waits.
  // For a tailing consumer the payload is copied into an internal buffer and checked
  // against overwrite before it is returned (never a torn record); a durable
  // consumer's view points into the ring (producers cannot overwrite it).
  [[nodiscard]] ReadStatus poll(Record* rec, std::chrono::nanoseconds timeout) noexcept;
  // Durable: make everything returned so far consumed (the position others see).
  void commit() noexcept;
  // Thread: the consumer's.  Moves this consumer (a durable group: its committed
  // position too) to `where`: rewinding or skipping a group is always explicit.
  // Records returned before are no longer valid.  On error the consumer is closed.
  Result<void> seek(StartFrom where);

  uint64_t next_seq() const noexcept;   // sequence of the next record to be returned
  uint64_t lost() const noexcept;       // records lost to laps, eviction or a start below
                                        // the oldest record
  // The range counted by the last kLapped, kEvicted or kBeforeOldest.
  LossRange last_loss() const noexcept;
  uint64_t gaps() const noexcept;       // sequences skipped because claims were abandoned
                                        // or aborted (lapped: those the ring's gap log names)
  // True while lost() is exact.  A lap over sequence numbers that the ring's gap log no
  // longer holds (more aborted or abandoned claims in one lap than it keeps), or over a
  // claim whose producer died before it wrote a header, cannot tell gaps from lost
  // records there: those count as lost (an upper bound) and this turns false for good.
  bool lost_exact() const noexcept;
  // Whether the stream's name still refers to the stream this consumer reads (removed, or
  // removed and created again).  System calls: for idle moments, not per record.
  NameState name_state() const noexcept;
  bool durable() const noexcept;
  void close() noexcept;
  bool is_open() const noexcept { return impl_ != nullptr; }

  struct Impl;

 private:
  explicit Consumer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shmbus
