// client.h: the librdkafka handles of bridge/ (RAII), their configuration from the
// bridge's defaults and the user's -X properties, and small helpers shared by out, in
// and recover.
#pragma once

#include <librdkafka/rdkafka.h>

#include <time.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shmbus/kafka.h"

namespace shmbus::kafka::detail {

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const noexcept;
};
using KafkaPtr = std::unique_ptr<rd_kafka_t, KafkaDeleter>;

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* c) const noexcept { rd_kafka_conf_destroy(c); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;

struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const noexcept { rd_kafka_topic_partition_list_destroy(l); }
};
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

// A configuration: bootstrap.servers = brokers, then `defaults`, then the user's
// properties (which win), each checked by librdkafka (kInvalidArgument names the bad one).
// Logs go to spdlog.
Result<ConfPtr> make_conf(const std::string& brokers, const std::vector<Property>& defaults,
                          const std::vector<Property>& user);

// rd_kafka_new (kInvalidArgument with librdkafka's reason).  Takes the conf.
Result<KafkaPtr> make_client(rd_kafka_type_t type, ConfPtr conf);

// Waits for metadata of all topics (creating nothing) and returns the partition count of
// `topic`: kNotFound if the cluster has no such topic, kIo if no broker answered within
// `timeout` ("cannot reach the brokers LIST: ...").
Result<int32_t> topic_partitions(rd_kafka_t* rk, const std::string& brokers,
                                 const std::string& topic, std::chrono::milliseconds timeout);

// steady_clock::now() to within a clock tick (CLOCK_MONOTONIC_COARSE, steady_clock's own
// clock read without the TSC: ~15 ns against ~90 ns here): for the per-message loop's
// intervals (commit, status), which are hundreds of milliseconds.
inline std::chrono::steady_clock::time_point coarse_now() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return std::chrono::steady_clock::time_point(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
}

// The value of header `name` of `m`, if present.
std::optional<std::string_view> header(const rd_kafka_message_t* m, const char* name);
// A decimal uint64 in `text` (no sign, no spaces), or nullopt.
std::optional<uint64_t> parse_u64(std::string_view text);

// "NS/STREAM", the shmbus.stream header of a stream's records.
std::string stream_id(std::string_view ns, std::string_view stream);

// The partition of a key (murmur2, as the Java client and librdkafka's
// "murmur2_random" partitioner), so that --key type is stable across restarts.
int32_t partition_for_key(std::string_view key, int32_t partitions);

}  // namespace shmbus::kafka::detail
