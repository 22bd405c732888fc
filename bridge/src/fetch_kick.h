// fetch_kick.h: keeps librdkafka fetching while `bridge in` drains a full pre-fetch queue.
//
// librdkafka 2.0 (Debian 12's) takes a partition off its fetch list while the partition's
// queue holds queued.min.messages messages or queued.max.messages.kbytes; a consumer in a
// group forwards every partition into the one consumer queue, whose length each partition
// then reports, so every partition stops at once.  The broker's thread decides again only
// when it next wakes: a response, a request to send, or its 1 s tick.  With every partition
// stopped no fetch is in flight, so after each refill the bridge drained the queue (tens of
// ms at 64 B) and then waited for the tick (up to a second): one refill a second, the
// benchmark's 0.08x.  (librdkafka 2.2 added fetch.queue.backoff.ms for this; 2.0 has no
// knob, and a bare consumer loop that drains slower than it fetches stalls the same way.)
//
// FetchKick watches the queue as the bridge takes messages from it; once the queue was
// full (librdkafka may have stopped fetching) and is half drained, it asks each leader of
// the assigned partitions for their latest offsets (rd_kafka_offsets_for_times: one
// ListOffsets request a leader).  Sending it wakes the leader's broker thread, which then
// decides again and fetches.  The request reads no message and changes no position or
// committed offset; its answer is not needed (the call waits for it at most
// kKickTimeout).  At most one kick per fill: a fetcher that never stops is never kicked.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

namespace shmbus::kafka::detail {

// Thread: the bridge's loop only (the thread that polls the consumer).
class FetchKick {
 public:
  static constexpr std::chrono::milliseconds kKickTimeout{100};

  // `rk`: the consumer, configured (its queued.min.messages and queued.max.messages.kbytes
  // are read from it), polled through its consumer queue (rd_kafka_poll_set_consumer).
  FetchKick(rd_kafka_t* rk, std::string topic);
  ~FetchKick();
  FetchKick(const FetchKick&) = delete;
  FetchKick& operator=(const FetchKick&) = delete;

  // A message of `len` bytes was taken from the consumer queue.  Looks at the queue's
  // length every kSampleEvery messages (a lock in librdkafka), or each message when the
  // thresholds are that small; kicks when the queue was full and is half drained.
  void taken(size_t len, const std::set<int32_t>& assigned) {
    avg_len_ += (static_cast<double>(len) - avg_len_) / 64;  // a running mean, no division by count
    if (++since_sample_ < sample_every_) return;
    since_sample_ = 0;
    sample(assigned);
  }

  uint64_t kicks() const noexcept { return kicks_; }

 private:
  void sample(const std::set<int32_t>& assigned);
  void kick(const std::set<int32_t>& assigned);

  rd_kafka_t* rk_;
  rd_kafka_queue_t* queue_;  // the consumer queue (owned reference)
  std::string topic_;
  uint64_t min_msgs_;        // queued.min.messages
  double max_bytes_;         // queued.max.messages.kbytes * 1024
  uint32_t sample_every_;
  uint32_t since_sample_ = 0;
  double avg_len_ = 0;       // of the messages' payloads: the queue's bytes are estimated
  bool full_seen_ = false;   // the queue was at a threshold since the last kick
  uint64_t kicks_ = 0;
};

}  // namespace shmbus::kafka::detail
