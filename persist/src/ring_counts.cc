// ring_counts.cc: see ring_counts.h.
#include "ring_counts.h"

#include <algorithm>

namespace shmbus::persist::detail {

void RingCounts::carry(uint64_t dgaps, uint64_t dlost, bool unknown, LossRange last) noexcept {
  carry_unknown_ = carry_unknown_ || unknown;
  carry_gaps_ += dgaps;
  if (dlost > 0) {
    // The range: the last loss, joined with one carried already (two events between
    // two batches: a lap, then another before a record was read).
    carry_loss_ = carry_lost_ == 0 ? last
                                   : LossRange{std::min(carry_loss_.from, last.from),
                                               std::max(carry_loss_.to, last.to)};
  }
  carry_lost_ += dlost;
}

void RingCounts::after_event(uint64_t gaps, uint64_t lost, LossRange last) noexcept {
  const bool unknown = gaps < gaps_seen_ || lost < lost_seen_;
  carry(unknown ? 0 : gaps - gaps_seen_, unknown ? 0 : lost - lost_seen_, unknown, last);
  gaps_seen_ = gaps;
  lost_seen_ = lost;
}

void RingCounts::after_batch(std::span<const Record> recs, uint64_t gaps, uint64_t lost,
                             LossRange last) noexcept {
  // The sequences between the batch's records: gaps only (an event ends a batch before
  // its record), counted with the batch.
  uint64_t holes = 0;
  for (size_t k = 1; k < recs.size(); ++k) holes += recs[k].seq - recs[k - 1].seq - 1;
  bool unknown = gaps < gaps_seen_ || lost < lost_seen_;
  uint64_t dgaps = unknown ? 0 : gaps - gaps_seen_;
  uint64_t dlost = unknown ? 0 : lost - lost_seen_;
  gaps_seen_ = gaps;
  lost_seen_ = lost;
  // A loss counted during this read lies after its last record (one before its first
  // would have been returned alone), and last_loss() names it: its lost records, and the
  // gaps inside it (last.count() - dlost, counted in gaps() with it), go to the next
  // batch.  A loss that does not look so is left before the first record, as before this
  // split: judged lost (a false loss at worst, never a loss judged skipped).
  uint64_t after_gaps = 0, after_lost = 0;
  if (!unknown && dlost > 0 && !recs.empty() && last.from > recs.back().seq &&
      last.count() >= dlost && last.count() - dlost <= dgaps) {
    after_lost = dlost;
    after_gaps = last.count() - dlost;
  }
  const uint64_t batch_gaps = dgaps - after_gaps;
  if (carry_unknown_ || unknown || batch_gaps < holes) {
    first_gaps_ = kUnknown;
  } else {
    first_gaps_ = carry_gaps_ + (batch_gaps - holes);
  }
  const uint64_t here_lost = dlost - after_lost;
  first_lost_ = carry_lost_ + here_lost;
  if (carry_lost_ > 0 && here_lost > 0)
    first_loss_ = LossRange{std::min(carry_loss_.from, last.from), std::max(carry_loss_.to, last.to)};
  else if (carry_lost_ > 0)
    first_loss_ = carry_loss_;
  else
    first_loss_ = here_lost > 0 ? last : LossRange{};
  carry_gaps_ = carry_lost_ = 0;
  carry_unknown_ = false;
  carry_loss_ = {};
  if (after_lost > 0) carry(after_gaps, after_lost, false, last);
}

}  // namespace shmbus::persist::detail
