// examples/consumer.cc: reads COUNT records of STREAM in namespace NS as the durable
// group "example" (from the earliest record), checks they are "record 0", "record 1", ...
// and prints the last one.
//   example_consumer NS STREAM COUNT
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "shmbus/shmbus.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: example_consumer NS STREAM COUNT\n");
    return 2;
  }
  const char* ns = argv[1];
  const char* stream = argv[2];
  const long count = std::atol(argv[3]);

  shmbus::ConsumerOptions co;
  co.group = "example";
  co.start = shmbus::StartFrom::earliest();
  auto consumer = shmbus::Consumer::open(ns, stream, co);
  if (!consumer) {
    std::fprintf(stderr, "example_consumer: %s\n", consumer.error().message.c_str());
    return 1;
  }
  shmbus::Record rec;
  std::string last;
  for (long i = 0; i < count;) {
    switch (consumer->poll(&rec, std::chrono::seconds(10))) {
      case shmbus::ReadStatus::kOk: {
        std::string_view text(reinterpret_cast<const char*>(rec.data.data()), rec.data.size());
        if (text != "record " + std::to_string(i)) {
          std::fprintf(stderr, "example_consumer: record %ld is '%.*s'\n", i,
                       static_cast<int>(text.size()), text.data());
          return 1;
        }
        last.assign(text);
        ++i;
        break;
      }
      case shmbus::ReadStatus::kTimeout:
        std::fprintf(stderr, "example_consumer: nothing for 10 s after %ld records\n", i);
        return 1;
      default:
        std::fprintf(stderr, "example_consumer: poll failed\n");
        return 1;
    }
  }
  consumer->commit();
  std::printf("received %ld, last: %s\n", count, last.c_str());
  return 0;
}
