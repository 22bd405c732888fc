// fetch_kick.cc: see fetch_kick.h.
#include "fetch_kick.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>

namespace shmbus::kafka::detail {
namespace {

// A numeric property of the client's configuration, or `fallback`.
uint64_t conf_number(rd_kafka_t* rk, const char* name, uint64_t fallback) {
  char buf[64];
  size_t n = sizeof buf;
  if (rd_kafka_conf_get(rd_kafka_conf(rk), name, buf, &n) != RD_KAFKA_CONF_OK) return fallback;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(buf, &end, 10);
  return end != buf && v > 0 ? v : fallback;
}

}  // namespace

FetchKick::FetchKick(rd_kafka_t* rk, std::string topic)
    : rk_(rk),
      queue_(rd_kafka_queue_get_consumer(rk)),
      topic_(std::move(topic)),
      min_msgs_(conf_number(rk, "queued.min.messages", 100000)),
      max_bytes_(static_cast<double>(conf_number(rk, "queued.max.messages.kbytes", 65536)) * 1024) {
  // Often enough to see the queue between a threshold and half of it.
  sample_every_ = static_cast<uint32_t>(std::clamp<uint64_t>(min_msgs_ / 8, 1, 64));
}

FetchKick::~FetchKick() {
  if (queue_) rd_kafka_queue_destroy(queue_);
}

void FetchKick::sample(const std::set<int32_t>& assigned) {
  if (!queue_) return;
  // What is left, and at most what was there since the last look (when the broker's
  // thread may have decided).
  const double left = static_cast<double>(rd_kafka_queue_length(queue_));
  const double was = left + sample_every_;
  const double min_msgs = static_cast<double>(min_msgs_);
  if (was >= min_msgs || was * avg_len_ >= max_bytes_) full_seen_ = true;
  if (full_seen_ && left <= min_msgs / 2 && left * avg_len_ <= max_bytes_ / 2) kick(assigned);
}

void FetchKick::kick(const std::set<int32_t>& assigned) {
  full_seen_ = false;
  if (assigned.empty()) return;
  rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(static_cast<int>(assigned.size()));
  for (int32_t p : assigned)
    rd_kafka_topic_partition_list_add(l, topic_.c_str(), p)->offset = RD_KAFKA_OFFSET_END;  // latest
  // Sent at once (that wakes the leaders' threads); the answer is not needed.
  (void)rd_kafka_offsets_for_times(rk_, l, static_cast<int>(kKickTimeout.count()));
  rd_kafka_topic_partition_list_destroy(l);
  ++kicks_;
  spdlog::trace("bridge in {}: fetch queue drained: fetcher woken ({} times)", topic_, kicks_);
}

}  // namespace shmbus::kafka::detail
