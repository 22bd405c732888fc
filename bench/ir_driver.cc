// shmbus-ir-driver: publishes N records and polls them back in one thread, in rounds of
// `batch`, so that `valgrind --tool=callgrind` counts instructions per record
// repeatably on a loaded machine (wall clock does not).  Run it with two N and divide
// the difference in Ir by the difference in N: the set-up cost cancels.
//
//   shmbus-ir-driver N [durable|tailing] [size] [batch] [single|batched]
//
// `batched`: each round is one publish_batch() of `batch` records, read back with
// poll_batch() (up to 64 a call); `single` (the default): publish() and poll() per record.
//
// Not a benchmark of latency or throughput (one thread, no cache-line transfers): it
// measures the work of the publish and poll paths, before against after a change.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <unistd.h>
#include <vector>

#include "shmbus/shmbus.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s N [durable|tailing] [size] [batch] [single|batched]\n", argv[0]);
    return 2;
  }
  const uint64_t n = std::strtoull(argv[1], nullptr, 10);
  const bool tailing = argc > 2 && std::strcmp(argv[2], "tailing") == 0;
  const size_t size = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 64;
  const uint64_t batch = argc > 4 ? std::strtoull(argv[4], nullptr, 10) : 16;
  const bool batched = argc > 5 && std::strcmp(argv[5], "batched") == 0;
  if (n == 0 || batch == 0 || batch > 4096 || size > 4096 ||
      (batched && batch * (size + 32) > (1 << 19)) ||
      (argc > 5 && !batched && std::strcmp(argv[5], "single") != 0)) {
    std::fprintf(stderr, "%s: N and batch (at most 4096) must be positive, size at most 4096, "
                 "a batch at most half the 1 MiB ring, the mode single or batched\n", argv[0]);
    return 2;
  }
  const std::string ns = "irdrv" + std::to_string(getpid());
  shmbus::StreamOptions so;
  so.capacity = 1 << 20;
  if (auto r = shmbus::create_stream(ns, "s", so); !r) {
    std::fprintf(stderr, "create: %s\n", r.error().message.c_str());
    return 1;
  }
  int rc = 0;
  {
    shmbus::ProducerOptions po;
    po.wait = shmbus::WaitStrategy::kBusySpin;
    auto p = shmbus::Producer::open(ns, "s", po);
    shmbus::ConsumerOptions co;
    co.group = tailing ? "" : "ir";
    co.start = shmbus::StartFrom::earliest();
    co.wait = shmbus::WaitStrategy::kBusySpin;
    auto c = shmbus::Consumer::open(ns, "s", co);
    if (!p || !c) {
      std::fprintf(stderr, "open failed\n");
      rc = 1;
    } else {
      std::vector<std::byte> payload(size, std::byte{0x5a});
      uint64_t sum = 0;
      std::vector<shmbus::Bytes> views(batch, shmbus::Bytes(payload.data(), payload.size()));
      shmbus::Record recs[64];
      for (uint64_t done = 0; done < n && rc == 0; done += batch) {
        if (batched) {
          if (!p.value().publish_batch(std::span(views.data(), batch)).ok()) rc = 1;
          for (uint64_t got = 0, k = 0; got < batch && rc == 0; got += k) {
            if (c.value().poll_batch(recs, 64, &k, std::chrono::seconds(1)) != shmbus::ReadStatus::kOk) rc = 1;
            for (uint64_t i = 0; i < k; ++i) sum += recs[i].seq;
          }
          continue;
        }
        for (uint64_t i = 0; i < batch; ++i)
          if (!p.value().publish(shmbus::Bytes(payload.data(), payload.size())).ok()) rc = 1;
        for (uint64_t i = 0; i < batch; ++i) {
          shmbus::Record r;
          if (c.value().poll(&r, std::chrono::seconds(1)) != shmbus::ReadStatus::kOk) rc = 1;
          sum += r.seq;
        }
      }
      std::printf("%llu records, checksum %llu, %s\n", static_cast<unsigned long long>(n),
                  static_cast<unsigned long long>(sum), rc ? "FAILED" : "ok");
    }
  }
  (void)shmbus::remove_stream(ns, "s", true);
  return rc;
}
