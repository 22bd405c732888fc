// recover.cc: highest_seqs(): where a restarted `bridge out` continues, read from Kafka.
//
// Each target partition is read backwards in windows of kWindow messages from its end
// (the first window is the tail: a logical offset), until a window holds a message of
// this stream (its shmbus.stream header);
// the highest shmbus.seq there is the partition's answer.  Messages of other producers in
// the same topic are passed over.  With acks=all the high watermark covers every message
// the brokers acknowledged.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "client.h"

namespace shmbus::kafka {
namespace {

constexpr int64_t kWindow = 2000;

struct TopicDeleter {
  void operator()(rd_kafka_topic_t* t) const noexcept { rd_kafka_topic_destroy(t); }
};

}  // namespace

Result<std::vector<std::optional<uint64_t>>> highest_seqs(
    const std::string& brokers, const std::vector<Property>& props, const std::string& topic,
    const std::vector<int32_t>& partitions, const std::string& stream_id,
    std::chrono::milliseconds timeout, const StopFn& stop) {
  // Producer-only -X properties only draw a warning from a consumer handle.
  // fetch.wait.max.ms: a fetch at a partition's end (an empty partition, or the tail
  // read up to the high watermark) is held by the broker this long before the end is
  // reported; the default (500 ms) was a fixed half second of every bridge start.
  auto conf = detail::make_conf(brokers, {{"enable.partition.eof", "true"}, {"fetch.wait.max.ms", "10"}}, props);
  if (!conf) return conf.error();
  auto rk = detail::make_client(RD_KAFKA_CONSUMER, std::move(conf.value()));
  if (!rk) return rk.error();
  // A window that starts below the log's start is an error, not a jump to the end.
  rd_kafka_topic_conf_t* tconf = rd_kafka_topic_conf_new();
  char err[256];
  rd_kafka_topic_conf_set(tconf, "auto.offset.reset", "error", err, sizeof err);
  std::unique_ptr<rd_kafka_topic_t, TopicDeleter> rkt(rd_kafka_topic_new(rk->get(), topic.c_str(), tconf));
  if (!rkt) return make_error(Errc::kIo, "topic '" + topic + "': " + rd_kafka_err2str(rd_kafka_last_error()));
  // Every wait below is bounded by this deadline and ends at a stop request
  // (rd_kafka_query_watermark_offsets is not used: it waits past its timeout while a
  // partition has no leader).
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto failure = [&](int32_t p, const std::string& why) {
    return make_error(Errc::kIo, "reading " + topic + "[" + std::to_string(p) +
                                     "] to find where to continue: " + why);
  };

  // The topic's leaders first: a partition started before the handle knows its leader
  // has its offset query retried only after 500 ms (librdkafka's fixed back-off), another
  // fixed half second of every start.  (The handle keeps what this request returns.)
  // Asked in slices of at most a second, so that a stop request is heard meanwhile.
  for (;;) {
    if (stop && stop()) return make_error(Errc::kClosed, "stopped");
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    auto md = detail::topic_partitions(rk->get(), brokers, topic,
                                       std::clamp(left, std::chrono::milliseconds(1), std::chrono::milliseconds(1000)));
    if (md) break;
    if (md.error().code != Errc::kIo || std::chrono::steady_clock::now() >= deadline) return md.error();
  }
  std::vector<std::optional<uint64_t>> out;
  for (int32_t p : partitions) {
    std::optional<uint64_t> best;
    // Windows from the end backwards: [start, end).  The first is the tail (a logical
    // offset: no offset query needed); each later one ends where the one before began.
    int64_t start = RD_KAFKA_OFFSET_TAIL(kWindow);
    int64_t end = INT64_MAX;
    for (;;) {
      if (rd_kafka_consume_start(rkt.get(), p, start) == -1)
        return failure(p, rd_kafka_err2str(rd_kafka_last_error()));
      int64_t first_seen = -1;
      bool below_start = false;
      Result<void> failed;
      for (bool done = false; !done;) {
        if (stop && stop()) {
          failed = make_error(Errc::kClosed, "stopped");
          break;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
          failed = failure(p, "no answer within " + std::to_string(timeout.count()) + " ms");
          break;
        }
        rd_kafka_message_t* m = rd_kafka_consume(rkt.get(), p, 200);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
          done = true;
        } else if (m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE || m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
          below_start = true;  // read this window again from the log's start
          done = true;
        } else if (m->err) {
          failed = failure(p, rd_kafka_message_errstr(m));
          done = true;
        } else if (m->offset >= end) {
          done = true;
        } else {
          if (first_seen < 0) first_seen = m->offset;
          if (m->offset == end - 1) done = true;
          auto sid = detail::header(m, kHeaderStream);
          if (sid && *sid == stream_id) {
            auto seq_text = detail::header(m, kHeaderSeq);
            auto seq = seq_text ? detail::parse_u64(*seq_text) : std::nullopt;
            if (seq)
              best = best ? std::max(*best, *seq) : *seq;
            else
              spdlog::warn("{}[{}] offset {}: a message of {} without a valid {} header: passed over", topic, p,
                           m->offset, stream_id, kHeaderSeq);
          }
        }
        rd_kafka_message_destroy(m);
      }
      rd_kafka_consume_stop(rkt.get(), p);
      if (!failed) return failed.error();
      if (below_start && start != RD_KAFKA_OFFSET_BEGINNING) {
        start = RD_KAFKA_OFFSET_BEGINNING;
        continue;
      }
      // Found; or nothing before this window (it started at the log's start or was empty).
      if (best || first_seen <= 0 || start == RD_KAFKA_OFFSET_BEGINNING) break;
      end = first_seen;
      start = std::max<int64_t>(0, end - kWindow);
    }
    out.push_back(best);
  }
  return out;
}

}  // namespace shmbus::kafka
