// in_batch.h: how `bridge in` takes messages from its consumer, and which of them are its
// own to publish across a rebalance.
//
// Messages are taken in batches of what librdkafka has already fetched (one queue lock
// and a few clock reads a batch instead of a message), and one at a time, waiting, when
// there are none.  A rebalance may run inside either call (the rebalance callback is
// served there).  One that revokes partitions inside the batch call ends the batch where
// it happens (the callback yields), and the batch's messages of those partitions are not
// the bridge's: they were fetched for the old assignment, and whoever holds the partition
// next reads them again from the committed offset.  That holds for that call's messages
// only: the set of revoked partitions once outlived a batch call that returned nothing
// (and a wait that returned nothing), and the first message after the partition's next
// assignment was dropped unread (its partition's duplicates then went unrecognised: 499
// messages repeated in a CI run; or, had the previous owner committed it, lost).  Nor is a
// message of a partition the bridge does not hold at all its own.
#pragma once

#include <librdkafka/rdkafka.h>

#include <cstddef>
#include <cstdint>
#include <set>

namespace shmbus::kafka::detail {

// Where messages come from: the consumer's queue (in.cc), or a script (tests).
class MessageSource {
 public:
  virtual ~MessageSource() = default;
  // What is fetched, without waiting (rd_kafka_consume_batch_queue with timeout 0):
  // at most `cap` messages into `out`; < 0 on error.
  virtual ssize_t take_fetched(rd_kafka_message_t** out, size_t cap) = 0;
  // One message or event, waiting up to `timeout_ms` (rd_kafka_consumer_poll); nullptr.
  virtual rd_kafka_message_t* wait_one(int timeout_ms) = 0;
};

// Thread: the bridge's own thread (the rebalance callback runs in it, inside take()).
class Batches {
 public:
  // Takes the next messages into `out` (at most `cap`): those fetched, else one waited
  // for (up to `wait_ms`).  Returns how many (0: none came).
  size_t take(MessageSource& source, rd_kafka_message_t** out, size_t cap, int wait_ms);
  // From the rebalance callback: `partition` was revoked.  Inside the batch call, for that
  // call's messages; after it (a poll while a publish waits for room, in.cc), for the rest
  // of the batch being handled, until the next take().
  void revoked(int32_t partition) {
    if (in_batch_)
      revoked_in_batch_.insert(partition);
    else
      taken_revoked_.insert(partition);
  }
  // From the rebalance callback: whether it runs inside the batch call (then it should
  // end the batch there: rd_kafka_yield).
  bool in_batch() const noexcept { return in_batch_; }
  // Whether a message of the last take() is the bridge's to handle: an event or error, or
  // a message of a partition held now (`assigned`) that no rebalance during that batch
  // call revoked.
  bool ours(const rd_kafka_message_t& m, const std::set<int32_t>& assigned) const {
    return m.err || (taken_revoked_.count(m.partition) == 0 && assigned.count(m.partition) != 0);
  }

 private:
  bool in_batch_ = false;
  std::set<int32_t> revoked_in_batch_;  // filled by revoked() during the batch call
  std::set<int32_t> taken_revoked_;     // those of the last take()'s batch call
};

}  // namespace shmbus::kafka::detail
