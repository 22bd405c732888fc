// fuzz_ring_open: a stream's shared-memory object made of arbitrary bytes, opened through
// the public API as a producer and as consumers, then one publish and one poll each.
//
// Input: byte 0 chooses options (see Options below); the remaining bytes are the first
// bytes of the object (header, registry slots, then the ring), the rest is zero.  One
// object in a namespace of this process serves every input: its bytes are rewritten
// (and its size set) per input, and it is removed at exit (creating and unlinking an
// object per input cost more than the rest of the run).  Its size follows the header's
// capacity when that is a power of two from 4 KiB to kMaxRing (else a 4 KiB ring), plus
// a guard area as large as the ring:
//   - the guard is filled with a canary that must be intact afterwards (no write past
//     the ring through any mapping);
//   - once a handle is open, the guard pages of every mapping of the object are made
//     PROT_NONE, so a read or write past the ring faults at once (ASan cannot see into
//     a shared mapping).
// Every call must return within its deadline (polls and full timeout: 20 us, or 200 us
// when the option byte asks for futex sleeps: long enough to pass the spin and yield
// phases on an idle core) plus kSlack, or the input is reported as a hang; libFuzzer's
// -timeout catches loops that never return.  The identity fields (namespace and stream name) are overwritten with
// this process's names, or nothing would ever open, and a non-zero layout version is
// replaced by this build's (see ShmObject::create).  A header whose version is still 0
// with a zero or valid magic means "creator still initialising": open() waits 2 s for it
// by design, so such inputs are skipped.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
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
#include "shmbus/detail/stream_control.h"

namespace {

using namespace shmbus;
using shmbus::detail::StreamHeader;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kMaxRing = 64 * 1024;
constexpr uint8_t kCanary = 0xA5;
// Deadlines of polls and of a full ring's wait: short, so that the fuzzer runs fast, and
// long enough with kBlock (option) to reach the futex sleep.
constexpr auto kShortDeadline = std::chrono::microseconds(20);
constexpr auto kDeadline = std::chrono::microseconds(200);
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
  std::fprintf(stderr, "fuzz_ring_open: %s took %lld us (deadline at most %lld us, + slack)\n", what,
               static_cast<long long>(
                   std::chrono::duration_cast<std::chrono::microseconds>(took).count()),
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

// PROCMAP_QUERY (Linux 6.11): the next file-backed mapping at or after an address, with
// its file's inode, one ioctl on /proc/self/maps each (the kernel's ABI; Debian 12's
// headers predate it).
struct ProcmapQuery {
  uint64_t size, query_flags, query_addr, vma_start, vma_end, vma_flags, vma_page_size,
      vma_offset, inode;
  uint32_t dev_major, dev_minor, vma_name_size, build_id_size;
  uint64_t vma_name_addr, build_id_addr;
};
constexpr unsigned long kProcmapQuery = _IOWR('f', 17, ProcmapQuery);
constexpr uint64_t kCoveringOrNextVma = 0x10, kFileBackedVma = 0x20;

// Makes the file range [guard_off, guard_off + guard_len) of mapping [start, end) at file
// offset `off` PROT_NONE.
void protect_range(uint64_t start, uint64_t end, uint64_t off, uint64_t guard_off,
                   uint64_t guard_len) {
  const uint64_t lo = std::max<uint64_t>(guard_off, off);
  const uint64_t hi = std::min<uint64_t>(guard_off + guard_len, off + (end - start));
  if (lo < hi) (void)mprotect(reinterpret_cast<void*>(start + (lo - off)), hi - lo, PROT_NONE);
}

// Makes [guard_off, guard_off + guard_len) of every mapping of the object (inode `ino`)
// PROT_NONE.  With PROCMAP_QUERY: one ioctl per file-backed mapping of this process
// (formatting all of /proc/self/maps as text per input cost a third of the run); else
// /proc/self/maps, read in one go.
void protect_guards(const std::string& path, uint64_t ino, dev_t dev, uint64_t guard_off,
                    uint64_t guard_len) {
  static const int maps_fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  static bool have_query = true;
  if (maps_fd < 0) return;
  if (have_query) {
    uint64_t addr = 0;
    for (int i = 0; i < 100000; ++i) {
      ProcmapQuery q{};
      q.size = sizeof q;
      q.query_flags = kCoveringOrNextVma | kFileBackedVma;
      q.query_addr = addr;
      if (ioctl(maps_fd, kProcmapQuery, &q) != 0) {
        if (errno == ENOENT) return;  // no more mappings
        have_query = false;           // an older kernel: parse the text below
        break;
      }
      if (q.inode == ino && q.dev_major == major(dev) && q.dev_minor == minor(dev))
        protect_range(q.vma_start, q.vma_end, q.vma_offset, guard_off, guard_len);
      addr = q.vma_end;
    }
    if (have_query) return;
  }
  static std::vector<char> buf(1 << 16);
  size_t n = 0;
  for (;;) {
    if (n + 4096 > buf.size()) buf.resize(buf.size() * 2);
    const ssize_t k = pread(maps_fd, buf.data() + n, buf.size() - n - 1, static_cast<off_t>(n));
    if (k <= 0) break;
    n += static_cast<size_t>(k);
  }
  buf[n] = 0;
  for (char* line = buf.data(); line < buf.data() + n;) {
    char* eol = std::strchr(line, '\n');
    if (!eol) eol = buf.data() + n;
    *eol = 0;
    // Most lines are not ours: find the path before parsing.
    if (const char* at = std::strstr(line, path.c_str()); at && std::strcmp(at, path.c_str()) == 0) {
      unsigned long start, end, off;
      char perms[8];
      if (std::sscanf(line, "%lx-%lx %7s %lx", &start, &end, perms, &off) == 4)
        protect_range(start, end, off, guard_off, guard_len);
    }
    line = eol + 1;
  }
}

// The stream object: created once per process and rewritten for every input.
struct ShmObject {
  std::string name, path;
  uint64_t ring = 0, guard_off = 0, size = 0, ino = 0;
  dev_t dev = 0;
  int fd = -1;
  std::vector<uint8_t> bytes;   // the object's contents for this input (kept: no
                                // allocation per input)
  std::vector<uint8_t> check;   // what check_canary() reads back

  bool open_once() {
    if (fd >= 0) return true;
    name = "/" + object_name(ns(), kStream);
    path = "/dev/shm" + name;
    shm_unlink(name.c_str());  // a previous process of ours (same pid) left it
    fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    struct stat st;
    if (fstat(fd, &st) != 0) return false;
    ino = st.st_ino;
    dev = st.st_dev;
    std::atexit([] { shm_unlink(("/" + object_name(ns(), kStream)).c_str()); });
    return true;
  }

  bool create(const uint8_t* data, size_t n) {
    if (!open_once()) return false;
    // Ring size from the header's capacity (offset 16) when plausible and small.
    uint64_t cap = 0;
    if (n >= 24) std::memcpy(&cap, data + 16, sizeof cap);
    ring = (cap >= 4096 && cap <= kMaxRing && (cap & (cap - 1)) == 0) ? cap : 4096;
    guard_off = detail::kDataOff + ring;
    const uint64_t new_size = guard_off + ring;
    // Every byte is rewritten below (pwrite allocates every page: never sparse).
    if (new_size != size && ftruncate(fd, static_cast<off_t>(new_size)) != 0) return false;
    size = new_size;
    bytes.assign(size, 0);
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

  void check_canary() {
    check.resize(ring);
    if (pread(fd, check.data(), ring, static_cast<off_t>(guard_off)) != static_cast<ssize_t>(ring))
      return;
    if (std::memcmp(check.data(), bytes.data() + guard_off, ring) == 0) return;
    for (size_t i = 0; i < ring; ++i) {
      if (check[i] != kCanary) {
        std::fprintf(stderr, "fuzz_ring_open: a write landed %zu bytes past the end of the ring\n", i);
        std::abort();
      }
    }
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

  static ShmObject shm;
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
  protect_guards(shm.path, shm.ino, shm.dev, shm.guard_off, shm.ring);

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
