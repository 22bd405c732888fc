// ring_util.h: stream and consumer options shared by the ring tests (test_ring.cc,
// test_groups.cc): a small ring with short timeouts, a tailing and a durable consumer.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "shmbus/shmbus.h"

namespace shmbus::test {

inline StreamOptions small(uint64_t cap = 4096, uint64_t max_rec = 0) {
  StreamOptions o;
  o.capacity = cap;
  o.max_record = max_rec;
  o.abandon_timeout = std::chrono::milliseconds(100);
  o.consumer_dead_timeout = std::chrono::milliseconds(200);
  return o;
}

inline ConsumerOptions tailing(StartFrom s = StartFrom::earliest()) {
  ConsumerOptions o;
  o.start = s;
  return o;
}
inline ConsumerOptions durable(const std::string& g) {
  ConsumerOptions o;
  o.group = g;
  return o;
}

}  // namespace shmbus::test
