// shmbus/kafka.h: the public face of bridge/, streams to and from Kafka.
//
// bridge/ owns: carrying a stream's records into a Kafka topic exactly once and in order
// (run_bridge_out: librdkafka's idempotent producer, the position recovered from the
// topic itself on start), carrying a topic's messages into a stream at least once and in
// order per partition (run_bridge_in: a consumer group that commits its offsets only
// after the records are published, or durable), the librdkafka mock cluster used by
// `shmbus kafka-mock` and the tests (MockCluster), and the small status file through
// which `shmbus stat` shows a running bridge (BridgeStatus).  It sits above persist/ and
// shm/ and uses only their public headers; the ring and the store know nothing of Kafka.
// librdkafka types stay in bridge/src.
//
// Kafka message of one record (bridge out): value = payload; headers shmbus.seq,
// shmbus.type, shmbus.ts_ns (decimal ASCII) and shmbus.stream ("NS/STREAM"); timestamp =
// the record's time in ms (CreateTime).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shmbus/result.h"
#include "shmbus/shmbus.h"

namespace shmbus::kafka {

// The header names of a bridged record.
inline constexpr const char* kHeaderSeq = "shmbus.seq";
inline constexpr const char* kHeaderType = "shmbus.type";
inline constexpr const char* kHeaderTsNs = "shmbus.ts_ns";
inline constexpr const char* kHeaderStream = "shmbus.stream";

// A librdkafka property given as "-X NAME=VALUE" (kcat's syntax).
struct Property {
  std::string name, value;
};
// Splits each "NAME=VALUE" (kInvalidArgument for a text without '=' or an empty name).
// Whether librdkafka knows the property is checked when a client is made.
Result<std::vector<Property>> parse_properties(const std::vector<std::string>& texts);

// "NAME" or "NAME:PARTITIONS" (1 .. 100000 partitions; default 1).
struct TopicSpec {
  std::string name;
  int32_t partitions = 1;
};
Result<TopicSpec> parse_topic_spec(std::string_view text);
// Kafka's topic name rule: [A-Za-z0-9._-]{1,249}, neither "." nor "..".
Result<void> validate_topic(std::string_view topic);

// Sends the bridge's logs (spdlog's default logger, librdkafka's own through it) to
// stderr, at `level` ("debug", "info", "warn", "error"; anything else: "warn").
// librdkafka's messages are logged at debug: failures reach the user as the bridge's
// own errors.  Thread: call once at start-up.
void log_to_stderr(std::string_view level);

// Called often by a running bridge: true asks it to stop cleanly (SIGINT / SIGTERM).
using StopFn = std::function<bool()>;

// ---- mock cluster ----------------------------------------------------------------

// librdkafka's in-process mock cluster: real Kafka-protocol brokers on 127.0.0.1
// (ephemeral ports), data in memory only, alive as long as this object.
// Thread: any (librdkafka serialises the calls on the cluster's own thread).
class MockCluster {
 public:
  static Result<std::unique_ptr<MockCluster>> start(int brokers,
                                                    const std::vector<TopicSpec>& topics = {});
  ~MockCluster();
  MockCluster(const MockCluster&) = delete;
  MockCluster& operator=(const MockCluster&) = delete;

  // "127.0.0.1:PORT[,127.0.0.1:PORT...]".
  const std::string& bootstraps() const noexcept { return bootstraps_; }
  Result<void> create_topic(const TopicSpec& t);
  // Broker ids are 1 .. brokers.  A broker set down closes its connections and refuses
  // new ones.  Caution: librdkafka 2.0.2's mock re-binds the broker's port at once when it
  // goes down and aborts the whole process (an assert) if the port is still busy, which
  // happens with clients connected; the tests make outages with the two calls below.
  Result<void> set_broker_down(int32_t broker_id);
  // Makes `broker_id` the leader of topic[partition], or -1: the partition has no leader
  // (it is offline: produce and fetch fail until a leader is set again).  The data stays
  // (the mock keeps one log per partition).
  Result<void> set_partition_leader(const std::string& topic, int32_t partition, int32_t broker_id);
  // Delays every answer of broker `broker_id` (-1: all) by `rtt_ms` (0: none).
  Result<void> set_broker_rtt(int32_t broker_id, int rtt_ms);
  // The next `count` requests of Kafka API `api_key` (e.g. 0 Produce, 1 Fetch) fail with
  // Kafka error code `error` (e.g. 6 NOT_LEADER_FOR_PARTITION, 7 REQUEST_TIMED_OUT).
  void push_request_errors(int16_t api_key, int count, int error);

  struct Impl;

 private:
  explicit MockCluster(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::string bootstraps_;
};

// ---- the counters a bridge shows in `stat` ---------------------------------------

struct BridgeCounters {
  uint64_t delivered = 0;    // out: acknowledged by Kafka; in: published to the stream
  uint64_t in_flight = 0;    // out: produced, not yet acknowledged; in: published, not committed
  uint64_t errors = 0;       // delivery / publish errors (each logged)
  uint64_t skipped = 0;      // records too large for the other side: logged, counted, skipped
  uint64_t duplicates_skipped = 0;  // out: records found already in Kafka at a restart;
                                    // in: messages given again after a restart that the
                                    // bridge had published before it died (not published again)
  uint64_t lag = 0;          // out: records of the stream not yet acknowledged by Kafka;
                             // in: the consumer group's lag (messages not yet consumed)
  uint64_t restarts = 0;     // out: producer sessions restarted after a delivery failure
  std::string last_error;
  // out: when Kafka acknowledged the first and the last record of this run (epoch: none
  // yet); the start-up time and the steady-state rate of the benchmark.
  std::chrono::steady_clock::time_point first_ack{}, last_ack{};
};

// ---- bridge out: stream -> topic, exactly once -------------------------------------

enum class KeyMode : uint8_t {
  kNone,  // every record to one partition (OutOptions::partition): the stream's total order
  kType,  // key = the decimal type; partition = hash of the key (order kept per type)
};

struct OutOptions {
  std::string ns, stream;
  std::string brokers;             // bootstrap list
  std::string topic;               // must exist
  std::string name;                // durable consumer name; empty: "_bridge.TOPIC"
  StartFrom from = StartFrom::earliest();  // where a bridge with nothing in Kafka starts
  KeyMode key = KeyMode::kNone;
  int32_t partition = 0;           // kNone: the target partition
  std::vector<Property> properties;  // -X
  bool exit_at_end = false;        // return once every record that existed at start is delivered
  std::string data_dir;            // where to find the store (as for tail --data-dir)
  // How long to wait for the brokers at start (metadata) before failing.
  std::chrono::milliseconds connect_timeout{10000};
};

// Runs until stop() (or, with exit_at_end, the end), then flushes what is in flight.
// Errors: kInvalidArgument (names, properties, partition out of range), kNotFound (stream
// or topic), kIo (brokers unreachable at start).  After a good start, delivery failures
// and outages restart the producer session (position recovered from Kafka again) and
// never end the run.
Result<BridgeCounters> run_bridge_out(const OutOptions& opts, const StopFn& stop);

// The highest shmbus.seq of stream NS/STREAM in each partition of `partitions` of
// `topic` (nullopt: none), found by reading the partitions' tails backwards in windows.
// Used by run_bridge_out on start; public for tests and tools.  kIo when it takes longer
// than `timeout` in all; kClosed when `stop` (may be empty) asks to stop.
Result<std::vector<std::optional<uint64_t>>> highest_seqs(
    const std::string& brokers, const std::vector<Property>& props, const std::string& topic,
    const std::vector<int32_t>& partitions, const std::string& stream_id,
    std::chrono::milliseconds timeout, const StopFn& stop = {});

// ---- bridge in: topic -> stream, at least once -------------------------------------

struct InOptions {
  std::string ns, stream;
  std::string brokers;
  std::string topic;               // must exist; all partitions
  std::string group;               // empty: "shmbus.STREAM"
  std::string from = "earliest";   // a new group's start: earliest | latest
  uint32_t type = 0;               // type of messages without a shmbus.type header
  bool sync = false;               // commit only once the records are durable
  std::vector<Property> properties;
  bool exit_at_end = false;        // return at the end of every partition
  // Offsets are committed at least this often (the bound of duplicates after a crash).
  std::chrono::milliseconds commit_interval{200};
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::nanoseconds sync_timeout = std::chrono::seconds(30);
};

Result<BridgeCounters> run_bridge_in(const InOptions& opts, const StopFn& stop);

// ---- status, for `stat` ---------------------------------------------------------------

// A running bridge's state, published by the bridge process about twice a second in a
// file of its own (/dev/shm/shmbus-bridge.NS.STREAM.PID, 0600, written whole and renamed
// into place; removed at a clean exit).  Read back validated: a file that does not parse,
// is not ours, or names another stream is ignored.
struct BridgeStatus {
  std::string direction;  // "out" or "in"
  std::string name;       // out: the consumer name; in: the Kafka consumer group
  std::string topic;
  std::string brokers;
  uint32_t pid = 0;
  bool alive = false;     // the process is still running
  uint64_t updated_ns = 0;
  BridgeCounters counters;
};

// The bridges of NS/STREAM, live ones first.
std::vector<BridgeStatus> read_bridge_status(std::string_view ns, std::string_view stream);

}  // namespace shmbus::kafka
