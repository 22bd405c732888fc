// recover.cc: highest_seqs(): where a restarted `bridge out` continues, read from Kafka.
//
// Each target partition is read backwards in windows of kWindow messages from its high
// watermark, until a window holds a message of this stream (its shmbus.stream header);
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
    std::chrono::milliseconds timeout) {
  // Producer-only -X properties only draw a warning from a consumer handle.
  auto conf = detail::make_conf(brokers, {{"enable.partition.eof", "true"}}, props);
  if (!conf) return conf.error();
  auto rk = detail::make_client(RD_KAFKA_CONSUMER, std::move(conf.value()));
  if (!rk) return rk.error();
  std::unique_ptr<rd_kafka_topic_t, TopicDeleter> rkt(rd_kafka_topic_new(rk->get(), topic.c_str(), nullptr));
  if (!rkt) return make_error(Errc::kIo, "topic '" + topic + "': " + rd_kafka_err2str(rd_kafka_last_error()));
  const int tmo = static_cast<int>(timeout.count());

  std::vector<std::optional<uint64_t>> out;
  for (int32_t p : partitions) {
    int64_t low = 0, high = 0;
    auto e = rd_kafka_query_watermark_offsets(rk->get(), topic.c_str(), p, &low, &high, tmo);
    if (e)
      return make_error(Errc::kIo, "cannot read the offsets of " + topic + "[" + std::to_string(p) +
                                       "]: " + rd_kafka_err2str(e));
    std::optional<uint64_t> best;
    int64_t end = high;
    while (!best && end > low) {
      const int64_t start = std::max(low, end - kWindow);
      if (rd_kafka_consume_start(rkt.get(), p, start) == -1)
        return make_error(Errc::kIo, "cannot read " + topic + "[" + std::to_string(p) + "]: " +
                                         rd_kafka_err2str(rd_kafka_last_error()));
      bool done = false;
      Result<void> failed;
      while (!done) {
        rd_kafka_message_t* m = rd_kafka_consume(rkt.get(), p, tmo);
        if (!m) {
          failed = make_error(Errc::kIo, "reading " + topic + "[" + std::to_string(p) +
                                             "] to find where to continue: no answer within " +
                                             std::to_string(tmo) + " ms");
          break;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
          done = true;
        } else if (m->err) {
          failed = make_error(Errc::kIo, "reading " + topic + "[" + std::to_string(p) + "]: " +
                                             rd_kafka_message_errstr(m));
          done = true;
        } else {
          if (m->offset >= end - 1) done = true;
          if (m->offset < end) {
            auto sid = detail::header(m, kHeaderStream);
            if (sid && *sid == stream_id) {
              auto seq_text = detail::header(m, kHeaderSeq);
              auto seq = seq_text ? detail::parse_u64(*seq_text) : std::nullopt;
              if (seq)
                best = best ? std::max(*best, *seq) : *seq;
              else
                spdlog::warn("{}[{}] offset {}: a message of {} without a valid {} header: passed over",
                             topic, p, m->offset, stream_id, kHeaderSeq);
            }
          }
        }
        rd_kafka_message_destroy(m);
      }
      rd_kafka_consume_stop(rkt.get(), p);
      if (!failed) return failed.error();
      end = start;
    }
    out.push_back(best);
  }
  return out;
}

}  // namespace shmbus::kafka
