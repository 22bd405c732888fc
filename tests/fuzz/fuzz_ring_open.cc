// fuzz_ring_open: a stream's shared-memory object made of arbitrary bytes, opened through
// the public API as a producer and as consumers, then one publish and one poll each.
//
// Input: byte 0 chooses options (see Options below); the remaining bytes are the first
// bytes of the object (header, registry slots, then the ring), the rest is zero.  The
// object is created fresh in a namespace of this process for every input and removed
// after it.  Its size follows the header's capacity when that is a power of two from
// 4 KiB to kMaxRing (else a 4 KiB ring), plus a guard area as large as the ring:
//   - the guard is filled with a canary that must be intact afterwards (no write past
//     the ring through any mapping);
//   - once a handle is open, the guard pages of every mapping of the object are made
//     PROT_NONE, so a read or write past the ring faults at once (ASan cannot see into
//     a shared mapping).
// Every call must return within its deadline (polls and full timeout: 100 us, or 1 ms
// when the option byte asks for futex sleeps) plus kSlack, or the input is reported as
// a hang; libFuzzer's -timeout catches loops that never return.  The identity fields (namespace and stream name) are overwritten with
// this process's names, or nothing would ever open, and a non-zero layout version is
// replaced by this build's (see ShmObject::create).  A header whose version is still 0
// with a zero or valid magic means "creator still initialising": open() waits 2 s for it
// by design, so such inputs are skipped.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "layout.h"
#include "shmbus/shmbus.h"

namespace {

using namespace shmbus;
using shmbus::detail::StreamHeader;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kMaxRing = 64 * 1024;
constexpr uint8_t kCanary = 0xA5;
// Deadlines of polls and of a full ring's wait: short, so that the fuzzer runs fast, and
// long enough with kBlock (option) to reach the futex sleep.
constexpr auto kShortDeadline = std::chrono::microseconds(100);
constexpr auto kDeadline = std::chrono::milliseconds(1);
// A call may take this much longer than its deadline (a loaded 2-core machine, ASan).
constexpr auto kSlack = std::chrono::milliseconds(1500);

// Byte 0 of the input.
struct Options {
  StartFrom start;
  WaitStrategy wait;
  FullPolicy full;
  bool read_only_tail;
  bool batch;
  uint32_t payload;  // bytes of the record published
  std::chrono::nanoseconds deadline;
};

Options decode_options(uint8_t b) {
  static const StartFrom kStarts[4] = {StartFrom{}, StartFrom::earliest(), StartFrom::latest(),
                                       StartFrom::seq(1)};
  static const WaitStrategy kWaits[4] = {WaitStrategy::kBusySpin, WaitStrategy::kSpinYield,
                                         WaitStrategy::kBlock, WaitStrategy::kBlock};
  Options o;
  o.start = kStarts[b & 3];
  o.wait = kWaits[(b >> 2) & 3];
  o.full = (b & 16) ? FullPolicy::kWait : FullPolicy::kFail;
  o.read_only_tail = (b & 32) != 0;
  o.batch = (b & 64) != 0;
  o.payload = (b & 128) ? 200 : 8;
  o.deadline = ((b >> 2) & 3) == 3 ? std::chrono::nanoseconds(kDeadline)
                                   : std::chrono::nanoseconds(kShortDeadline);
  return o;
}

const std::string& ns() {
  static const std::string n = "fuzz" + std::to_string(getpid());
  return n;
}
constexpr const char* kStream = "ring";

[[noreturn]] void die(const char* what, Clock::duration took) {
  std::fprintf(stderr, "fuzz_ring_open: %s took %lld ms (deadline at most %lld ms, + slack)\n", what,
               static_cast<long long>(
                   std::chrono::duration_cast<std::chrono::milliseconds>(took).count()),
               static_cast<long long>(kDeadline.count()));
  std::abort();
}

// Runs f and aborts if it took longer than `bound`.
template <class F>
auto timed(const char* what, Clock::duration bound, F&& f) {
  const auto t0 = Clock::now();
  auto r = f();
  const auto took = Clock::now() - t0;
  if (took > bound) die(what, took);
  return r;
}

// Makes [guard_off, guard_off + guard_len) of every mapping of the object PROT_NONE.
void protect_guards(const std::string& path, uint64_t guard_off, uint64_t guard_len) {
  FILE* f = std::fopen("/proc/self/maps", "re");
  if (!f) return;
  char line[4096];
  while (std::fgets(line, sizeof line, f)) {
    if (!std::strstr(line, path.c_str())) continue;  // most lines: skip the parse
    unsigned long start, end, off;
    char perms[8];
    int name_at = 0;
    if (std::sscanf(line, "%lx-%lx %7s %lx %*s %*s %n", &start, &end, perms, &off, &name_at) < 4 ||
        name_at == 0)
      continue;
    std::string name(line + name_at);
    while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
    if (name != path) continue;
    // File range [off, off + len) is at [start, end).
    const uint64_t lo = std::max<uint64_t>(guard_off, off);
    const uint64_t hi = std::min<uint64_t>(guard_off + guard_len, off + (end - start));
    if (lo < hi) (void)mprotect(reinterpret_cast<void*>(start + (lo - off)), hi - lo, PROT_NONE);
  }
  std::fclose(f);
}

struct ShmObject {
  std::string name, path;
  uint64_t ring = 0, guard_off = 0, size = 0;
  int fd = -1;

  bool create(const uint8_t* data, size_t n) {
    name = "/" + object_name(ns(), kStream);
    path = "/dev/shm" + name;
    // Ring size from the header's capacity (offset 16) when plausible and small.
    uint64_t cap = 0;
    if (n >= 24) std::memcpy(&cap, data + 16, sizeof cap);
    ring = (cap >= 4096 && cap <= kMaxRing && (cap & (cap - 1)) == 0) ? cap : 4096;
    guard_off = detail::kDataOff + ring;
    size = guard_off + ring;
    shm_unlink(name.c_str());  // a previous input that crashed left it
    fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, static_cast<off_t>(size)) != 0) return false;
    std::vector<uint8_t> bytes(size, 0);
    std::memcpy(bytes.data(), data, std::min<size_t>(n, guard_off));
    std::memset(bytes.data() + guard_off, kCanary, ring);
    auto* h = reinterpret_cast<StreamHeader*>(bytes.data());
    // Any finished header claims this build's layout version: a mismatch is one compare,
    // and this way seeds and reproducers stay meaningful across layout version bumps.
    if (h->version.load(std::memory_order_relaxed) != 0)
      h->version.store(detail::kLayoutVersion, std::memory_order_relaxed);
    h->ns_len = static_cast<uint32_t>(ns().size());
    h->stream_len = static_cast<uint32_t>(std::strlen(kStream));
    std::memset(h->ns, 0, sizeof h->ns);
    std::memset(h->stream, 0, sizeof h->stream);
    std::memcpy(h->ns, ns().data(), ns().size());
    std::memcpy(h->stream, kStream, std::strlen(kStream));
    return pwrite(fd, bytes.data(), bytes.size(), 0) == static_cast<ssize_t>(bytes.size());
  }

  void check_canary() const {
    std::vector<uint8_t> g(ring);
    if (pread(fd, g.data(), g.size(), static_cast<off_t>(guard_off)) != static_cast<ssize_t>(g.size()))
      return;
    for (size_t i = 0; i < g.size(); ++i) {
      if (g[i] != kCanary) {
        std::fprintf(stderr, "fuzz_ring_open: a write landed %zu bytes past the end of the ring\n", i);
        std::abort();
      }
    }
  }

  ~ShmObject() {
    if (fd >= 0) close(fd);
    shm_unlink(name.c_str());
  }
};

}  // namespace

// A run that crashed or hung left its object behind: remove those of dead fuzz processes.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (DIR* d = opendir("/dev/shm")) {
    while (dirent* e = readdir(d)) {
      unsigned pid = 0;
      char rest[16] = {};
      if (std::sscanf(e->d_name, "shmbus.fuzz%u.%15s", &pid, rest) == 2 &&
          std::strcmp(rest, kStream) == 0 && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
        shm_unlink(("/" + std::string(e->d_name)).c_str());
    }
    closedir(d);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 + 16) return 0;
  const Options o = decode_options(data[0]);
  const uint8_t* obj = data + 1;
  const size_t n = size - 1;
  // The creator-still-initialising wait (2 s by design): see the top of the file.
  uint64_t magic = 0;
  uint32_t version = 0;
  std::memcpy(&magic, obj, sizeof magic);
  std::memcpy(&version, obj + 8, sizeof version);
  if (version == 0 && (magic == 0 || magic == detail::kMagic)) return 0;

  ShmObject shm;
  if (!shm.create(obj, n)) return 0;
  const auto bound = kDeadline + kSlack;

  // What `stat` reads: every slot, the persistence settings.
  (void)timed("stream_info", bound, [] { return stream_info(ns(), kStream).ok(); });
  {
    auto c = StreamControl::open(ns(), kStream, /*read_only=*/true);
    if (c) (void)c->persist();
  }

  ProducerOptions po;
  po.wait = o.wait;
  po.when_full = o.full;
  po.full_timeout = o.deadline;
  auto prod = timed("Producer::open", bound, [&] { return Producer::open(ns(), kStream, po); });
  if (!prod) return 0;  // the header was refused: fine, that is validation at work

  ConsumerOptions dopts;
  dopts.group = "g";
  dopts.start = o.start;
  dopts.wait = o.wait;
  auto durable = timed("Consumer::open durable", bound,
                       [&] { return Consumer::open(ns(), kStream, dopts); });
  ConsumerOptions topts;
  topts.start = o.start.kind == StartFrom::Kind::kCommitted ? StartFrom::earliest() : o.start;
  topts.wait = o.wait;
  topts.read_only = o.read_only_tail;
  auto tailing = timed("Consumer::open tailing", bound,
                       [&] { return Consumer::open(ns(), kStream, topts); });
  protect_guards(shm.path, shm.guard_off, shm.ring);

  std::vector<std::byte> payload(o.payload, std::byte{0x5c});
  (void)timed("publish", bound, [&] {
    if (!o.batch) return prod->publish(Bytes(payload)).status;
    const Bytes two[2] = {Bytes(payload), Bytes(payload).first(1)};
    return prod->publish_batch(two).status;
  });

  Record rec;
  if (durable) {
    (void)timed("durable poll", bound, [&] { return durable->poll(&rec, o.deadline); });
    (void)timed("durable poll(0)", bound,
                [&] { return durable->poll(&rec, std::chrono::nanoseconds(0)); });
    durable->commit();
  }
  if (tailing) {
    (void)timed("tailing poll", bound, [&] { return tailing->poll(&rec, o.deadline); });
    (void)timed("tailing poll(0)", bound,
                [&] { return tailing->poll(&rec, std::chrono::nanoseconds(0)); });
  }
  if (durable) durable->close();
  if (tailing) tailing->close();
  prod->close();
  shm.check_canary();
  return 0;
}
