// Names, sizes, and every way a shared-memory object can be wrong.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <thread>

#include "layout.h"
#include "../common/process.h"
#include "../common/scratch.h"

namespace shmbus {
namespace {

TEST(Names, Validation) {
  for (const char* good : {"a", "ticks", "A-b_c.9", "x.y"}) EXPECT_TRUE(validate_name("stream", good)) << good;
  for (const char* bad : {"", ".", "..", "a/b", "../x", "a b", "é", "a\n"})
    EXPECT_FALSE(validate_name("stream", bad)) << bad;
  EXPECT_TRUE(validate_name("stream", std::string(100, 'a')));
  EXPECT_FALSE(validate_name("stream", std::string(101, 'a')));
  auto r = create_stream("default", "a/b", StreamOptions{});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  EXPECT_NE(r.error().message.find("a/b"), std::string::npos);
}

TEST(Names, NamespaceResolution) {
  unsetenv("SHMBUS_NAMESPACE");
  EXPECT_EQ(resolve_namespace(), "default");
  setenv("SHMBUS_NAMESPACE", "envns", 1);
  EXPECT_EQ(resolve_namespace(), "envns");
  EXPECT_EQ(resolve_namespace("flag"), "flag");
  unsetenv("SHMBUS_NAMESPACE");
  EXPECT_EQ(object_name("n", "s"), "shmbus.n.s");
}

TEST(Parse, SizesDurationsStarts) {
  EXPECT_EQ(parse_size("4096").value(), 4096u);
  EXPECT_EQ(parse_size("64K").value(), 65536u);
  EXPECT_EQ(parse_size("16M").value(), 16u << 20);
  EXPECT_EQ(parse_size("1G").value(), 1u << 30);
  EXPECT_EQ(parse_size("2MiB").value(), 2u << 20);
  for (const char* bad : {"", "K", "12Q", "-1", "1.5M", "99999999999999999999"}) EXPECT_FALSE(parse_size(bad)) << bad;
  EXPECT_EQ(parse_duration("500ms").value(), std::chrono::milliseconds(500));
  EXPECT_EQ(parse_duration("2").value(), std::chrono::seconds(2));
  EXPECT_EQ(parse_duration("1h").value(), std::chrono::hours(1));
  EXPECT_FALSE(parse_duration("soon"));
  EXPECT_EQ(parse_start("earliest").value().kind, StartFrom::Kind::kEarliest);
  EXPECT_EQ(parse_start("42").value().value, 42u);
  EXPECT_EQ(parse_start("@1000ns").value().value, 1000u);
  EXPECT_EQ(parse_start("@1000").value().value, 1000000000000u);  // a bare number: seconds by size
  EXPECT_EQ(parse_start("@1970-01-01T00:00:01Z").value().value, 1000000000u);
  EXPECT_EQ(parse_start("@2026-11-25T13:00:00.5Z").value().value, 1795611600500000000u);
  EXPECT_FALSE(parse_start("yesterday"));
  // Keywords in any case mean the same (LATEST was refused while --format JSON was taken).
  EXPECT_EQ(parse_start("LATEST").value().kind, StartFrom::Kind::kLatest);
  EXPECT_EQ(parse_start("Earliest").value().kind, StartFrom::Kind::kEarliest);
  EXPECT_EQ(parse_start("@NOW").value().kind, StartFrom::Kind::kTime);
  EXPECT_EQ(parse_start("@Now-1s").value().kind, StartFrom::Kind::kTime);
  EXPECT_FALSE(parse_start("LATESTX"));
  EXPECT_FALSE(parse_start("@NOWS"));
  // Days the month does not have (timegm() moved them into the next month: a review).
  for (const char* bad : {"@2026-02-29", "@2026-02-30", "@2026-04-31", "@2100-02-29", "@2026-12-32"})
    EXPECT_FALSE(parse_start(bad)) << bad;
  for (const char* good : {"@2028-02-29", "@2000-02-29", "@2026-12-31", "@2026-01-31T23:59:59Z"})
    EXPECT_TRUE(parse_start(good)) << good;
}

TEST(Create, CapacityRulesAndMode) {
  test::ScopedNs ns;
  StreamOptions o;
  o.capacity = 3000;
  EXPECT_EQ(create_stream(ns.ns(), "s", o).error().code, Errc::kInvalidArgument);
  o.capacity = 2048;
  EXPECT_FALSE(create_stream(ns.ns(), "s", o));
  o.capacity = 4096;
  o.max_record = 4096;
  EXPECT_FALSE(create_stream(ns.ns(), "s", o));
  o.max_record = 0;
  ASSERT_TRUE(create_stream(ns.ns(), "s", o));
  struct stat st;
  ASSERT_EQ(stat(("/dev/shm/" + object_name(ns.ns(), "s")).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(create_stream(ns.ns(), "s", o).error().code, Errc::kExists);
  o.exist_ok = true;
  EXPECT_TRUE(create_stream(ns.ns(), "s", o));
  o.capacity = 8192;
  EXPECT_FALSE(create_stream(ns.ns(), "s", o));  // exists with another capacity
  StreamOptions g;
  g.capacity = 4096;
  g.mode = 0640;
  ASSERT_TRUE(create_stream(ns.ns(), "g", g));
  ASSERT_EQ(stat(("/dev/shm/" + object_name(ns.ns(), "g")).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

// A stream created persisted (StreamOptions::persist, as create over a store makes it): a
// watermark above its first record would hide its records, and one on a stream that is
// not persisted has no store to mean anything in; bad settings are refused before any
// object is made.  (A review: `deleted_below` 1000 over first_seq 10 hid the new record.)
TEST(Create, APersistedStartIsCheckedAndInTheHeader) {
  test::ScopedNs ns;
  StreamOptions o;
  o.capacity = 4096;
  o.first_seq = 10;
  o.deleted_below = 5;
  EXPECT_EQ(create_stream(ns.ns(), "s", o).error().code, Errc::kInvalidArgument);  // not persisted
  o.persist = PersistSettings{};
  EXPECT_EQ(create_stream(ns.ns(), "s", o).error().code, Errc::kInvalidArgument);  // no store_dir
  o.persist->store_dir = "/nowhere/ns/s";
  o.deleted_below = 11;
  EXPECT_EQ(create_stream(ns.ns(), "s", o).error().code, Errc::kInvalidArgument);  // above first_seq
  EXPECT_EQ(stream_info(ns.ns(), "s").error().code, Errc::kNotFound);
  o.deleted_below = 10;
  ASSERT_TRUE(create_stream(ns.ns(), "s", o));
  auto info = stream_info(ns.ns(), "s");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->first_seq, 10u);
  EXPECT_EQ(info->next_seq, 10u);
  EXPECT_EQ(info->durable_seq, 10u);
  EXPECT_EQ(info->deleted_below, 10u);
  ASSERT_TRUE(info->persist);
  EXPECT_EQ(info->persist->store_dir, "/nowhere/ns/s");
  ASSERT_EQ(info->consumers.size(), 1u);
  EXPECT_EQ(info->consumers[0].name, kPersisterGroupName);
  EXPECT_EQ(info->consumers[0].next_seq, 10u);
  EXPECT_FALSE(info->consumers[0].alive);
}

// A first sequence above 2^63 is refused: started near 2^64, the numbering would wrap,
// and every "at or after" comparison with it.  2^63 is taken and counts on.  (A store
// that continues above it: Persister.AStoreAbove2To63IsNotContinued.)
TEST(Create, AFirstSequenceAbove2To63IsRefused) {
  test::ScopedNs ns;
  StreamOptions o;
  o.capacity = 4096;
  o.first_seq = kMaxFirstSeq + 1;
  auto r = create_stream(ns.ns(), "s", o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  EXPECT_NE(r.error().message.find("2^63"), std::string::npos) << r.error().message;
  o.first_seq = ~uint64_t{0};
  EXPECT_EQ(create_stream(ns.ns(), "s", o).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(stream_info(ns.ns(), "s").error().code, Errc::kNotFound);
  o.first_seq = kMaxFirstSeq;
  ASSERT_TRUE(create_stream(ns.ns(), "s", o));
  auto p = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(p);
  ASSERT_TRUE(p->publish(as_bytes("x")).ok());
  auto info = stream_info(ns.ns(), "s");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->first_seq, kMaxFirstSeq);
  EXPECT_EQ(info->next_seq, kMaxFirstSeq + 1);
}

// With its standard descriptors closed, a process's ring is not opened on one of them:
// its reads and writes there would go to the ring (`shmbus tail S >&-` wrote its records
// over the header).  Every descriptor the library keeps for a stream lies above 2.
TEST(Create, TheRingIsNeverOnAStandardDescriptor) {
  test::ScopedNs ns;
  StreamOptions o;
  o.capacity = 4096;
  bool created = false, opened = false;
  unsigned taken = 0;
  test::StdioClosed closed;
  {
    created = create_stream(ns.ns(), "s", o).ok();
    auto p = Producer::open(ns.ns(), "s");
    auto c = Consumer::open(ns.ns(), "s", ConsumerOptions{});
    opened = p.ok() && c.ok();
    taken = test::StdioClosed::taken();
  }
  closed.restore();
  EXPECT_TRUE(created);
  EXPECT_TRUE(opened);
  EXPECT_EQ(taken, 0u) << "descriptors taken (bits of 0, 1, 2)";
}

// The object just created goes again when its descriptor cannot be moved off 0-2 (no
// descriptor left): not left behind empty, where `stat` said "truncated" and a new
// create "exists" (a review).  In a child: 0-2 closed, at most 3 descriptors.
TEST(Create, NoStreamIsLeftWhenItsDescriptorCannotMove) {
  test::ScopedNs ns;
  const std::string obj = "/dev/shm/" + object_name(ns.ns(), "s");
  const pid_t child = test::spawn([&] {
    for (int fd = 0; fd < 3; ++fd) ::close(fd);
    rlimit lim{3, 3};
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) return 10;
    StreamOptions o;
    o.capacity = 4096;
    auto r = create_stream(ns.ns(), "s", o);
    if (r.ok()) return 11;  // (it could not have kept a descriptor above 2)
    return 0;
  });
  ASSERT_EQ(test::reap(child, std::chrono::seconds(30)), 0);
  struct stat st;
  EXPECT_NE(::lstat(obj.c_str(), &st), 0) << obj << " was left behind";
  StreamOptions o;
  o.capacity = 4096;
  EXPECT_TRUE(create_stream(ns.ns(), "s", o).ok());
}

// In a private mount namespace with a 64 MiB /dev/shm (as in a default container), a
// 128 MiB stream fails at once with a message that says how to fix it.
TEST(Create, LargerThanDevShmFailsAtOnce) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t child = fork();
  if (child == 0) {
    close(fds[0]);
    std::string msg = "skip";
    if (unshare(CLONE_NEWNS) == 0 && mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
        mount("shmbus-test", "/dev/shm", "tmpfs", 0, "size=64m,mode=1777") == 0) {
      StreamOptions o;
      o.capacity = 128 << 20;
      auto r = create_stream("default", "toolarge", o);
      msg = r ? std::string("created") : std::string(errc_name(r.error().code)) + "|" + r.error().message;
    }
    (void)!write(fds[1], msg.data(), msg.size());
    _exit(0);
  }
  close(fds[1]);
  char buf[1024];
  ssize_t n = read(fds[0], buf, sizeof buf);
  waitpid(child, nullptr, 0);
  std::string msg(buf, n > 0 ? static_cast<size_t>(n) : 0);
  if (msg == "skip") GTEST_SKIP() << "no permission to mount a private tmpfs";
  EXPECT_EQ(msg.substr(0, msg.find('|')), "no space") << msg;
  EXPECT_NE(msg.find("/dev/shm has only 64.0 MiB free"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--capacity"), std::string::npos) << msg;
}

TEST(Create, RacingCreatorsEndWithOneStream) {
  for (int round = 0; round < 20; ++round) {
    test::ScopedNs ns;
    constexpr int kProcs = 4;
    pid_t kids[kProcs];
    for (int i = 0; i < kProcs; ++i) {
      kids[i] = fork();
      if (kids[i] == 0) {
        StreamOptions o;
        o.capacity = 1 << 16;
        o.exist_ok = (i % 2 == 0);
        auto r = create_stream(ns.ns(), "race", o);
        if (r) _exit(0);
        _exit(r.error().code == Errc::kExists && !o.exist_ok ? 2 : 1);
      }
    }
    int created_or_ok = 0;
    for (pid_t k : kids) {
      int st = 0;
      waitpid(k, &st, 0);
      ASSERT_TRUE(WIFEXITED(st));
      ASSERT_NE(WEXITSTATUS(st), 1) << "an exist-ok creator failed, or an unexpected error";
      created_or_ok += WEXITSTATUS(st) == 0;
    }
    EXPECT_GE(created_or_ok, 2);  // both exist-ok creators succeed
    auto p = Producer::open(ns.ns(), "race");
    EXPECT_TRUE(p) << p.error().message;
  }
}

// Writes `bytes` as the object behind stream "bad" and returns open()'s error.
Error open_error(const std::string& ns, const std::vector<unsigned char>& bytes) {
  const std::string path = "/dev/shm/" + object_name(ns, "bad");
  int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0600);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  close(fd);
  auto p = Producer::open(ns, "bad");
  EXPECT_FALSE(p);
  auto c = Consumer::open(ns, "bad");
  EXPECT_FALSE(c);
  auto i = stream_info(ns, "bad");
  EXPECT_FALSE(i);
  return p ? Error{Errc::kIo, "opened"} : p.error();
}

std::vector<unsigned char> valid_header_bytes(const std::string& ns) {
  StreamOptions o;
  o.capacity = 4096;
  EXPECT_TRUE(create_stream(ns, "bad", o));
  const std::string path = "/dev/shm/" + object_name(ns, "bad");
  std::vector<unsigned char> b(detail::kDataOff + 4096);
  int fd = ::open(path.c_str(), O_RDONLY);
  EXPECT_EQ(read(fd, b.data(), b.size()), static_cast<ssize_t>(b.size()));
  close(fd);
  EXPECT_TRUE(remove_stream(ns, "bad", true));
  return b;
}

TEST(Validate, TruncatedWrongMagicWrongVersionGarbage) {
  test::ScopedNs ns;
  auto good = valid_header_bytes(ns.ns());

  auto e = open_error(ns.ns(), std::vector<unsigned char>(good.begin(), good.begin() + 100));
  EXPECT_EQ(e.code, Errc::kTruncated) << e.message;
  EXPECT_NE(e.message.find("truncated"), std::string::npos);

  e = open_error(ns.ns(), std::vector<unsigned char>(good.begin(), good.begin() + 8192));
  EXPECT_EQ(e.code, Errc::kTruncated) << e.message;

  auto bad_magic = good;
  bad_magic[0] ^= 0xff;
  e = open_error(ns.ns(), bad_magic);
  EXPECT_EQ(e.code, Errc::kIncompatible);
  EXPECT_NE(e.message.find("not a shmbus stream"), std::string::npos) << e.message;

  auto other = good;  // a version this build does not read (the next one)
  other[8] = static_cast<unsigned char>(detail::kLayoutVersion + 1);
  e = open_error(ns.ns(), other);
  EXPECT_EQ(e.code, Errc::kIncompatible);
  EXPECT_NE(e.message.find("layout version " + std::to_string(detail::kLayoutVersion + 1)),
            std::string::npos)
      << e.message;

  auto bad_cap = good;
  bad_cap[16] = 0x11;  // capacity no longer a power of two
  e = open_error(ns.ns(), bad_cap);
  EXPECT_EQ(e.code, Errc::kCorrupt) << e.message;

  std::mt19937_64 rng(42);
  for (int i = 0; i < 20; ++i) {
    std::vector<unsigned char> junk(good.size());
    for (auto& c : junk) c = static_cast<unsigned char>(rng());
    e = open_error(ns.ns(), junk);
    EXPECT_EQ(e.code, Errc::kIncompatible) << e.message;
  }
  // The CLI's rm without --force refuses such a file with a hint; --force removes it.
  EXPECT_FALSE(remove_stream(ns.ns(), "bad", false));
  EXPECT_TRUE(remove_stream(ns.ns(), "bad", true));
}

TEST(Validate, NotFoundSaysHowToCreate) {
  auto p = Producer::open("nons", "nothere");
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, Errc::kNotFound);
  EXPECT_NE(p.error().message.find("shmbus create nothere"), std::string::npos) << p.error().message;
}

TEST(Validate, ReadOnlyTailingConsumer) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", StreamOptions{}));
  auto p = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(p->publish(test::as_bytes("x")).ok());
  ConsumerOptions o;
  o.read_only = true;
  o.start = StartFrom::earliest();
  auto c = Consumer::open(ns.ns(), "s", o);
  ASSERT_TRUE(c) << c.error().message;
  Record r;
  ASSERT_EQ(c->poll(&r, std::chrono::milliseconds(10)), ReadStatus::kOk);
  EXPECT_EQ(test::as_string(r.data), "x");
  EXPECT_EQ(c->poll(&r, std::chrono::milliseconds(3)), ReadStatus::kTimeout);
  o.group = "g";
  EXPECT_FALSE(Consumer::open(ns.ns(), "s", o));
}

// A walkthrough (2026-12-04): `tail --group _persister` (and Python's group="_persister")
// took the persister's group, committed its position, and the records it read were never
// stored.  The name is the persister's alone.
TEST(Validate, ThePersistersGroupNameIsReserved) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", StreamOptions{}));
  ConsumerOptions o;
  o.group = "_persister";
  auto c = Consumer::open(ns.ns(), "s", o);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Errc::kInvalidArgument);
  EXPECT_NE(c.error().message.find("reserved for the stream's persister"), std::string::npos)
      << c.error().message;
  o.persister = true;
  EXPECT_TRUE(Consumer::open(ns.ns(), "s", o));
}

}  // namespace
}  // namespace shmbus

namespace shmbus {
namespace {

// "shmbus.NS.STREAM" is ambiguous with dots: the header says whose object it is.
TEST(Validate, DottedNamesNeverShareAnObject) {
  test::ScopedNs outer;
  const std::string a = outer.ns(), ab = outer.ns() + ".b";
  StreamOptions o;
  o.capacity = 4096;
  ASSERT_TRUE(create_stream(a, "b.c", o));
  auto r = create_stream(ab, "c", o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kExists);
  auto p = Producer::open(ab, "c");
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message.find("belongs to stream 'b.c' in namespace '" + a + "'"),
            std::string::npos)
      << p.error().message;
  EXPECT_EQ(list_streams(a).value(), std::vector<std::string>{"b.c"});
  EXPECT_TRUE(list_streams(ab).value().empty());
}

TEST(Create, ExistOkChecksEveryParameter) {
  test::ScopedNs ns;
  StreamOptions o;
  o.capacity = 65536;
  o.max_record = 1024;
  ASSERT_TRUE(create_stream(ns.ns(), "s", o));
  o.exist_ok = true;
  EXPECT_TRUE(create_stream(ns.ns(), "s", o));
  o.max_record = 4096;
  EXPECT_FALSE(create_stream(ns.ns(), "s", o));
  o.max_record = 1024;
  o.mode = 0666;
  auto r = create_stream(ns.ns(), "s", o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("mode 0600"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace shmbus
