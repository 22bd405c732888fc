// shmbus/consumer.h: reading a stream: durable consumer groups and anonymous tailing
// readers, where they start (StartFrom), and what a read reports (ReadStatus).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "shmbus/result.h"
#include "shmbus/stream.h"

namespace shmbus {

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
  WaitStrategy wait = WaitStrategy::kBlock;  // how poll() waits (stream.h; see poll())
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
  kLapped,    // tailing reader was overrun; lost() grew; poll again to resume (at the
              // oldest record; lapped again before it read half a ring past that point,
              // half a ring, at most 256 records, further on: those count as lost too)
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

  // Thread: one thread at a time.
  // Cost.  A record already there is returned at the first look, whatever the timeout.
  // With nothing there, poll(rec, 0ns) never waits: it reads the record's header, the
  // claim cursor and the clock (vDSO) and returns kTimeout, about 140 instructions and no
  // system call (callgrind, Release, an empty stream): cheap enough to call in a loop
  // that polls other things too (it does read the cursor producers write, so a tight
  // loop of them slows producers slightly).  Only when a claim there has been pending
  // past the stream's abandon timeout, or it first sees one after it has waited that long
  // at that position, does it probe that producer's liveness (a system call or two; a
  // live one is asked again one abandon timeout later).  A positive timeout waits as the
  // consumer's WaitStrategy says (default kBlock: about 2000 pause-spins, ~100
  // sched_yield, then a futex sleep that a producer's commit ends): the first record
  // arrives within nanoseconds while it spins and within a wake-up (tens of
  // microseconds) once it sleeps; an idle consumer then wakes once per abandon timeout
  // (kept within 100 ms-60 s; 1 s by default), which bounds the delivery of a record
  // whose producer died between its commit and its wake-up.
  // For a tailing consumer the payload is copied into an internal buffer and checked
  // against overwrite before it is returned (never a torn record); a durable
  // consumer's view points into the ring (producers cannot overwrite it).
  [[nodiscard]] ReadStatus poll(Record* rec, std::chrono::nanoseconds timeout) noexcept;
  // Up to `max` records in one call (as Aeron's poll with a fragment limit): waits for
  // the first as poll() does, then takes those already committed behind it without
  // waiting.  kOk: out[0..*n) are the next *n records (*n >= 1), each valid until the
  // next poll, poll_batch, seek or close; any other status: *n is 0, as poll() says.  An
  // event met after records were taken (a lap, an eviction, a start below the oldest
  // record, damage) ends the batch and is returned by the next read, so every record
  // before it is delivered first and lost()/last_loss() already count it.  Auto-commit
  // commits the whole batch at the next read.  What it saves per record, against poll():
  // the auto-commit (a 16-byte store or CAS16 on the consumer's slot, and the look for
  // producers waiting for room) and a tailing reader's position update.  A tailing
  // reader copies the batch into one internal buffer; the batch ends early when that is
  // full (it then grows, at most to 256 KiB or one largest record).
  [[nodiscard]] ReadStatus poll_batch(Record* out, size_t max, size_t* n,
                                      std::chrono::nanoseconds timeout) noexcept;
  // A tailing reader's record where it lies in the ring, without poll()'s copy (as
  // Aeron's BroadcastReceiver: receive, read in place, validate).  Producers never wait
  // for a tailing reader, so they may write over the payload while you read it: read
  // what you need (copy out what you keep), then call validate().  Only if it returns
  // true were the bytes you read the record's, whole.  false: they may be torn, drop
  // what you took from them; the reader was lapped and resumes as kLapped says, and its
  // next read returns kLapped with this record counted in lost() and last_loss().  The
  // header's fields (seq, ts_ns, type, size) are checked before the record is
  // returned.  Every other status, and waiting, as poll().  The view ends with the next
  // poll, poll_in_place, poll_batch, seek or close: validate before them.  A durable
  // consumer's records cannot be overwritten: for it this is poll(), and validate() is
  // true.
  [[nodiscard]] ReadStatus poll_in_place(Record* rec, std::chrono::nanoseconds timeout) noexcept;
  // Thread: the consumer's.  After poll_in_place(): were the record's bytes, as read so
  // far, the record's?  Call it again after reading more: each call checks again, and
  // once false it stays false until the next read.  No system call: usually a fence
  // and a load of a line producers write once per sixteenth of the ring (near the
  // oldest record the claim cursor too; on false, the lap's resync).  true when no
  // record was returned in place since the last read; false on a closed consumer.
  [[nodiscard]] bool validate() noexcept;
  // Durable: make everything returned so far consumed (the position others see).
  void commit() noexcept;
  // Where this consumer stands after the records returned so far, to commit later: a
  // reader that makes records durable (the persister) commits what a sync covered while
  // it reads on.  Records returned stay valid until a commit passes them.
  struct Mark {
    uint64_t pos = 0;  // ring position after the last record returned
    uint64_t seq = 0;  // the sequence that follows it
  };
  Mark mark() const noexcept;
  // Durable: commits up to `m` (from mark()).  A mark at or below the committed
  // position, or past what was returned (taken before a seek or a rejoin), changes
  // nothing: a committed position never goes back.
  void commit(Mark m) noexcept;
  // Thread: the consumer's.  Moves this consumer (a durable group: its committed
  // position too) to `where`: rewinding or skipping a group is always explicit.  A
  // commit() (or an auto-committing close) right after it commits the first record at or
  // after `where` as far as records are committed (a target past the newest record: the
  // newest position, so the group's next holder reads the records published up to it).
  // Records returned before are no longer valid.  On error the consumer is closed.
  Result<void> seek(StartFrom where);

  uint64_t next_seq() const noexcept;   // sequence of the next record to be returned
  // The ring position (bytes ever claimed, StreamInfo::tail_pos) up to which this
  // consumer has looked: every claim below it was returned, or stepped over as a gap
  // (aborted or abandoned: nothing published) or a pad.  Past next_seq()'s record when
  // the last claims were gaps, which carry no sequence a reader can trust.  Never past
  // claims lost to a lap, an eviction or a start below the oldest record.
  uint64_t read_pos() const noexcept;
  uint64_t lost() const noexcept;       // records lost to laps, eviction or a start below
                                        // the oldest record
  // The range counted by the last kLapped, kEvicted or kBeforeOldest.
  LossRange last_loss() const noexcept;
  // A durable group's loss is owed to the group until it is told: a holder that stops
  // (or is killed) before its read returns kEvicted / kBeforeOldest leaves it to the
  // group's next holder, which is told of it.  Once told, it is gone, unless the reader
  // takes the lost records from elsewhere (persist::GroupConsumer reads them from the
  // store) and calls this, right after the report and before its next read here: the
  // records from `from_seq` up to last_loss().to are then still owed, and a commit (or
  // an auto-committing close) leaves them to the next holder, told again from
  // `from_seq`.  `from_seq` >= last_loss().to: none is owed any more.  At any other time
  // it changes nothing.
  void still_owed(uint64_t from_seq) noexcept;
  uint64_t gaps() const noexcept;       // sequences skipped because claims were abandoned
                                        // or aborted (lapped: those the ring's gap log names);
                                        // counted when the record after them is read (its
                                        // sequence says how many)
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
