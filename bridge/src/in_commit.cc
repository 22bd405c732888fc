// in_commit.cc: see in_commit.h.
#include "in_commit.h"

#include "client.h"

namespace shmbus::kafka::detail {
namespace {

PartitionList list_of(const char* topic, const std::map<int32_t, int64_t>& pending) {
  PartitionList l(rd_kafka_topic_partition_list_new(static_cast<int>(pending.size())));
  for (const auto& [p, off] : pending) rd_kafka_topic_partition_list_add(l.get(), topic, p)->offset = off;
  return l;
}

}  // namespace

size_t settle_commit(const rd_kafka_topic_partition_list_t& held, std::map<int32_t, int64_t>& pending,
                     InState* state) {
  for (int i = 0; i < held.cnt; ++i) {
    const rd_kafka_topic_partition_t& p = held.elems[i];
    if (p.err) continue;
    const auto it = pending.find(p.partition);
    if (it == pending.end() || it->second != p.offset) continue;
    if (state) state->committed(p.partition, p.offset);
    pending.erase(it);
  }
  return pending.size();
}

rd_kafka_resp_err_t commit_pending(rd_kafka_t* rk, const char* topic, std::map<int32_t, int64_t>& pending,
                                   InState* state, std::chrono::milliseconds ask_timeout) {
  if (pending.empty()) return RD_KAFKA_RESP_ERR_NO_ERROR;
  const rd_kafka_resp_err_t e = rd_kafka_commit(rk, list_of(topic, pending).get(), 0);
  // _NO_OFFSET: no entry of the list had an offset to commit (none here: all are >= 0).
  if (e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR__NO_OFFSET) {
    if (state)
      for (const auto& [p, off] : pending) state->committed(p, off);
    pending.clear();
    return RD_KAFKA_RESP_ERR_NO_ERROR;
  }
  // Refused, maybe only in part: what does Kafka hold now?  (Not answered: all stay.)
  const PartitionList held = list_of(topic, pending);
  if (rd_kafka_committed(rk, held.get(), static_cast<int>(ask_timeout.count())) == RD_KAFKA_RESP_ERR_NO_ERROR)
    (void)settle_commit(*held, pending, state);
  return pending.empty() ? RD_KAFKA_RESP_ERR_NO_ERROR : e;
}

}  // namespace shmbus::kafka::detail
