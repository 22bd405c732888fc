// in_commit.cc: see in_commit.h.
#include "in_commit.h"

#include "client.h"

namespace shmbus::kafka::detail {

size_t settle_commit(const rd_kafka_topic_partition_list_t& answer, std::map<int32_t, int64_t>& pending,
                     InState* state) {
  for (int i = 0; i < answer.cnt; ++i) {
    const rd_kafka_topic_partition_t& p = answer.elems[i];
    if (p.err) continue;
    const auto it = pending.find(p.partition);
    if (it == pending.end() || it->second != p.offset) continue;
    if (state) state->committed(p.partition, p.offset);
    pending.erase(it);
  }
  return pending.size();
}

rd_kafka_resp_err_t commit_pending(rd_kafka_t* rk, const char* topic, std::map<int32_t, int64_t>& pending,
                                   InState* state) {
  if (pending.empty()) return RD_KAFKA_RESP_ERR_NO_ERROR;
  const PartitionList l(rd_kafka_topic_partition_list_new(static_cast<int>(pending.size())));
  for (const auto& [p, off] : pending) rd_kafka_topic_partition_list_add(l.get(), topic, p)->offset = off;
  // rd_kafka_commit() answers with one error for the whole commit; the per-partition
  // answer comes only through the callback of rd_kafka_commit_queue(), which with no
  // queue given waits for it and calls the callback in this thread before returning.
  struct Answer {
    std::map<int32_t, int64_t>* pending;
    InState* state;
    bool settled = false;
  } answer{&pending, state};
  const rd_kafka_resp_err_t e = rd_kafka_commit_queue(
      rk, l.get(), nullptr,
      [](rd_kafka_t*, rd_kafka_resp_err_t, rd_kafka_topic_partition_list_t* offsets, void* opaque) {
        auto* a = static_cast<Answer*>(opaque);
        if (!offsets) return;
        (void)settle_commit(*offsets, *a->pending, a->state);
        a->settled = true;
      },
      &answer);
  // _NO_OFFSET: nothing in the list needed committing (Kafka already holds those offsets).
  const bool whole = e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR__NO_OFFSET;
  if (whole && !answer.settled) {
    for (const auto& [p, off] : pending)
      if (state) state->committed(p, off);
    pending.clear();
  }
  if (pending.empty()) return RD_KAFKA_RESP_ERR_NO_ERROR;
  return whole ? RD_KAFKA_RESP_ERR__FAIL : e;  // (stored but not as asked: kept pending)
}

}  // namespace shmbus::kafka::detail
