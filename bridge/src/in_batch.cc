// in_batch.cc: see in_batch.h.
#include "in_batch.h"

namespace shmbus::kafka::detail {

size_t Batches::take(MessageSource& source, rd_kafka_message_t** out, size_t cap, int wait_ms) {
  // revoked_in_batch_ is empty here: revoked() fills it only inside the batch call, and
  // it is emptied right after.
  in_batch_ = true;
  const ssize_t got = source.take_fetched(out, cap);
  in_batch_ = false;
  // Taken at once: the set concerns this call's messages only.
  taken_revoked_.swap(revoked_in_batch_);
  revoked_in_batch_.clear();
  if (got > 0) return static_cast<size_t>(got);
  rd_kafka_message_t* m = source.wait_one(wait_ms);
  taken_revoked_.clear();  // a message waited for was fetched for the assignment in force
  if (!m) return 0;
  out[0] = m;
  return 1;
}

}  // namespace shmbus::kafka::detail
