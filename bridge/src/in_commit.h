// in_commit.h: settling an offset commit of `bridge in` partition by partition.
//
// A commit may be stored for some partitions and refused for others (a partition whose
// leader moved, one that does not exist).  librdkafka 2.0 then answers with one error for
// every partition of the commit (the last partition's error, copied onto the others), so
// after a failed commit the bridge asks Kafka what it holds (rd_kafka_committed) and
// settles each partition stored at the offset asked: no longer pending, and its run in
// the state file (in_state.h) re-begins at the committed offset.  The others stay pending
// for the next commit.  Treating a partial success as a failure left the stored
// partitions' bases behind their committed offsets, so a successor that resumed there
// could not recognise what had been published since: repeated after a crash.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>

#include "in_state.h"

namespace shmbus::kafka::detail {

// Settles the partitions that `held` (offsets Kafka holds, err 0 where known) holds at the
// offset `pending` has for them: erased from `pending` and recorded in `state` (if any).
// Returns how many partitions stay pending.
size_t settle_commit(const rd_kafka_topic_partition_list_t& held, std::map<int32_t, int64_t>& pending,
                     InState* state);

// Commits `pending` (partition -> next offset of `topic`), waiting for the answer; when it
// fails, asks Kafka (for at most `ask_timeout`) which of them it stored anyway and settles
// those.  Returns the commit's error, RD_KAFKA_RESP_ERR_NO_ERROR when nothing is left
// pending.
rd_kafka_resp_err_t commit_pending(rd_kafka_t* rk, const char* topic, std::map<int32_t, int64_t>& pending,
                                   InState* state, std::chrono::milliseconds ask_timeout);

}  // namespace shmbus::kafka::detail
