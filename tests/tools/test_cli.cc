// test_cli.cc: the `shmbus` command, run as a child process.  Each test uses its own
// namespace ("t<pid>-<n>") and removes its streams at the end.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../common/scratch.h"
#include "run_cli.h"
#include "shmbus/shmbus.h"

namespace shmbus::test {
namespace {

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// The raw value after "key": in a flat JSON text (first occurrence), "" if absent.
std::string json_raw(const std::string& json, const std::string& key) {
  const std::string k = "\"" + key + "\":";
  const size_t at = json.find(k);
  if (at == std::string::npos) return "";
  size_t i = at + k.size();
  if (json[i] == '"') {  // a string: up to the closing unescaped quote
    size_t j = i + 1;
    while (j < json.size() && json[j] != '"') j += json[j] == '\\' ? 2 : 1;
    return json.substr(i, j + 1 - i);
  }
  size_t j = i;
  int depth = 0;
  while (j < json.size() && (depth > 0 || (json[j] != ',' && json[j] != '}' && json[j] != ']'))) {
    if (json[j] == '[' || json[j] == '{') ++depth;
    if (json[j] == ']' || json[j] == '}') --depth;
    ++j;
  }
  return json.substr(i, j - i);
}

bool has_key(const std::string& json, const std::string& key) {
  return json.find("\"" + key + "\":") != std::string::npos;
}

// A failure is a non-zero exit and exactly one line "shmbus: ..." on stderr.
void expect_failure(const CliResult& r, const std::string& needle) {
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.exit_code, 0) << r.err;
  EXPECT_LT(r.exit_code, 128) << "killed by a signal: " << r.err;
  EXPECT_EQ(r.err.rfind("shmbus: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "stderr: " << r.err;
}

void expect_ok(const CliResult& r) {
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << "stderr: " << r.err;
}

class Cli : public ::testing::Test {
 protected:
  shmbus::test::ScopedNs scoped_ns_;  // streams removed at the end

  // Runs shmbus with `--namespace <this test's>` appended.
  CliResult cli(std::vector<std::string> args, const std::string& input = {}) {
    args.push_back("--namespace");
    args.push_back(ns_);
    return run_cli(args, input);
  }
  std::vector<std::string> with_ns(std::vector<std::string> args) {
    args.push_back("--namespace");
    args.push_back(ns_);
    return args;
  }
  void create(const std::string& stream, const std::string& capacity = "64K") {
    expect_ok(cli({"create", stream, "--capacity", capacity}));
  }
  // Publishes `lines` to `stream` while `shmbus persist` runs on it (store under `dir`)
  // until `durable` records are durable, then stops it: the stream stays persisted.
  void publish_persisted(const std::string& stream, const std::filesystem::path& dir,
                         const std::string& lines, uint64_t durable) {
    Background persister(with_ns({"persist", stream, "--data-dir", dir.string()}));
    ASSERT_TRUE(persister.wait_for(
        [](const std::string&, const std::string& e) { return e.find("persisting") != std::string::npos; }))
        << persister.err();
    expect_ok(cli({"pub", stream}, lines));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (stream_info(ns_, stream)->durable_seq < durable && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_EQ(stream_info(ns_, stream)->durable_seq, durable);
    CliResult r = persister.stop(SIGTERM);  // the stream stays persisted
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }

  const std::string ns_ = scoped_ns_.ns();
};

TEST_F(Cli, CreateLsStatJsonHaveTheirKeys) {
  create("s");
  expect_ok(cli({"pub", "s"}, "one\ntwo\n"));

  CliResult ls = cli({"ls", "--json"});
  expect_ok(ls);
  ASSERT_EQ(ls.out.front(), '[');
  for (const char* k : {"stream", "capacity", "next_seq", "oldest_seq", "producers", "consumers",
                        "max_lag"})
    EXPECT_TRUE(has_key(ls.out, k)) << k << " in " << ls.out;
  EXPECT_EQ(json_raw(ls.out, "stream"), "\"s\"");
  EXPECT_EQ(json_raw(ls.out, "capacity"), "65536");
  EXPECT_EQ(json_raw(ls.out, "next_seq"), "2");

  CliResult text = cli({"ls"});
  expect_ok(text);
  EXPECT_NE(text.out.find("STREAM"), std::string::npos);
  EXPECT_NE(text.out.find("64K"), std::string::npos);

  CliResult st = cli({"stat", "s", "--json", "--interval", "0"});
  expect_ok(st);
  for (const char* k : {"stream", "capacity", "next_seq", "oldest_seq", "producers", "consumers",
                        "lambda_records_per_s", "lambda_bytes_per_s", "interval_s", "abandoned",
                        "aborted", "producer_waits", "producer_full", "tail_lost", "evictions",
                        "max_record", "records_published", "bytes_published"})
    EXPECT_TRUE(has_key(st.out, k)) << k << " in " << st.out;
  EXPECT_EQ(json_raw(st.out, "records_published"), "2");
  EXPECT_EQ(json_raw(st.out, "bytes_published"), "6");
  EXPECT_EQ(json_raw(st.out, "lambda_records_per_s"), "null");  // --interval 0: no rates

  CliResult human = cli({"stat", "s", "--interval", "0"});
  expect_ok(human);
  EXPECT_NE(human.out.find("capacity"), std::string::npos);
}

// A pmem store's kind and granularity in `stat`: persist/'s names (those of
// Persister.stats()), in the JSON and the text.  On a non-DAX file the granularity is
// page: persisting is msync.
TEST_F(Cli, StatOfAPmemStoreNamesItsKindAndGranularityAsPersistDoes) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("shmbus-cli-pmem-" + ns_);
  std::filesystem::create_directories(dir);
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all);
  create("s", "64K");
  {
    Background persister(with_ns({"persist", "s", "--data-dir", dir.string(), "--store", "pmem"}));
    ASSERT_TRUE(persister.wait_for(
        [](const std::string&, const std::string& e) { return e.find("persisting") != std::string::npos; }))
        << persister.err();
    expect_ok(cli({"pub", "s"}, "x\n"));
    // The persister publishes its store statistics every 100 ms.
    std::string st;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    do {
      st = cli({"stat", "s", "--json"}).out;
      if (json_raw(st, "pmem_granularity") != "\"\"" && json_raw(st, "segments") != "0") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    } while (std::chrono::steady_clock::now() < deadline);
    EXPECT_EQ(json_raw(st, "store"), "\"pmem\"") << st;
    EXPECT_EQ(json_raw(st, "store_kind"), "\"pmem\"") << st;
    EXPECT_EQ(json_raw(st, "pmem_granularity"), "\"page\"") << st;  // was "page (msync)"
    CliResult human = cli({"stat", "s"});
    expect_ok(human);
    EXPECT_NE(human.out.find("persisted         pmem store at "), std::string::npos) << human.out;
    EXPECT_NE(human.out.find("store             pmem, "), std::string::npos) << human.out;
    EXPECT_NE(human.out.find(", pmem2 granularity page (msync); "), std::string::npos) << human.out;
    CliResult r = persister.stop(SIGTERM);
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  expect_ok(cli({"rm", "s", "--force", "--data", "--data-dir", dir.string()}));
  std::filesystem::remove_all(dir);
}

TEST_F(Cli, PubLinesThenTailPrintsThem) {
  create("s");
  expect_ok(cli({"pub", "s"}, "alpha\nbeta\n\ngamma"));  // an empty record; no final newline
  CliResult t = cli({"tail", "s"});
  expect_ok(t);
  EXPECT_EQ(t.out, "alpha\nbeta\n\ngamma\n");
  EXPECT_EQ(t.err, "");
}

TEST_F(Cli, TailJsonEscapesAndUsesBase64ForBinary) {
  create("s");
  expect_ok(cli({"pub", "s", "--type", "7"}, "plain\nq\"b\\s\tt\n\xff\xfe\x01\nh\xc3\xa9\n"));
  CliResult t = cli({"tail", "s", "--format", "json"});
  expect_ok(t);
  auto lines = lines_of(t.out);
  ASSERT_EQ(lines.size(), 4u) << t.out;
  EXPECT_EQ(json_raw(lines[0], "seq"), "0");
  EXPECT_EQ(json_raw(lines[0], "type"), "7");
  EXPECT_EQ(json_raw(lines[0], "size"), "5");
  EXPECT_TRUE(has_key(lines[0], "ts_ns"));
  EXPECT_EQ(json_raw(lines[0], "data"), "\"plain\"");
  EXPECT_EQ(json_raw(lines[1], "data"), R"("q\"b\\s\tt")");
  EXPECT_FALSE(has_key(lines[2], "data")) << lines[2];
  EXPECT_EQ(json_raw(lines[2], "data_base64"), "\"//4B\"");
  EXPECT_EQ(json_raw(lines[3], "data"), "\"h\xc3\xa9\"");
}

TEST_F(Cli, TailHexPrintsHeaderAndBytes) {
  create("s");
  expect_ok(cli({"pub", "s", "--type", "3"}, "AB\n\n"));
  CliResult t = cli({"tail", "s", "--format", "hex"});
  expect_ok(t);
  auto lines = lines_of(t.out);
  ASSERT_EQ(lines.size(), 2u) << t.out;
  std::istringstream l0(lines[0]);
  std::string seq, ts, type, size, hex;
  l0 >> seq >> ts >> type >> size >> hex;
  EXPECT_EQ(seq, "0");
  EXPECT_EQ(type, "3");
  EXPECT_EQ(size, "2");
  EXPECT_EQ(hex, "4142");
  EXPECT_NE(lines[1].find(" 0 -"), std::string::npos) << lines[1];
}

TEST_F(Cli, TailFromAndCount) {
  create("s");
  expect_ok(cli({"pub", "s"}, "a\nb\nc\nd\ne\n"));
  CliResult t = cli({"tail", "s", "--from", "2", "--count", "2"});
  expect_ok(t);
  EXPECT_EQ(t.out, "c\nd\n");
  CliResult latest = cli({"tail", "s", "--from", "latest"});
  expect_ok(latest);
  EXPECT_EQ(latest.out, "");
  // -f with --count stops by itself once it has printed enough.
  CliResult f = cli({"tail", "s", "-f", "--count", "3"});
  expect_ok(f);
  EXPECT_EQ(f.out, "a\nb\nc\n");
  expect_failure(cli({"tail", "s", "--from", "yesterday"}), "--from");
}

TEST_F(Cli, TailGroupContinuesAfterTheLastRecordPrinted) {
  create("s");
  expect_ok(cli({"pub", "s"}, "1\n2\n3\n"));
  CliResult first = cli({"tail", "s", "--group", "g"});
  expect_ok(first);
  EXPECT_EQ(first.out, "1\n2\n3\n");
  expect_ok(cli({"pub", "s"}, "4\n5\n"));
  CliResult second = cli({"tail", "s", "--group", "g"});
  expect_ok(second);
  EXPECT_EQ(second.out, "4\n5\n");
  CliResult third = cli({"tail", "s", "--group", "g"});
  expect_ok(third);
  EXPECT_EQ(third.out, "");
  // --count stops early: the next run resumes right after the last printed record.
  expect_ok(cli({"pub", "s"}, "6\n7\n8\n"));
  EXPECT_EQ(cli({"tail", "s", "--group", "g", "--count", "1"}).out, "6\n");
  EXPECT_EQ(cli({"tail", "s", "--group", "g"}).out, "7\n8\n");
  // --from is where a *new* group starts: an existing one continues (nothing left here);
  // rewinding it is explicit (--reset-to).  Another group starts at earliest.
  EXPECT_EQ(cli({"tail", "s", "--group", "g", "--from", "6"}).out, "");
  EXPECT_EQ(cli({"tail", "s", "--group", "g", "--reset-to", "6"}).out, "7\n8\n");
  EXPECT_EQ(cli({"tail", "s", "--group", "g"}).out, "");
  expect_failure(cli({"tail", "s", "--reset-to", "6"}), "--reset-to goes with --group");
  EXPECT_EQ(cli({"tail", "s", "--group", "other", "--count", "2"}).out, "1\n2\n");

  CliResult st = cli({"stat", "s", "--json", "--interval", "0"});
  expect_ok(st);
  EXPECT_NE(st.out.find("\"name\":\"g\""), std::string::npos) << st.out;
}

TEST_F(Cli, GroupHeldByALiveTailIsBusy) {
  create("s");
  expect_ok(cli({"pub", "s"}, "x\n"));
  Background bg(with_ns({"tail", "s", "-f", "--group", "g"}));
  ASSERT_TRUE(bg.wait_for([](const std::string& out, const std::string&) { return out == "x\n"; }))
      << bg.err();
  expect_failure(cli({"tail", "s", "--group", "g"}), "consumer group 'g' is held by pid ");
  CliResult r = bg.stop(SIGTERM);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(Cli, BadStreamNamesFail) {
  for (const std::string& name : std::vector<std::string>{"a/b", "..", "", std::string(101, 'x')}) {
    SCOPED_TRACE("name '" + name + "'");
    expect_failure(cli({"create", name, "--capacity", "64K"}), "stream name");
  }
  expect_failure(cli({"tail", "a/b"}), "stream name");
  expect_failure(run_cli({"ls", "--namespace", "x/y"}), "namespace name");
}

TEST_F(Cli, CreateTwiceFailsUnlessExistOk) {
  create("s");
  expect_failure(cli({"create", "s", "--capacity", "64K"}), "exists");
  expect_ok(cli({"create", "s", "--capacity", "64K", "--exist-ok"}));
  // --exist-ok still refuses a stream that does not match.
  expect_failure(cli({"create", "s", "--capacity", "128K", "--exist-ok"}), "capacity");
}

TEST_F(Cli, BadSizesAndDurationsFail) {
  expect_failure(cli({"create", "s", "--capacity", "12Q"}), "not a size");
  expect_failure(cli({"create", "s", "--capacity", "3000"}), "power of two");
  expect_failure(cli({"create", "s", "--capacity", "64K", "--max-record", "64K"}), "max record");
  expect_failure(cli({"create", "s", "--capacity", "64K", "--mode", "0999"}), "octal");
  expect_failure(cli({"create", "s", "--capacity", "64K", "--abandon-timeout", "5x"}),
                 "not a duration");
  create("s");
  expect_failure(cli({"pub", "s", "--count", "1", "--size", "1X"}), "not a size");
  expect_failure(cli({"stat", "s", "--interval", "soon"}), "not a duration");
  // CLI11's own errors: its message, a non-zero exit.  (create without --capacity used to
  // be one; it now takes the default 1M: see CreateDefaultsTo1MAndSizesSayTheirBase.)
  CliResult notnum = cli({"tail", "s", "--count", "many"});
  EXPECT_NE(notnum.exit_code, 0);
  // A negative count must not wrap around to 2^64 - 1 (pub would run for ever).
  CliResult negative = cli({"pub", "s", "--count", "-1"});
  EXPECT_NE(negative.exit_code, 0);
  EXPECT_FALSE(negative.timed_out);
  EXPECT_NE(cli({"tail", "s", "--count", "-5"}).exit_code, 0);
  EXPECT_NE(cli({"pub", "s", "--type", "-1"}, "x\n").exit_code, 0);
  EXPECT_NE(run_cli({"frobnicate"}).exit_code, 0);
  EXPECT_NE(run_cli({}).exit_code, 0);
}

TEST_F(Cli, CreateOptionsReachTheStream) {
  expect_ok(cli({"create", "s", "--capacity", "128K", "--max-record", "1K", "--mode", "0640",
                 "--abandon-timeout", "500ms", "--consumer-timeout", "3s"}));
  CliResult st = cli({"stat", "s", "--json", "--interval", "0"});
  expect_ok(st);
  EXPECT_EQ(json_raw(st.out, "capacity"), "131072");
  EXPECT_EQ(json_raw(st.out, "max_record"), "1024");
  EXPECT_EQ(json_raw(st.out, "abandon_timeout_ms"), "500");
  EXPECT_EQ(json_raw(st.out, "consumer_dead_timeout_ms"), "3000");
  struct stat sb {};
  ASSERT_EQ(::stat(("/dev/shm/" + object_name(ns_, "s")).c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0640u);
}

TEST_F(Cli, PubTooLargeRecordFails) {
  expect_ok(cli({"create", "s", "--capacity", "64K", "--max-record", "4096"}));
  CliResult r = cli({"pub", "s"}, "small\n" + std::string(5000, 'x') + "\nnever\n");
  expect_failure(r, "record of 5000 bytes is larger than the stream's maximum 4096");
  // Records before the bad one are published; none after it.
  EXPECT_EQ(cli({"tail", "s"}).out, "small\n");
  expect_failure(cli({"pub", "s", "--count", "1", "--size", "5000"}), "larger than");
}

TEST_F(Cli, PubSyntheticPrintsASummary) {
  create("s", "1M");
  CliResult r = cli({"pub", "s", "--count", "1000", "--size", "100", "--type", "9"});
  expect_ok(r);
  EXPECT_NE(r.err.find("published 1000 records"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("rec/s"), std::string::npos) << r.err;
  CliResult st = cli({"stat", "s", "--json", "--interval", "0"});
  EXPECT_EQ(json_raw(st.out, "next_seq"), "1000");
  EXPECT_EQ(json_raw(st.out, "bytes_published"), "100000");
  // Record 1 is its 8-byte little-endian counter, repeated.
  CliResult t = cli({"tail", "s", "--from", "1", "--count", "1", "--format", "hex"});
  auto lines = lines_of(t.out);
  ASSERT_EQ(lines.size(), 1u);
  std::string expect;
  for (int i = 0; i < 12; ++i) expect += "0100000000000000";
  expect += "01000000";
  EXPECT_NE(lines[0].find(" 9 100 " + expect), std::string::npos) << lines[0];
  expect_failure(cli({"pub", "s", "--size", "10"}), "--count");
}

TEST_F(Cli, MissingStreamIsNotFound) {
  expect_failure(cli({"tail", "nothere"}), "not found");
  expect_failure(cli({"stat", "nothere", "--interval", "0"}), "not found");
  expect_failure(cli({"rm", "nothere"}), "not found");
  expect_failure(cli({"pub", "nothere"}, "x\n"), "not found");
}

TEST_F(Cli, RmRefusesWhileAConsumerIsAttachedUnlessForced) {
  create("s");
  expect_ok(cli({"pub", "s"}, "hello\n"));
  Background bg(with_ns({"tail", "s", "-f"}));
  ASSERT_TRUE(bg.wait_for([](const std::string& out, const std::string&) { return out == "hello\n"; }))
      << bg.err();
  CliResult ls = cli({"ls", "--json"});
  EXPECT_EQ(json_raw(ls.out, "consumers"), "1") << ls.out;
  expect_failure(cli({"rm", "s"}), "in use");
  expect_ok(cli({"rm", "s", "--force"}));
  EXPECT_EQ(cli({"ls", "--json"}).out, "[]\n");
  CliResult r = bg.stop(SIGTERM);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(Cli, RmRemovesAnIdleStream) {
  create("s");
  expect_ok(cli({"rm", "s"}));
  expect_failure(cli({"rm", "s"}), "not found");
}

TEST_F(Cli, TailFollowExitsCleanlyOnSigtermAndSigint) {
  create("s");
  for (int sig : {SIGTERM, SIGINT}) {
    SCOPED_TRACE(sig);
    Background bg(with_ns({"tail", "s", "-f", "--from", "latest"}));
    // Wait until it is attached (a live tailing consumer in stat), then feed it.
    ASSERT_TRUE(bg.wait_for([&](const std::string&, const std::string&) {
      CliResult ls = cli({"ls", "--json"});
      return json_raw(ls.out, "consumers") == "1";
    }));
    expect_ok(cli({"pub", "s"}, "live\n"));
    ASSERT_TRUE(bg.wait_for([](const std::string& out, const std::string&) { return out == "live\n"; }))
        << bg.err();
    CliResult r = bg.stop(sig);
    EXPECT_FALSE(r.timed_out);
    // Ctrl-C exits 130 like every command; SIGTERM is a clean stop.
    EXPECT_EQ(r.exit_code, sig == SIGINT ? 130 : 0) << r.err;
    EXPECT_EQ(r.err, "");
  }
}

TEST_F(Cli, TailBlockedOnStdoutStopsCleanlyAndGroupResumesExactly) {
  create("s", "1M");
  expect_ok(cli({"pub", "s", "--count", "3000", "--size", "100"}));
  // ~250 bytes of hex per record: the 64 KiB pipe fills and the tail blocks in write().
  Background bg(with_ns({"tail", "s", "-f", "--group", "g", "--format", "hex"}));
  // Running: group g has committed a record (its next_seq is in the consumers array).
  ASSERT_TRUE(bg.wait_for([&](const std::string&, const std::string&) {
    const std::string st = cli({"stat", "s", "--json", "--interval", "0"}).out;
    const size_t at = st.find("\"consumers\":");
    return at != std::string::npos && json_raw(st.substr(at), "next_seq") != "0" &&
           !json_raw(st.substr(at), "next_seq").empty();
  }));
  usleep(200000);
  kill(bg.pid(), SIGTERM);  // while blocked: stop() below only drains and reaps
  CliResult r = bg.stop(0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  auto first = lines_of(r.out);
  ASSERT_FALSE(first.empty());
  ASSERT_LT(first.size(), 3000u);
  EXPECT_EQ(r.out.back(), '\n');  // no half record
  const uint64_t last = std::stoull(first.back().substr(0, first.back().find(' ')));
  // The next run of the group starts right after the last record that reached stdout.
  CliResult rest = cli({"tail", "s", "--group", "g", "--format", "hex", "--count", "1"});
  expect_ok(rest);
  ASSERT_FALSE(rest.out.empty());
  EXPECT_EQ(std::stoull(rest.out.substr(0, rest.out.find(' '))), last + 1);
}

TEST_F(Cli, LappedTailReportsLostRecords) {
  create("s", "4K");
  Background bg(with_ns({"tail", "s", "-f", "--format", "hex"}));
  ASSERT_TRUE(bg.wait_for([&](const std::string&, const std::string&) {
    return json_raw(cli({"ls", "--json"}).out, "consumers") == "1";
  }));
  // The tail blocks on its full stdout pipe (nobody reads it yet) while producers lap it.
  expect_ok(cli({"pub", "s", "--count", "20000", "--size", "100"}));
  ASSERT_TRUE(bg.wait_for([](const std::string&, const std::string& err) {
    return err.find("shmbus: lapped: ") != std::string::npos;
  })) << bg.err();
  CliResult r = bg.stop(SIGTERM);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find(" records lost"), std::string::npos) << r.err;
  CliResult st = cli({"stat", "s", "--json", "--interval", "0"});
  EXPECT_NE(json_raw(st.out, "tail_lost"), "0");
}

TEST_F(Cli, StatMeasuresRates) {
  create("s", "1M");
  Background group(with_ns({"tail", "s", "-f", "--group", "g", "--format", "hex"}));
  ASSERT_TRUE(group.wait_for([&](const std::string&, const std::string&) {
    return cli({"stat", "s", "--json", "--interval", "0"}).out.find("\"alive\":true") !=
           std::string::npos;
  }));
  Background stat(with_ns({"stat", "s", "--json", "--interval", "1s"}));
  usleep(300000);  // inside stat's interval
  expect_ok(cli({"pub", "s", "--count", "2000", "--size", "16"}));
  ASSERT_TRUE(group.wait_for([](const std::string& out, const std::string&) {
    return std::count(out.begin(), out.end(), '\n') == 2000;
  }));
  CliResult r = stat.stop(0);  // signal 0: just wait for it
  expect_ok(r);
  EXPECT_GT(std::atof(json_raw(r.out, "lambda_records_per_s").c_str()), 0.0) << r.out;
  EXPECT_GT(std::atof(json_raw(r.out, "lambda_bytes_per_s").c_str()), 0.0) << r.out;
  EXPECT_GT(std::atof(json_raw(r.out, "interval_s").c_str()), 0.9) << r.out;
  const size_t consumers = r.out.find("\"consumers\":");
  ASSERT_NE(consumers, std::string::npos);
  const std::string c = r.out.substr(consumers);
  EXPECT_EQ(json_raw(c, "name"), "\"g\"");
  EXPECT_GT(std::stoull(json_raw(c, "next_seq")), 0u);
  EXPECT_GT(std::atof(json_raw(c, "mu_records_per_s").c_str()), 0.0) << r.out;
  for (const char* k : {"pid", "alive", "lag", "evicted"}) EXPECT_TRUE(has_key(c, k)) << k;
  EXPECT_EQ(group.stop(SIGTERM).exit_code, 0);
}

TEST_F(Cli, LsListsABrokenStreamWithItsError) {
  create("good");
  {
    std::ofstream junk("/dev/shm/" + object_name(ns_, "junk"), std::ios::binary);
    junk << std::string(8192, '\xab');
  }
  CliResult ls = cli({"ls", "--json"});
  expect_ok(ls);
  const size_t at = ls.out.find("\"stream\":\"junk\"");
  ASSERT_NE(at, std::string::npos) << ls.out;
  EXPECT_TRUE(has_key(ls.out.substr(at), "error")) << ls.out;
  EXPECT_NE(ls.out.find("\"stream\":\"good\",\"capacity\""), std::string::npos) << ls.out;
  CliResult text = cli({"ls"});
  expect_ok(text);
  EXPECT_NE(text.out.find("junk"), std::string::npos);
  EXPECT_NE(text.out.find("error: "), std::string::npos) << text.out;
  expect_failure(cli({"tail", "junk"}), "not a shmbus stream");
  expect_ok(cli({"rm", "junk", "--force"}));
}

TEST_F(Cli, NamespaceFromEnvironmentOrGlobalFlag) {
  CliEnv env;
  env.set.push_back({"SHMBUS_NAMESPACE", ns_});
  expect_ok(run_cli({"create", "fromenv", "--capacity", "64K"}, {}, env));
  CliResult ls = run_cli({"--namespace", ns_, "ls", "--json"});
  expect_ok(ls);
  EXPECT_NE(ls.out.find("\"stream\":\"fromenv\""), std::string::npos) << ls.out;
  // The flag wins over the environment.
  CliEnv other;
  other.set.push_back({"SHMBUS_NAMESPACE", ns_ + "-other"});
  CliResult flagged = run_program(SHMBUS_CLI, {"ls", "--json", "--namespace", ns_}, {}, other);
  EXPECT_NE(flagged.out.find("fromenv"), std::string::npos) << flagged.out;
}

TEST_F(Cli, HelpForEverySubcommand) {
  for (const char* sub : {"create", "pub", "tail", "ls", "stat", "rm"}) {
    CliResult r = run_cli({sub, "--help"});
    EXPECT_EQ(r.exit_code, 0) << sub;
    EXPECT_NE(r.out.find("--namespace"), std::string::npos) << sub << ": " << r.out;
  }
  EXPECT_NE(run_cli({"tail", "--help"}).out.find("--follow"), std::string::npos);
  CliResult bench = run_cli({"bench", "--help"});
  EXPECT_EQ(bench.exit_code, 0) << bench.err;
  EXPECT_NE(bench.out.find("usage"), std::string::npos) << bench.out;
}

TEST_F(Cli, BenchRunsShmbusBenchOrSaysItIsMissing) {
  // A copy of shmbus alone in a directory: no shmbus-bench next to it or in ../bench.
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("shmbus-cli-" + ns_) / "bin";
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(SHMBUS_CLI, dir / "shmbus",
                             std::filesystem::copy_options::overwrite_existing);
  CliResult r = run_program((dir / "shmbus").string(), {"bench", "--quick"});
  expect_failure(r, "shmbus-bench not found");

  // A stand-in shmbus-bench in ../bench (the build tree's layout) gets every argument.
  std::filesystem::create_directories(dir.parent_path() / "bench");
  const auto fake = dir.parent_path() / "bench" / "shmbus-bench";
  {
    std::ofstream sh(fake);
    sh << "#!/bin/sh\necho \"bench got: $*\"\nexit 3\n";
  }
  std::filesystem::permissions(fake, std::filesystem::perms::owner_all);
  CliResult ran = run_program((dir / "shmbus").string(), {"bench", "--reps", "2", "--help", "x"});
  std::filesystem::remove_all(dir.parent_path());
  EXPECT_EQ(ran.out, "bench got: --reps 2 --help x\n");
  EXPECT_EQ(ran.exit_code, 3);
}

}  // namespace
}  // namespace shmbus::test

namespace shmbus::test {
namespace {

// ---- issue 13: the habits of Kafka's tools, kcat and iox2 ---------------------------

TEST_F(Cli, FromTimeTakesIsoDatesRelativeAndEpochUnits) {
  create("s");
  expect_ok(cli({"pub", "s"}, "a\nb\n"));
  // A bare epoch number in seconds (from `date +%s`) is read as seconds, and says so:
  // 4000000000 s is in 2096, after every record (as ns it would be 1970: all of them).
  CliResult bare = cli({"tail", "s", "--from", "@4000000000"});
  expect_ok(bare);
  EXPECT_EQ(bare.out, "");
  EXPECT_NE(bare.err.find("shmbus: --from: @4000000000 read as seconds"), std::string::npos)
      << bare.err;
  EXPECT_NE(bare.err.find("2096-"), std::string::npos) << bare.err;
  // With a unit, no note.
  for (const char* from : {"@4000000000s", "@4000000000000ms", "@4000000000000000us",
                           "@4000000000000000000ns", "@2096-10-02", "@2096-10-02T07:06:40Z",
                           "@2096-10-02T08:06:40+01:00", "@2096-10-02T02:06:40-0500", "@now"}) {
    CliResult r = cli({"tail", "s", "--from", from});
    expect_ok(r);
    EXPECT_EQ(r.out, "") << from;
    EXPECT_EQ(r.err, "") << from;
  }
  for (const char* from : {"@0ns", "@-1h", "@now-1h", "@1970-01-01T01:00:00+01:00", "@2000-01-01",
                           "@1.5s"}) {
    CliResult r = cli({"tail", "s", "--from", from});
    expect_ok(r);
    EXPECT_EQ(r.out, "a\nb\n") << from;
    EXPECT_EQ(r.err, "") << from;
  }
  CliResult bad = cli({"tail", "s", "--from", "@yesterday"});
  expect_failure(bad, "@now");
  EXPECT_EQ(bad.exit_code, 2);
}

}  // namespace
}  // namespace shmbus::test

namespace shmbus::test {
namespace {

TEST_F(Cli, UsageErrorsAreOneLineWithExitCode2AndSuggestions) {
  create("s");
  // CLI11's own errors used to exit 104-114 with two lines and no prefix.
  CliResult typo = cli({"tail", "s", "--folow"});
  expect_failure(typo, "did you mean --follow?");
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_NE(typo.err.find("shmbus help tail"), std::string::npos) << typo.err;
  CliResult format = cli({"tail", "s", "--format", "yaml"});
  expect_failure(format, "--format");
  EXPECT_EQ(format.exit_code, 2);
  expect_ok(cli({"tail", "s", "--format", "JSON"}));  // any case
  CliResult command = cli({"tial", "s"});
  expect_failure(command, "did you mean tail?");
  EXPECT_EQ(command.exit_code, 2);
  CliResult missing = cli({"pub"});
  expect_failure(missing, "STREAM");
  EXPECT_EQ(missing.exit_code, 2);
  CliResult none = run_cli({});
  expect_failure(none, "a command is required");
  EXPECT_EQ(none.exit_code, 2);
  CliResult notnum = cli({"tail", "s", "--count", "many"});
  expect_failure(notnum, "--count");
  EXPECT_EQ(notnum.exit_code, 2);

  CliResult version = run_cli({"--version"});
  expect_ok(version);
  EXPECT_EQ(version.out.rfind("shmbus ", 0), 0u) << version.out;
  CliResult help = run_cli({"help"});
  expect_ok(help);
  EXPECT_NE(help.out.find("Exit codes"), std::string::npos) << help.out;
  CliResult help_tail = run_cli({"help", "tail"});
  expect_ok(help_tail);
  EXPECT_NE(help_tail.out.find("--follow"), std::string::npos) << help_tail.out;
  CliResult help_bad = run_cli({"help", "tial"});
  expect_failure(help_bad, "did you mean tail?");
  EXPECT_EQ(help_bad.exit_code, 2);
}

// True once `pid` catches SIGINT and SIGTERM (its stop handlers are installed).
bool catches_stop_signals(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("SigCgt:", 0) != 0) continue;
    const unsigned long long mask = std::stoull(line.substr(7), nullptr, 16);
    return (mask >> (SIGINT - 1) & 1) && (mask >> (SIGTERM - 1) & 1);
  }
  return false;
}

TEST_F(Cli, CtrlCExits130EverywhereAndSigtermStopsCleanly) {
  create("s");
  expect_ok(cli({"pub", "s"}, "x\n"));
  // tail -f and a measuring stat used to exit 0 on Ctrl-C (and pub 130).
  for (std::vector<std::string> args :
       {std::vector<std::string>{"tail", "s", "-f"}, {"stat", "s", "--interval", "30s"}}) {
    SCOPED_TRACE(args[0]);
    for (int sig : {SIGINT, SIGTERM}) {
      Background bg(with_ns(args));
      ASSERT_TRUE(bg.wait_for([&](const std::string&, const std::string&) {
        return catches_stop_signals(bg.pid());
      }));
      CliResult r = bg.stop(sig);
      EXPECT_FALSE(r.timed_out);
      EXPECT_EQ(r.exit_code, sig == SIGINT ? 130 : 0) << sig << ": " << r.err;
      if (args[0] == "stat") EXPECT_NE(r.out.find("lambda"), std::string::npos) << r.out;
    }
  }
}

}  // namespace
}  // namespace shmbus::test

namespace shmbus::test {
namespace {

TEST_F(Cli, CreateDefaultsTo1MAndSizesSayTheirBase) {
  // One default capacity everywhere: 1M, as Python's create() and StreamOptions.
  expect_ok(cli({"create", "d"}));
  EXPECT_EQ(json_raw(cli({"stat", "d", "--json"}).out, "capacity"), "1048576");
  // 10MB is 10000000 bytes (1000-based), not a power of two: the nearest are suggested.
  CliResult mb = cli({"create", "m", "--capacity", "10MB"});
  expect_failure(mb, "use 8M or 16M");
  EXPECT_EQ(mb.exit_code, 2);
  EXPECT_NE(mb.err.find("10000000 bytes"), std::string::npos) << mb.err;
  expect_failure(cli({"create", "m", "--capacity", "3000"}), "power of two");
  expect_ok(cli({"create", "k", "--capacity", "64KiB", "--max-record", "1KB"}));
  CliResult k = cli({"stat", "k", "--json"});
  EXPECT_EQ(json_raw(k.out, "capacity"), "65536");
  EXPECT_EQ(json_raw(k.out, "max_record"), "1000");
  // Decimal durations, bare (seconds) or with a unit.
  expect_ok(cli({"create", "t", "--capacity", "64K", "--abandon-timeout", "1.5",
                 "--consumer-timeout", "0.25s"}));
  CliResult t = cli({"stat", "t", "--json", "--interval", "0.2s"});
  expect_ok(t);
  EXPECT_EQ(json_raw(t.out, "abandon_timeout_ms"), "1500");
  EXPECT_EQ(json_raw(t.out, "consumer_dead_timeout_ms"), "250");
  EXPECT_GE(std::atof(json_raw(t.out, "interval_s").c_str()), 0.2) << t.out;
  expect_ok(cli({"stat", "t", "--interval", "0.1"}));
  expect_failure(cli({"stat", "t", "--interval", "1."}), "not a duration");
  // The not-found hint suggests the same default.
  expect_failure(cli({"tail", "nothere"}), "--capacity 1M");
}

TEST_F(Cli, StatIsInstantIntervalMeasuresWatchRefreshes) {
  create("s");
  expect_ok(cli({"pub", "s"}, "a\nb\n"));
  // A plain stat is one snapshot: no measurement window (it used to take 1 s).
  const auto t0 = std::chrono::steady_clock::now();
  CliResult plain = cli({"stat", "s", "--json"});
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  expect_ok(plain);
  EXPECT_EQ(std::atof(json_raw(plain.out, "interval_s").c_str()), 0.0) << plain.out;
  EXPECT_EQ(json_raw(plain.out, "next_seq"), "2");
  (void)took;  // not asserted: the machine may be slow; interval_s says no window was taken
  CliResult text = cli({"stat", "s"});
  expect_ok(text);
  EXPECT_NE(text.out.find("average "), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("lambda "), std::string::npos) << text.out;
  // --watch: one JSON document per refresh, the later ones with measured rates.
  Background w(with_ns({"stat", "s", "--json", "--watch", "0.1s"}));
  ASSERT_TRUE(w.wait_for([](const std::string& out, const std::string&) {
    return std::count(out.begin(), out.end(), '\n') >= 3;
  })) << w.err();
  CliResult r = w.stop(SIGTERM);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto docs = lines_of(r.out);
  ASSERT_GE(docs.size(), 3u);
  EXPECT_EQ(std::atof(json_raw(docs[0], "interval_s").c_str()), 0.0) << docs[0];
  EXPECT_GT(std::atof(json_raw(docs[1], "interval_s").c_str()), 0.09) << docs[1];
  for (const auto& d : docs) EXPECT_EQ(d.front(), '{') << d;
  // Text: refreshed blocks.
  Background wt(with_ns({"stat", "s", "--watch"}));
  ASSERT_TRUE(wt.wait_for([](const std::string& out, const std::string&) {
    return out.find("\n---- ") != std::string::npos && out.find("lambda ") != std::string::npos;
  })) << wt.err();
  EXPECT_EQ(wt.stop(SIGINT).exit_code, 130);
  expect_failure(cli({"stat", "s", "--watch", "soon"}), "not a duration");
}

}  // namespace
}  // namespace shmbus::test

namespace shmbus::test {
namespace {

TEST_F(Cli, NamespaceTyposSuggestWhereTheStreamIs) {
  const std::string typo = ns_ + "x";  // a namespace with no streams
  create("ticks");
  CliResult tail = run_cli({"tail", "ticks", "--namespace", typo});
  expect_failure(tail, "a stream 'ticks' is in namespace '" + ns_ + "'");
  EXPECT_NE(tail.err.find("did you mean --namespace " + ns_ + "?"), std::string::npos) << tail.err;
  EXPECT_EQ(tail.err.find("create it with"), std::string::npos) << tail.err;
  expect_failure(run_cli({"pub", "ticks", "--namespace", typo}, "x\n"), "is in namespace");
  expect_failure(run_cli({"stat", "ticks", "--namespace", typo}), "is in namespace");
  // A stream nowhere: the create hint stays.
  expect_failure(cli({"tail", "nowhere"}), "create it with");
  // ls of a namespace without streams says so (stdout stays an empty listing).
  CliResult ls = run_cli({"ls", "--json", "--namespace", typo});
  expect_ok(ls);
  EXPECT_EQ(ls.out, "[]\n");
  EXPECT_NE(ls.err.find("namespace '" + typo + "' has no streams"), std::string::npos) << ls.err;
  EXPECT_NE(ls.err.find("ls --all"), std::string::npos) << ls.err;
  // ls --all: every namespace, this one included.
  CliResult all = run_cli({"ls", "--all", "--json"});
  expect_ok(all);
  EXPECT_NE(all.out.find("{\"namespace\":\"" + ns_ + "\",\"stream\":\"ticks\""), std::string::npos)
      << all.out;
  CliResult text = run_cli({"ls", "--all"});
  expect_ok(text);
  EXPECT_NE(text.out.find("NAMESPACE"), std::string::npos);
  EXPECT_NE(text.out.find(ns_), std::string::npos) << text.out;
}

TEST_F(Cli, CountsOutOfRangeAreRefused) {
  create("s");
  // Above 2^64 - 1: CLI11 saturated it and pub ran without limit.
  for (const char* sub : {"pub", "tail"}) {
    CliResult r = cli({sub, "s", "--count", "99999999999999999999999"});
    expect_failure(r, "out of range");
    EXPECT_EQ(r.exit_code, 2);
  }
  expect_failure(cli({"delete", "s", "--before", "18446744073709551616"}), "out of range");
  expect_ok(cli({"tail", "s", "--count", "18446744073709551615"}));
}

}  // namespace
}  // namespace shmbus::test

namespace shmbus::test {
namespace {

TEST_F(Cli, PubDelimitersFilesAndTailRawAndEncodings) {
  create("s");
  // -D DELIM and -0: records that hold newlines.
  expect_ok(cli({"pub", "s", "-D", "|"}, "one\nline|two"));
  expect_ok(cli({"pub", "s", "-0"}, std::string("three\0four\0", 11)));
  expect_ok(cli({"pub", "s", "-D", "\\r\\n"}, "five\r\nsix\r\n"));
  // --file: one record per file; --file -: all of stdin, one record (newlines and NULs kept).
  const std::string path = ::testing::TempDir() + "/shmbus-cli-" + ns_ + ".bin";
  {
    std::ofstream f(path, std::ios::binary);
    f << std::string("a\nb\0c", 5);
  }
  expect_ok(cli({"pub", "--file", path, "s"}));  // one FILE per --file: STREAM may follow
  expect_ok(cli({"pub", "s", "--file", path}));
  expect_ok(cli({"pub", "s", "--file", "-"}, std::string("x\ny\0", 4)));
  std::remove(path.c_str());
  CliResult json = cli({"tail", "s", "--format", "json", "--encoding", "hex"});
  expect_ok(json);
  std::vector<std::string> hex;
  for (const auto& l : lines_of(json.out)) hex.push_back(json_raw(l, "data_hex"));
  EXPECT_EQ(hex, (std::vector<std::string>{"\"6f6e650a6c696e65\"", "\"74776f\"", "\"7468726565\"",
                                            "\"666f7572\"", "\"66697665\"", "\"736978\"",
                                            "\"610a620063\"", "\"610a620063\"", "\"780a7900\""}))
      << json.out;
  // Text output: a record that holds the delimiter is escaped, one record per line.
  CliResult text = cli({"tail", "s", "--count", "2"});
  expect_ok(text);
  EXPECT_EQ(text.out, "one\\x0aline\ntwo\n");
  // Raw output with a delimiter: the bytes as they are.
  CliResult raw = cli({"tail", "s", "--format", "raw", "-D", "\\0", "--count", "2"});
  expect_ok(raw);
  EXPECT_EQ(raw.out, std::string("one\nline\0two\0", 13));
  // --encoding forces one JSON key whatever the bytes; the default keeps data / data_base64.
  CliResult b64 = cli({"tail", "s", "--format", "json", "--encoding", "base64", "--count", "1"});
  EXPECT_EQ(json_raw(b64.out, "data_base64"), "\"b25lCmxpbmU=\"") << b64.out;
  CliResult utf8 = cli({"tail", "s", "--format", "json", "--encoding", "utf8", "--from", "6",
                        "--count", "1"});
  EXPECT_EQ(json_raw(utf8.out, "data"), "\"a\\nb\\u0000c\"") << utf8.out;
  CliResult dflt = cli({"tail", "s", "--format", "json", "--count", "1"});
  EXPECT_EQ(json_raw(dflt.out, "data"), "\"one\\nline\"") << dflt.out;
  // Mistakes are usage errors.
  expect_failure(cli({"pub", "s", "-D", "|", "-0"}), "-D and -0");
  expect_failure(cli({"pub", "s", "--count", "1", "--file", "-"}), "choose one");
  expect_failure(cli({"pub", "s", "-D", "\\q"}), "unknown escape");
  expect_failure(cli({"tail", "s", "--format", "hex", "-D", "|"}), "-D goes with");
  expect_failure(cli({"tail", "s", "--encoding", "hex"}), "--encoding goes with");
  expect_failure(cli({"pub", "s", "--file", "/nonexistent/x"}), "/nonexistent/x");
}

}  // namespace
}  // namespace shmbus::test

namespace shmbus::test {
namespace {

TEST_F(Cli, RmDataOfANeverPersistedStreamSaysItHadNoStore) {
  create("s");
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("shmbus-cli-data-" + ns_);
  std::filesystem::create_directories(dir);
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all);
  CliResult r = cli({"rm", "s", "--data", "--data-dir", dir.string()});
  std::filesystem::remove_all(dir);
  expect_ok(r);
  EXPECT_NE(r.err.find("shmbus: the stream had no store"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("removed the store"), std::string::npos) << r.err;
}

TEST_F(Cli, SyntheticRecordsReachATerminalEscaped) {
  create("s");
  expect_ok(cli({"pub", "s", "--count", "2", "--size", "16"}));
  // tail's stdout a terminal (script(1) gives it a pty): no raw control bytes reach it.
  CliResult r = run_program("/usr/bin/script",
                            {"-qec", std::string(SHMBUS_CLI) + " tail s --namespace " + ns_, "/dev/null"});
  expect_ok(r);
  EXPECT_NE(r.out.find("\\x01\\x00"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find('\x01'), std::string::npos) << r.out;
}

}  // namespace
}  // namespace shmbus::test

// ---- issue 13 point 2: records a reader skips are never skipped silently ----------------

namespace shmbus::test {
namespace {

size_t count_lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

// The issue's steps: a group reads 3, goes away past the consumer timeout, producers
// overwrite what it had not read; its next `tail --group` says so on stderr, with the
// exact count, and `stat` counts it.
TEST_F(Cli, EvictedGroupIsToldWhatItLost) {
  expect_ok(cli({"create", "ev", "--capacity", "4K", "--consumer-timeout", "200ms"}));
  expect_ok(cli({"pub", "ev"}, "a\nb\nc\nd\ne\n"));
  CliResult first = cli({"tail", "ev", "--group", "slowg", "--count", "3"});
  expect_ok(first);
  ASSERT_EQ(first.out, "a\nb\nc\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // away past the timeout
  expect_ok(cli({"pub", "ev", "--count", "200"}));
  CliResult st0 = cli({"stat", "ev", "--json"});
  ASSERT_EQ(json_raw(st0.out, "evictions"), "1") << st0.out;

  CliResult r = cli({"tail", "ev", "--group", "slowg"});
  expect_ok(r);
  ASSERT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("shmbus: consumer group 'slowg' was evicted"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("records 3.."), std::string::npos) << r.err;
  // "...: N records lost": N plus what it printed is everything after seq 2.
  const size_t at = r.err.find(": ", r.err.find("left the ring"));
  ASSERT_NE(at, std::string::npos) << r.err;
  const uint64_t lost = std::stoull(r.err.substr(at + 2));
  EXPECT_GT(lost, 0u);
  EXPECT_EQ(lost + count_lines(r.out), 205u - 3u) << r.err;
  CliResult st = cli({"stat", "ev", "--json"});
  EXPECT_EQ(json_raw(st.out, "evicted_lost"), std::to_string(lost)) << st.out;
  EXPECT_EQ(json_raw(st.out, "evicted"), "false") << st.out;
  // Once told, it is not told again.
  CliResult again = cli({"tail", "ev", "--group", "slowg"});
  expect_ok(again);
  EXPECT_EQ(again.err, "");
}

TEST_F(Cli, StartBelowTheOldestRecordSaysSo) {
  create("s", "4K");
  expect_ok(cli({"pub", "s", "--count", "200"}));
  CliResult st = cli({"stat", "s", "--json"});
  const uint64_t oldest = std::stoull(json_raw(st.out, "oldest_seq"));
  ASSERT_GT(oldest, 1u);
  CliResult r = cli({"tail", "s", "--from", "0", "--format", "json"});
  expect_ok(r);
  ASSERT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("shmbus: records 0.."), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("are no longer in the ring"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("records lost"), std::string::npos) << r.err;
  // A new group started there counts them as lost too.
  CliResult g = cli({"tail", "s", "--group", "newg", "--from", "0", "--count", "1", "--format", "json"});
  expect_ok(g);
  EXPECT_NE(g.err.find("are no longer in the ring"), std::string::npos) << g.err;
  // A start inside the ring says nothing.
  CliResult in = cli({"tail", "s", "--from", std::to_string(oldest + 1), "--count", "1", "--format", "json"});
  expect_ok(in);
  EXPECT_EQ(in.err, "");
  EXPECT_EQ(json_raw(in.out, "seq"), std::to_string(oldest + 1));
}

TEST_F(Cli, ConsumerRetentionIsAFlagAndInStat) {
  expect_ok(cli({"create", "s", "--capacity", "64K", "--consumer-retention", "1h"}));
  CliResult st = cli({"stat", "s", "--json"});
  EXPECT_EQ(json_raw(st.out, "consumer_retention_ms"), "3600000") << st.out;
  EXPECT_EQ(json_raw(st.out, "consumer_dead_timeout_ms"), "2000") << st.out;
  expect_ok(cli({"create", "d", "--capacity", "64K"}));
  EXPECT_EQ(json_raw(cli({"stat", "d", "--json"}).out, "consumer_retention_ms"), "604800000");
  expect_failure(cli({"create", "x", "--capacity", "64K", "--consumer-retention", "soon"}),
                 "not a duration");
  // Within the retention (7 days) a group continues; away past it, it is forgotten and
  // --from applies again.  (Only "at least this long" waits: none can be too short.)
  expect_ok(cli({"pub", "d"}, "1\n2\n3\n"));
  EXPECT_EQ(cli({"tail", "d", "--group", "g", "--count", "1"}).out, "1\n");
  EXPECT_EQ(cli({"tail", "d", "--group", "g", "--count", "1", "--from", "latest"}).out, "2\n");  // kept
  expect_ok(cli({"create", "r", "--capacity", "64K", "--consumer-retention", "200ms"}));
  expect_ok(cli({"pub", "r"}, "1\n2\n3\n"));
  EXPECT_EQ(cli({"tail", "r", "--group", "g", "--count", "1"}).out, "1\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(cli({"tail", "r", "--group", "g", "--from", "latest"}).out, "");  // a new group
}

// On a persisted stream an evicted group loses nothing: what left the ring comes from
// the store, in order, then the ring.
TEST_F(Cli, EvictedGroupOnAPersistedStreamReadsTheStore) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("shmbus-cli-evict-" + ns_);
  std::filesystem::create_directories(dir);
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all);
  expect_ok(cli({"create", "ev", "--capacity", "4K", "--consumer-timeout", "200ms"}));
  {
    Background persister(with_ns({"persist", "ev", "--data-dir", dir.string()}));
    ASSERT_TRUE(persister.wait_for(
        [](const std::string&, const std::string& e) { return e.find("persisting") != std::string::npos; }))
        << persister.err();
    std::string lines;
    for (int i = 0; i < 5; ++i) lines += std::to_string(i) + "\n";
    expect_ok(cli({"pub", "ev"}, lines));
    EXPECT_EQ(cli({"tail", "ev", "--group", "slowg", "--count", "3"}).out, "0\n1\n2\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    lines.clear();
    for (int i = 5; i < 205; ++i) lines += std::to_string(i) + "\n";
    expect_ok(cli({"pub", "ev", "--sync"}, lines));
    ASSERT_EQ(json_raw(cli({"stat", "ev", "--json"}).out, "evictions"), "1");

    CliResult r = cli({"tail", "ev", "--group", "slowg", "--data-dir", dir.string()});
    expect_ok(r);
    EXPECT_NE(r.err.find("consumer group 'slowg' was evicted"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("reading them from the store (nothing lost)"), std::string::npos) << r.err;
    std::string want;
    for (int i = 3; i < 205; ++i) want += std::to_string(i) + "\n";
    EXPECT_EQ(r.out, want);
    EXPECT_EQ(cli({"tail", "ev", "--group", "slowg"}).out, "");  // committed
    CliResult stop = persister.stop(SIGINT);
    EXPECT_FALSE(stop.timed_out);
  }
  std::filesystem::remove_all(dir);
}

// ---- issue 13 point 10: tail -f follows the name, as tail -F ------------------------------

// /proc/PID/stat: user + system CPU time in clock ticks.
long cpu_ticks(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::istringstream in(stat.substr(stat.rfind(')') + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return utime + stime;
}

TEST_F(Cli, TailFollowNoticesRemovalAndRecreation) {
  for (const std::vector<std::string>& extra : {std::vector<std::string>{}, {"--group", "g"}}) {
    SCOPED_TRACE(extra.empty() ? "tailing" : "group");
    create("s");
    expect_ok(cli({"pub", "s"}, "old\n"));
    std::vector<std::string> args = {"tail", "s", "-f"};
    args.insert(args.end(), extra.begin(), extra.end());
    Background bg(with_ns(args));
    ASSERT_TRUE(bg.wait_for([](const std::string& out, const std::string&) { return out == "old\n"; }))
        << bg.err();
    expect_ok(cli({"rm", "s", "--force"}));
    ASSERT_TRUE(bg.wait_for([](const std::string&, const std::string& err) {
      return err.find("shmbus: stream 's' was removed; waiting for it to be created again\n") !=
             std::string::npos;
    })) << bg.err();
    // Waiting for the name costs (almost) no CPU: no busy loop.
    const long before = cpu_ticks(bg.pid());
    std::this_thread::sleep_for(std::chrono::seconds(2));
    EXPECT_LT(cpu_ticks(bg.pid()) - before, sysconf(_SC_CLK_TCK) / 4) << "busy-looping while waiting";
    create("s");
    expect_ok(cli({"pub", "s"}, "new1\nnew2\n"));
    ASSERT_TRUE(bg.wait_for([](const std::string& out, const std::string&) {
      return out == "old\nnew1\nnew2\n";
    })) << bg.out() << bg.err();  // the new stream from its start
    EXPECT_NE(bg.err().find("shmbus: stream 's' was created again; following the new stream\n"),
              std::string::npos)
        << bg.err();
    expect_ok(cli({"pub", "s"}, "new3\n"));
    ASSERT_TRUE(bg.wait_for([](const std::string& out, const std::string&) {
      return out == "old\nnew1\nnew2\nnew3\n";
    })) << bg.out();
    CliResult r = bg.stop(SIGINT);
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 130) << r.err;
    expect_ok(cli({"rm", "s", "--force"}));
  }
}

// The same on a persisted stream, where tail reads the store, then the ring: the ring
// removed (its store kept) is said and waited for; created again over its store (the
// sequence continues), it is followed from where the reader was.
TEST_F(Cli, TailFollowOfAPersistedStreamNoticesRemovalAndRecreation) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("shmbus-cli-follow-" + ns_);
  std::filesystem::create_directories(dir);
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all);
  create("s", "1M");
  ASSERT_NO_FATAL_FAILURE(publish_persisted("s", dir, "old\n", 1));
  Background bg(with_ns({"tail", "s", "-f", "--data-dir", dir.string()}));
  ASSERT_TRUE(bg.wait_for([](const std::string& out, const std::string&) { return out == "old\n"; }))
      << bg.err();
  expect_ok(cli({"rm", "s", "--force"}));
  ASSERT_TRUE(bg.wait_for([](const std::string&, const std::string& err) {
    return err.find("shmbus: stream 's' was removed; waiting for it to be created again\n") !=
           std::string::npos;
  })) << bg.err();
  expect_ok(cli({"create", "s", "--capacity", "1M", "--data-dir", dir.string()}));
  expect_ok(cli({"pub", "s"}, "new1\n"));
  ASSERT_TRUE(bg.wait_for([](const std::string& out, const std::string&) { return out == "old\nnew1\n"; }))
      << bg.out() << bg.err();
  EXPECT_NE(bg.err().find("shmbus: stream 's' was created again; following the new stream\n"),
            std::string::npos)
      << bg.err();
  CliResult r = bg.stop(SIGINT);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 130) << r.err;
  expect_ok(cli({"rm", "s", "--force", "--data", "--data-dir", dir.string()}));
  std::filesystem::remove_all(dir);
}

// Stopped while it waits for the stream to come back.
TEST_F(Cli, TailFollowWaitingForARemovedStreamStopsOnSigint) {
  create("s");
  Background bg(with_ns({"tail", "s", "-f"}));
  ASSERT_TRUE(bg.wait_for([&](const std::string&, const std::string&) {
    return json_raw(cli({"ls", "--json"}).out, "consumers") == "1";
  }));
  expect_ok(cli({"rm", "s", "--force"}));
  ASSERT_TRUE(bg.wait_for([](const std::string&, const std::string& err) {
    return err.find("was removed") != std::string::npos;
  })) << bg.err();
  CliResult r = bg.stop(SIGINT);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 130) << r.err;
}

// ---- issue 13 point 13: fsck of a store a persister is writing --------------------------

TEST_F(Cli, FsckOfALiveStoreSaysLiveAndCountsWhatIsWritten) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("shmbus-cli-fsck-" + ns_);
  std::filesystem::create_directories(dir);
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all);
  create("s", "1M");
  {
    Background persister(with_ns({"persist", "s", "--data-dir", dir.string()}));
    ASSERT_TRUE(persister.wait_for(
        [](const std::string&, const std::string& e) { return e.find("persisting") != std::string::npos; }))
        << persister.err();
    expect_ok(cli({"pub", "s", "--count", "2000", "--size", "32"}));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (stream_info(ns_, "s")->durable_seq < 2000 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_EQ(stream_info(ns_, "s")->durable_seq, 2000u);
    CliResult r = run_cli({"fsck", dir.string()});
    expect_ok(r);
    EXPECT_NE(r.out.find("checked 1 stream(s), 1 segment(s), 2000 records"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("live " + ns_ + "/s: a persister is writing it"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("up to sequence 2000"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("clean (live"), std::string::npos) << r.out;
    persister.stop(SIGINT);
  }
  // Stopped: no longer live, the same records.
  CliResult r = run_cli({"fsck", dir.string()});
  expect_ok(r);
  EXPECT_NE(r.out.find("2000 records"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("live"), std::string::npos) << r.out;
  std::filesystem::remove_all(dir);
}

// tail without --group checks its flags the same whether persist/ (open_tail) has it read
// the store then the ring, or the ring: --reset-to without a group is a usage error on a
// persisted stream too (it was ignored there), and --from works on both.
TEST_F(Cli, TailOfAPersistedStreamChecksItsFlagsAsAnyTail) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("shmbus-cli-flags-" + ns_);
  std::filesystem::create_directories(dir);
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all);
  create("s", "1M");
  ASSERT_NO_FATAL_FAILURE(publish_persisted("s", dir, "a\nb\n", 2));
  ASSERT_TRUE(stream_info(ns_, "s")->persist.has_value());
  CliResult bad = cli({"tail", "s", "--reset-to", "0", "--data-dir", dir.string()});
  expect_failure(bad, "--reset-to goes with --group");
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_EQ(bad.out, "");
  CliResult all = cli({"tail", "s", "--data-dir", dir.string()});
  expect_ok(all);
  EXPECT_EQ(all.out, "a\nb\n");
  CliResult from = cli({"tail", "s", "--from", "1", "--data-dir", dir.string()});
  expect_ok(from);
  EXPECT_EQ(from.out, "b\n");
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace shmbus::test
