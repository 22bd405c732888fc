// in_commit.h: settling an offset commit of `bridge in` partition by partition.
//
// Kafka answers a commit per partition: some may be stored while others are refused (a
// partition whose coordinator request failed, an offset out of range).  Each stored one
// is settled: no longer pending, and its run in the state file (in_state.h) re-begins at
// the committed offset; a refused one stays pending for the next commit.  Treating a
// partial success as a failure left the stored partitions' bases behind their committed
// offsets, so a successor that resumed there could not recognise what had been published
// since: repeated after a crash.
#pragma once

#include <librdkafka/rdkafka.h>

#include <cstddef>
#include <cstdint>
#include <map>

#include "in_state.h"

namespace shmbus::kafka::detail {

// Settles the partitions that `answer` (a commit's per-partition result) reports stored at
// the offset `pending` holds for them: erased from `pending` and recorded in `state` (if
// any).  Returns how many partitions stay pending.
size_t settle_commit(const rd_kafka_topic_partition_list_t& answer, std::map<int32_t, int64_t>& pending,
                     InState* state);

// Commits `pending` (partition -> next offset of `topic`) and waits for Kafka's answer;
// settles what was stored (see settle_commit).  Returns the commit's error:
// RD_KAFKA_RESP_ERR_NO_ERROR when nothing is left pending.
rd_kafka_resp_err_t commit_pending(rd_kafka_t* rk, const char* topic, std::map<int32_t, int64_t>& pending,
                                   InState* state);

}  // namespace shmbus::kafka::detail
