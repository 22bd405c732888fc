// ring_counts.h: which of the ring consumer's counts (gaps(), lost()) belong before a
// batch's first record, for the persister's judgement of the range the ring went past
// there: skipped (claims aborted or abandoned: nothing published) or lost.
//
// A batch read (Consumer::poll_batch) that met an event after some records (a lap, an
// eviction) returns the records, and the event with the next read; but lost(), gaps()
// and last_loss() already count the event (consumer.h).  So the counts that grew during
// a read that returned records may belong after its last record: that part is carried
// to the next batch, which the event precedes.  An event met before any record is
// returned alone (after_event()); it too precedes the next batch.
#pragma once

#include <cstdint>
#include <span>

#include "shmbus/consumer.h"

namespace shmbus::persist::detail {

class RingCounts {
 public:
  static constexpr uint64_t kUnknown = UINT64_MAX;

  // The ring consumer was opened anew: its counts start at 0 again.
  void reset() noexcept { *this = RingCounts{}; }
  // A read returned no record (an event, a timeout, an error), the consumer's counts
  // being `gaps`, `lost` and `last` after it.  What grew precedes the next batch.
  void after_event(uint64_t gaps, uint64_t lost, LossRange last) noexcept;
  // A read returned `recs` (consecutive in the ring, sequences ascending), the counts
  // after it as above.  Sets first_gaps(), first_lost() and first_loss() for recs[0].
  void after_batch(std::span<const Record> recs, uint64_t gaps, uint64_t lost,
                   LossRange last) noexcept;

  // Of the last batch: how many sequences the ring counted as gaps before its first
  // record (kUnknown when that cannot be told: then the range is judged lost), how many
  // as lost, and the range of that loss (empty when none).
  uint64_t first_gaps() const noexcept { return first_gaps_; }
  uint64_t first_lost() const noexcept { return first_lost_; }
  LossRange first_loss() const noexcept { return first_loss_; }

 private:
  uint64_t gaps_seen_ = 0, lost_seen_ = 0;       // the consumer's counts taken so far
  uint64_t carry_gaps_ = 0, carry_lost_ = 0;     // counted after the last batch's records
  bool carry_unknown_ = false;                   // a count went backwards: cannot judge
  LossRange carry_loss_{};
  uint64_t first_gaps_ = 0, first_lost_ = 0;
  LossRange first_loss_{};

  // Takes the growth of the counts since the last look into the carry.
  void carry(uint64_t dgaps, uint64_t dlost, bool unknown, LossRange last) noexcept;
};

}  // namespace shmbus::persist::detail
