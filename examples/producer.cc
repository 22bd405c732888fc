// examples/producer.cc: creates stream STREAM in namespace NS (if it does not exist) and
// publishes COUNT records "record 0", "record 1", ...
//   example_producer NS STREAM COUNT
#include <cstdio>
#include <cstdlib>
#include <string>

#include "shmbus/shmbus.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: example_producer NS STREAM COUNT\n");
    return 2;
  }
  const char* ns = argv[1];
  const char* stream = argv[2];
  const long count = std::atol(argv[3]);

  shmbus::StreamOptions so;
  so.capacity = 1 << 20;
  so.exist_ok = true;
  if (auto r = shmbus::create_stream(ns, stream, so); !r) {
    std::fprintf(stderr, "example_producer: %s\n", r.error().message.c_str());
    return 1;
  }
  auto producer = shmbus::Producer::open(ns, stream);
  if (!producer) {
    std::fprintf(stderr, "example_producer: %s\n", producer.error().message.c_str());
    return 1;
  }
  for (long i = 0; i < count; ++i) {
    const std::string text = "record " + std::to_string(i);
    // Text as a std::string_view; (text.data(), text.size()) would do the same.
    shmbus::PubResult r = producer->publish(std::string_view(text), /*type=*/1);
    if (!r.ok()) {
      std::fprintf(stderr, "example_producer: publish failed (status %d)\n", static_cast<int>(r.status));
      return 1;
    }
  }
  std::printf("published %ld\n", count);
  return 0;
}
