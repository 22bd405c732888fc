// A writer that forges the header, shrinks the object or holds the registry lock can
// make others fail with a clear error, never crash or hang them (issue 9 defect 6,
// issue 14 point 4).  Attacks that could hang or crash run in a child with an alarm.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cstring>
#include <thread>

#include "layout.h"
#include "shmbus/detail/stream_control.h"
#include "mapping.h"
#include "mp_util.h"
#include "../common/scratch.h"

namespace shmbus {
namespace {

using namespace std::chrono_literals;
using test::as_bytes;

constexpr uint64_t kCap = 1 << 16;

StreamOptions opts() {
  StreamOptions o;
  o.capacity = kCap;
  o.abandon_timeout = 50ms;
  return o;
}

// The header of stream s, mapped writable as an attacker with write access would.
struct Attacker {
  int fd = -1;
  detail::StreamHeader* h = nullptr;
  explicit Attacker(const std::string& ns, const std::string& s = "s") {
    fd = ::open(("/dev/shm/" + object_name(ns, s)).c_str(), O_RDWR);
    h = static_cast<detail::StreamHeader*>(
        mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  }
  ~Attacker() {
    munmap(h, 4096);
    ::close(fd);
  }
  void cursors(uint64_t floor, uint64_t head, uint64_t claim) {
    h->floor.pos = floor;
    h->head.pos = head;
    h->claim.pos = claim;
  }
};

// Runs fn in a child that must exit 0 within `secs` seconds (an alarm kills a hang).
int in_child(const std::function<int()>& fn, unsigned secs = 20) {
  pid_t pid = test::spawn([&] {
    alarm(secs);
    return fn();
  });
  return test::reap(pid);
}

TEST(Hostile, CursorsOffTheGridOrTooFarApartAreRefusedAtOpen) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", opts()));
  Attacker a(ns.ns());
  // 7 bytes before the end of the fourth lap: publish wrote past the mapping.
  a.cursors(4 * kCap - 7, 4 * kCap - 7, 4 * kCap - 7);
  EXPECT_EQ(in_child([&] {
              auto p = Producer::open(ns.ns(), "s");
              if (p) return p->publish(as_bytes("x")).ok() ? 1 : 2;
              return p.error().code == Errc::kCorrupt ? 0 : 3;
            }),
            0);
  // claim more than a ring ahead of floor: a poll looped for ever.
  a.cursors(0, 0, 3 * kCap);
  EXPECT_EQ(in_child([&] {
              auto c = Consumer::open(ns.ns(), "s");
              if (!c) return c.error().code == Errc::kCorrupt ? 0 : 3;
              Record r;
              (void)c->poll(&r, 0ns);
              return 1;
            }),
            0);
}

TEST(Hostile, CursorsForgedAfterOpenGiveCorruptNotACrashOrHang) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", opts()));
  EXPECT_EQ(in_child([&] {
              auto p = Producer::open(ns.ns(), "s");
              auto c = Consumer::open(ns.ns(), "s");
              if (!p || !c) return 9;
              Attacker a(ns.ns());
              a.cursors(0, 0, 3 * kCap);  // claim a ring and more ahead of floor
              Record r;
              if (c->poll(&r, 0ns) != ReadStatus::kCorrupt) return 1;
              if (c->poll(&r, 50ms) != ReadStatus::kCorrupt) return 2;
              // 4 bytes before the end: reserve wrote a pad tag across the end.
              a.cursors(kCap - 4, kCap - 4, kCap - 4);
              if (p->publish(as_bytes(std::string(100, 'x'))).status != PubStatus::kCorrupt) return 3;
              return 0;
            }),
            0);
}

// The same forged claim cursor under a durable consumer: it took the overrun for an
// eviction, rejoined at its own position (floor had not passed it) and looped for ever,
// even in poll(0) (a review; the child's alarm ended it with SIGALRM).
TEST(Hostile, ClaimForgedAheadOfADurableConsumerIsCorruptNotAHang) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", opts()));
  EXPECT_EQ(in_child([&] {
              ConsumerOptions co;
              co.group = "g";
              auto c = Consumer::open(ns.ns(), "s", co);
              if (!c) return 9;
              Attacker a(ns.ns());
              a.cursors(0, 0, 3 * kCap);
              Record r;
              if (c->poll(&r, 0ns) != ReadStatus::kCorrupt) return 1;
              if (c->poll(&r, 50ms) != ReadStatus::kCorrupt) return 2;
              return 0;
            }, 5),
            0);
}

TEST(Hostile, SparseObjectIsRefused) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", opts()));
  const std::string path = "/dev/shm/" + object_name(ns.ns(), "s");
  std::vector<char> hdr(detail::kDataOff);
  int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_EQ(read(fd, hdr.data(), hdr.size()), static_cast<ssize_t>(hdr.size()));
  ::close(fd);
  ASSERT_EQ(unlink(path.c_str()), 0);
  fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  ASSERT_EQ(ftruncate(fd, detail::kDataOff + kCap), 0);  // holes, no pages
  ASSERT_EQ(pwrite(fd, hdr.data(), hdr.size(), 0), static_cast<ssize_t>(hdr.size()));
  ::close(fd);
  auto c = Consumer::open(ns.ns(), "s");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Errc::kCorrupt);
  EXPECT_NE(c.error().message.find("sparse"), std::string::npos) << c.error().message;
}

TEST(Hostile, ShrunkenObjectIsAnErrorNotSigbus) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", opts()));
  EXPECT_EQ(in_child([&] {
              auto p = Producer::open(ns.ns(), "s");
              ConsumerOptions co;
              co.group = "g";
              auto d = Consumer::open(ns.ns(), "s", co);
              auto t = Consumer::open(ns.ns(), "s");
              if (!p || !d || !t) return 9;
              for (int i = 0; i < 10; ++i)
                if (!p->publish(as_bytes("before")).ok()) return 8;
              const std::string path = "/dev/shm/" + object_name(ns.ns(), "s");
              if (truncate(path.c_str(), 4096) != 0) return 7;
              bool pub_corrupt = false;
              for (int i = 0; i < 5000 && !pub_corrupt; ++i)
                pub_corrupt = p->publish(as_bytes("after")).status == PubStatus::kCorrupt;
              if (!pub_corrupt) return 1;
              Record r;
              ReadStatus s = ReadStatus::kOk;
              for (int i = 0; i < 100 && s == ReadStatus::kOk; ++i) s = d->poll(&r, 10ms);
              if (s != ReadStatus::kCorrupt) return 2;
              s = ReadStatus::kOk;
              for (int i = 0; i < 100 && s != ReadStatus::kCorrupt; ++i) s = t->poll(&r, 10ms);
              if (s != ReadStatus::kCorrupt) return 3;
              return 0;
            }),
            0);
}

// A record read in place from an object that shrinks meanwhile: the bytes read are the
// zeros the SIGBUS guard mapped, and validate() does not vouch for them.
TEST(Hostile, ARecordReadInPlaceFromAShrunkenObjectIsNotValid) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", opts()));
  EXPECT_EQ(in_child([&] {
              auto p = Producer::open(ns.ns(), "s");
              auto t = Consumer::open(ns.ns(), "s");
              if (!p || !t) return 9;
              if (!p->publish(as_bytes("before the shrink")).ok()) return 8;
              Record r;
              if (t->poll_in_place(&r, 0ms) != ReadStatus::kOk) return 7;
              const std::string path = "/dev/shm/" + object_name(ns.ns(), "s");
              if (truncate(path.c_str(), 4096) != 0) return 6;
              const std::string read = test::as_string(r.data);  // SIGBUS, answered with zeros
              if (read != std::string(read.size(), '\0')) return 5;
              if (t->validate()) return 1;
              if (t->poll_in_place(&r, 10ms) != ReadStatus::kCorrupt) return 2;
              return 0;
            }),
            0);
}

// The registry lock: a forged owner word (a live pid) hung every opener; a process that
// really holds the lock makes openers fail after a bounded wait, or at once on a signal.
TEST(Hostile, ForgedOrHeldRegistryLockNeverHangs) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", opts()));
  {
    Attacker a(ns.ns());
    a.h->registry_lock.store(uint64_t{1} << 32);  // "pid 1"
  }
  EXPECT_EQ(in_child([&] { return Producer::open(ns.ns(), "s") ? 0 : 1; }, 10), 0);

  // Hold the real lock (an OFD lock on the byte the header names) from this process.
  const std::string path = "/dev/shm/" + object_name(ns.ns(), "s");
  int fd = ::open(path.c_str(), O_RDWR);
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = offsetof(detail::StreamHeader, registry_lock);
  fl.l_len = 1;
  ASSERT_EQ(fcntl(fd, F_OFD_SETLK, &fl), 0);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(in_child([&] {
              auto p = Producer::open(ns.ns(), "s");
              return !p && p.error().code == Errc::kTimeout ? 0 : 1;
            }),
            0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  // A stop signal (a handler that sets the flag the library polls, as the CLI does)
  // ends the wait.
  test::Pipe ready;
  static volatile sig_atomic_t stop = 0;
  pid_t child = test::spawn([&] {
    struct sigaction sa {};
    sa.sa_handler = [](int) { stop = 1; };
    sigaction(SIGTERM, &sa, nullptr);
    set_stop_check([]() noexcept { return stop != 0; });
    char one = 1;
    ready.put(&one, 1);
    auto p = Producer::open(ns.ns(), "s");
    // 0: the signal ended the wait (not the registry-lock timeout, which also fails).
    return !p && p.error().message.find("interrupted") != std::string::npos ? 0 : 1;
  });
  char one;
  ASSERT_TRUE(ready.get(&one, 1));
  std::this_thread::sleep_for(100ms);
  kill(child, SIGTERM);
  // Judged by how the wait ended, not by the clock (a loaded machine may be slow to run
  // the child at all).
  EXPECT_EQ(test::reap(child), 0) << "the stop signal did not end the registry-lock wait";
  ::close(fd);
  EXPECT_TRUE(Producer::open(ns.ns(), "s"));
}

}  // namespace
}  // namespace shmbus

namespace shmbus {
namespace {

using namespace std::chrono_literals;

// Issue 14 point 7: every object that looked half-created (magic, no version) cost 2 s,
// so five crafted objects made `ls` (stream_info on each) take 10 s.  The waits share
// one bounded budget.
TEST(Hostile, HalfCreatedObjectsCostOneBoundedWaitInTotal) {
  test::ScopedNs ns;
  StreamOptions o;
  o.capacity = 4096;
  ASSERT_TRUE(create_stream(ns.ns(), "model", o));
  std::vector<char> hdr(detail::kDataOff + 4096);
  {
    const std::string path = "/dev/shm/" + object_name(ns.ns(), "model");
    int fd = ::open(path.c_str(), O_RDONLY);
    ASSERT_EQ(read(fd, hdr.data(), hdr.size()), static_cast<ssize_t>(hdr.size()));
    ::close(fd);
  }
  std::memset(hdr.data() + 8, 0, 4);  // version 0: "still being created"
  for (int i = 0; i < 5; ++i) {
    const std::string name = "half" + std::to_string(i);
    std::vector<char> h = hdr;
    detail::StreamHeader* sh = reinterpret_cast<detail::StreamHeader*>(h.data());
    sh->stream_len = static_cast<uint32_t>(name.size());
    std::memcpy(sh->stream, name.data(), name.size());
    int fd = ::open(("/dev/shm/" + object_name(ns.ns(), name)).c_str(), O_CREAT | O_RDWR, 0600);
    ASSERT_EQ(write(fd, h.data(), h.size()), static_cast<ssize_t>(h.size()));
    ::close(fd);
  }
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) {
    auto info = stream_info(ns.ns(), "half" + std::to_string(i));
    ASSERT_FALSE(info);
    EXPECT_EQ(info.error().code, Errc::kCorrupt) << info.error().message;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);
}

// A header whose owner names were damaged (a length byte flipped): a corrupt header that
// `rm --force` removes; it was blamed on dotted names meeting, and only rm by hand got rid
// of it (a review).  A real dotted twin ("a.b" + "c" is "a" + "b.c") stays refused.
TEST(Hostile, DamagedOwnerNamesAreCorruptAndRemovableAndATwinIsNot) {
  test::ScopedNs ns;
  StreamOptions o;
  o.capacity = 4096;
  ASSERT_TRUE(create_stream(ns.ns(), "zz", o));
  const std::string path = "/dev/shm/" + object_name(ns.ns(), "zz");
  {
    int fd = ::open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    const uint32_t one = 1;
    ASSERT_EQ(::pwrite(fd, &one, sizeof one, offsetof(detail::StreamHeader, stream_len)), 4);
    ::close(fd);
  }
  auto info = stream_info(ns.ns(), "zz");
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().code, Errc::kCorrupt) << info.error().message;
  EXPECT_EQ(info.error().message.find("dots"), std::string::npos) << info.error().message;
  EXPECT_TRUE(remove_stream(ns.ns(), "zz", /*force=*/true));
  EXPECT_NE(::access(path.c_str(), F_OK), 0);
  // The twin: namespace NS.x with stream "c" is the object of namespace NS, stream "x.c".
  ASSERT_TRUE(create_stream(ns.ns() + ".x", "c", o));
  auto twin = remove_stream(ns.ns(), "x.c", /*force=*/true);
  ASSERT_FALSE(twin);
  EXPECT_EQ(twin.error().code, Errc::kExists) << twin.error().message;
  EXPECT_TRUE(remove_stream(ns.ns() + ".x", "c", /*force=*/true));
}

// Issue 14 point 10: a tailing reader allocated max_record bytes (set by the object's
// creator, up to 2 GiB) at open; it allocates only what the records it reads need.
TEST(Hostile, TailingReaderBufferIsSizedByWhatItReads) {
  test::ScopedNs ns;
  StreamOptions o;
  o.capacity = 1 << 27;             // 128 MiB
  o.max_record = (1 << 26) - 32;    // 64 MiB records allowed
  ASSERT_TRUE(create_stream(ns.ns(), "big", o));
  auto rss = [] {  // anonymous resident memory (the ring's shared pages do not count)
    long kb = 0;
    FILE* f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
      if (std::sscanf(line, "RssAnon: %ld kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb * 1024L;
  };
  ConsumerOptions co;
  co.read_only = true;
  const long before = rss();
  auto c = Consumer::open(ns.ns(), "big", co);
  ASSERT_TRUE(c);
  EXPECT_LT(rss() - before, 16L << 20) << "the reader's buffer was sized by max_record";
  auto p = Producer::open(ns.ns(), "big");
  ASSERT_TRUE(p->publish(test::as_bytes("small")).ok());
  Record r;
  ASSERT_EQ(c->poll(&r, 1s), ReadStatus::kOk);
  EXPECT_EQ(test::as_string(r.data), "small");
}

// Positions forged just below 2^64, where position + capacity wraps: a reader looped
// for ever in resync() (tail > pos + capacity held again after each one), and the
// prefetch window's `at += 64` wrapped to 0 and looped ~2^58 times (found by a
// review).  Positions at or above 2^64 - 2^34 are refused now: at open, and by a
// reader that finds them later.
TEST(Hostile, PositionsForgedNearTheTopOfTheRangeAreRefusedNotAHang) {
  test::ScopedNs ns;
  auto forge = [&] {
    auto mr = StreamMapping::open(ns.ns(), "s", false);
    if (!mr) return false;
    StreamMapping& m = *mr.value();
    detail::StreamHeader* h = m.header();
    // One committed 32-byte record that ends 16 KiB + 32 bytes below 2^64 (the reader's
    // prefetch window on a 64 KiB ring is 16 KiB).
    const uint64_t end = 0 - uint64_t{32} - 16 * 1024, at = end - 64;
    detail::RecordHeader* rec = m.record_at(at);
    rec->seq = 100;
    std::memset(m.payload_at(at), 0xab, 32);
    rec->tag.store(detail::make_tag(m.salt(), m.lap_shift(), at, detail::kData, 32));
    h->floor = detail::PosSeq{at, 100};
    h->head = detail::PosSeq{at, 100};
    h->claim = detail::PosSeq{end, 101};
    return true;
  };
  // poll_batch() too (which refuses them as poll() does; its run over plain records at
  // high positions: Cursors.DurableBatchReaderAtEveryBaseAndJustBelowTheTopOfTheRange).
  for (const bool batch : {false, true}) {
    for (const char* group : {"", "g"}) {
      auto read = [&](Consumer& c, std::chrono::milliseconds timeout) {
        Record r[8];
        size_t n = 0;
        return batch ? c.poll_batch(r, 8, &n, timeout) : c.poll(&r[0], timeout);
      };
      (void)remove_stream(ns.ns(), "s", true);
      ASSERT_TRUE(create_stream(ns.ns(), "s", opts()));
      // Forged while the reader is open: it reads on, and finds out.
      EXPECT_EQ(in_child([&] {
                  ConsumerOptions co;
                  co.group = group;
                  co.start = StartFrom::earliest();
                  auto c = Consumer::open(ns.ns(), "s", co);
                  if (!c || !forge()) return 9;
                  ReadStatus st = ReadStatus::kOk;
                  for (int i = 0; i < 3 && st != ReadStatus::kCorrupt; ++i) st = read(*c, 50ms);
                  return st == ReadStatus::kCorrupt ? 0 : 1;
                }, 10),
                0)
          << "group '" << group << "'" << (batch ? ", poll_batch" : "");
      // Forged before the open: refused.
      EXPECT_EQ(in_child([&] {
                  ConsumerOptions co;
                  co.group = group;
                  co.start = StartFrom::earliest();
                  auto c = Consumer::open(ns.ns(), "s", co);
                  if (!c) return c.error().code == Errc::kCorrupt ? 0 : 2;
                  for (int i = 0; i < 3; ++i) (void)read(*c, 50ms);
                  return 1;
                }, 10),
                0)
          << "group '" << group << "'" << (batch ? ", poll_batch" : "");
    }
  }
}


// The store path in the header is read by readers that follow it to the store: a writer
// of the ring wrote a relative one, which a reader resolved against its own working
// directory (a review, stop 64), or one with a NUL, which system calls cut short.  Such a
// path names no store; a good one is read as written.
TEST(Hostile, AStorePathSetPersistWouldRefuseNamesNoStore) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", opts()));
  Attacker a(ns.ns());
  auto forge = [&](std::string_view path) {
    std::memset(a.h->store_dir, 0, sizeof a.h->store_dir);
    std::memcpy(a.h->store_dir, path.data(), path.size());
    a.h->store_dir_len = static_cast<uint32_t>(path.size());
    a.h->persist_enabled = 1;
  };
  const std::string good = "/var/tmp/data/" + ns.ns() + "/s";
  forge(good);
  ASSERT_TRUE(stream_info(ns.ns(), "s")->persist.has_value());
  EXPECT_EQ(stream_info(ns.ns(), "s")->persist->store_dir, good);
  forge("data/" + ns.ns() + "/s");
  ASSERT_TRUE(stream_info(ns.ns(), "s")->persist.has_value());
  EXPECT_EQ(stream_info(ns.ns(), "s")->persist->store_dir, "") << "a relative path was taken";
  forge(std::string("/var/tmp\0/x/", 12) + ns.ns() + "/s");
  ASSERT_TRUE(stream_info(ns.ns(), "s")->persist.has_value());
  EXPECT_EQ(stream_info(ns.ns(), "s")->persist->store_dir, "") << "a path with a NUL was taken";
  a.h->store_dir_len = 100000;  // past the field: cut to it, and then a NUL-padded tail
  ASSERT_TRUE(stream_info(ns.ns(), "s")->persist.has_value());
  EXPECT_EQ(stream_info(ns.ns(), "s")->persist->store_dir, "");
  auto ctl = StreamControl::open(ns.ns(), "s", /*read_only=*/true);
  ASSERT_TRUE(ctl);
  ASSERT_TRUE(ctl->persist().has_value());
  EXPECT_EQ(ctl->persist()->store_dir, "");
}

}  // namespace
}  // namespace shmbus
