// shmbus/persist/group_consumer.h: a durable consumer group that takes from the store
// what the ring lost while the group was away.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>

#include "shmbus/consumer.h"
#include "shmbus/result.h"

namespace shmbus::persist {

// A durable consumer group (ConsumerOptions::group) that takes from the stream's store
// what the ring lost while the group was away: the one place that decides it, for the
// CLI's `tail --group` and Python's Consumer(group=...).  On a stream that is not
// persisted it is the ring's Consumer.  When the ring reports kEvicted (the group was
// evicted and producers overwrote records it had not read) or kBeforeOldest (a start
// below the oldest record in the ring), poll() returns that status once with loss()
// saying what the ring skipped, whether the store has it, and what is lost for good;
// the records the store has then come, in order, before the ring's next record.
// Store holes met meanwhile (deleted, never stored) are reported the same way.
//
// Commits are the ring's: the group's committed position is at the ring's oldest record
// while the store's records are read (a group that stops meanwhile does not get them
// again).
class GroupConsumer {
 public:
  struct Loss {
    uint64_t from = 0, to = 0;  // the sequences the ring skipped (or a store hole)
    uint64_t lost = 0;          // of them, lost for good (0: the store has them all)
    bool from_store = false;    // the store's records of [from, to) come next
    // Of them, deleted and not a loss ([from, from + deleted)): skipped, not counted in
    // `lost`.  That is what lies below the deletion watermark (`delete --before`), and for
    // a start below the ring (kBeforeOldest) all that retention deleted too; records that
    // retention deleted before an evicted group read them are lost to it (in `lost`).
    uint64_t deleted = 0;
  };

  static Result<GroupConsumer> open(std::string_view ns, std::string_view stream,
                                    const ConsumerOptions& opts, std::string_view data_dir = {});
  GroupConsumer(GroupConsumer&&) noexcept;
  GroupConsumer& operator=(GroupConsumer&&) noexcept;
  ~GroupConsumer();

  // Thread: one at a time.  kOk, kTimeout, kEvicted / kBeforeOldest (see loss()),
  // kLapped (a tailing ring consumer, not a group), kCorrupt, kClosed; a failed store
  // read is kCorrupt too, with error() saying why, and the next poll reports the records
  // it could not read as a loss (kEvicted, loss().lost) and goes on with the store.
  ReadStatus poll(Record* rec, std::chrono::nanoseconds timeout);
  const Loss& loss() const noexcept;
  // Records lost for good: the ring's lost() less what the store supplied and what was
  // deleted without a loss (loss().deleted).  Sequences the ring knows as gaps (claims
  // aborted or abandoned) are not records: the ring does not count them, though the
  // store's lost ranges for them are reported (loss().lost) when read from the store.
  uint64_t lost() const noexcept;
  // For a reader that hands the loss just reported (kEvicted / kBeforeOldest) to its
  // caller later (the Python bindings, after a batch's records): until loss_told(), a
  // commit or close leaves it owed to the group's next holder (Consumer::still_owed()),
  // who is told of it.  Call right after the report (before the next poll).
  void defer_loss() noexcept;
  void loss_told() noexcept;
  const Error& error() const noexcept;
  void commit() noexcept;                       // the ring's position (see above)
  // Consumer::seek() of the ring, leaving the store first: what the store was still to
  // give (a loss being read from it) is dropped, as the ring's records are.
  Result<void> seek(StartFrom where);
  Consumer& ring() noexcept;
  bool from_store() const noexcept;             // reading the store now

  struct Impl;

 private:
  explicit GroupConsumer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shmbus::persist
