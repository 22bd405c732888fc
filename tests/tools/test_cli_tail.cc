// test_cli_tail.cc: `shmbus tail` (and what pub feeds it) on a ring: formats, --from,
// groups, lost and evicted records, -f following the stream's name.
#include "cli_test_util.h"

namespace shmbus::test {
namespace {

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
  // A start past the end prints nothing, exits 0, and says why (a mistyped sequence
  // looked like an empty stream); the end itself and -f say nothing.
  CliResult past = cli({"tail", "s", "--from", "50"});
  expect_ok(past);
  EXPECT_EQ(past.out, "");
  EXPECT_NE(past.err.find("--from 50 is past the stream's end (its next sequence is 5)"), std::string::npos)
      << past.err;
  CliResult future = cli({"tail", "s", "--from", "@2099-01-01"});
  expect_ok(future);
  EXPECT_NE(future.err.find("--from @2099-01-01 is in the future"), std::string::npos) << future.err;
  EXPECT_EQ(cli({"tail", "s", "--from", "5"}).err, "");
  expect_ok(cli({"tail", "s", "--group", "g", "--count", "1"}));
  CliResult reset = cli({"tail", "s", "--group", "g", "--reset-to", "9"});
  EXPECT_NE(reset.err.find("--reset-to 9 is past the stream's end"), std::string::npos) << reset.err;
  CliResult fresh = cli({"tail", "s", "--group", "new", "--from", "50"});  // a new group starts there
  EXPECT_NE(fresh.err.find("--from 50 is past the stream's end"), std::string::npos) << fresh.err;
  CliResult known = cli({"tail", "s", "--group", "g", "--from", "50"});  // an existing one does not
  EXPECT_EQ(known.err.find("past the stream's end"), std::string::npos) << known.err;
  CliResult ahead = cli({"pub", "s"}, "f\n");
  expect_ok(ahead);
  Background waits(with_ns({"tail", "s", "-f", "--from", "6", "--count", "1"}));
  expect_ok(cli({"pub", "s"}, "g\n"));
  ASSERT_TRUE(waits.wait_for([](const std::string& out, const std::string&) { return out == "g\n"; }))
      << waits.err();
  CliResult got = waits.stop(SIGTERM);
  EXPECT_EQ(got.out, "g\n");
  EXPECT_EQ(got.err, "");
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
  // That is said, not silently done (a walkthrough).
  CliResult from = cli({"tail", "s", "--group", "g", "--from", "6"});
  expect_ok(from);
  EXPECT_EQ(from.out, "");
  EXPECT_EQ(from.err, "shmbus: --from 6 is where a new group starts: group 'g' exists and continues "
                      "at sequence 8 (--reset-to 6 moves it)\n");
  EXPECT_EQ(cli({"tail", "s", "--group", "g", "--reset-to", "6"}).out, "7\n8\n");
  CliResult fresh = cli({"tail", "s", "--group", "new", "--from", "6"});
  expect_ok(fresh);
  EXPECT_EQ(fresh.out, "7\n8\n");
  EXPECT_EQ(fresh.err, "");
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
  // The unit it suggests is the one it took (it suggested `s` for a number read as ms).
  EXPECT_NE(bare.err.find("(here @4000000000s)"), std::string::npos) << bare.err;
  CliResult ms = cli({"tail", "s", "--from", "@4000000000000"});
  expect_ok(ms);
  EXPECT_NE(ms.err.find("read as milliseconds"), std::string::npos) << ms.err;
  EXPECT_NE(ms.err.find("(here @4000000000000ms)"), std::string::npos) << ms.err;
  // With a unit, no note on the unit; a time in the future is said to be (nothing to
  // print without -f), @now is not.
  for (const char* from : {"@4000000000s", "@4000000000000ms", "@4000000000000000us",
                           "@4000000000000000000ns", "@2096-10-02", "@2096-10-02T07:06:40Z",
                           "@2096-10-02T08:06:40+01:00", "@2096-10-02T02:06:40-0500"}) {
    CliResult r = cli({"tail", "s", "--from", from});
    expect_ok(r);
    EXPECT_EQ(r.out, "") << from;
    EXPECT_EQ(r.err, std::string("shmbus: --from ") + from + " is in the future (2096-10-02T" +
                         (std::string(from) == "@2096-10-02" ? "00:00:00" : "07:06:40") +
                         ".000Z): nothing to print without -f, which waits for it\n");
  }
  CliResult now = cli({"tail", "s", "--from", "@now"});
  expect_ok(now);
  EXPECT_EQ(now.out, "");
  EXPECT_EQ(now.err, "");
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
  // A printable delimiter inside a record is escaped too (it stayed: "a,b" printed as two
  // records), and so is a record holding a backslash ("a\x0ab" as text printed as a
  // record holding a newline does): every line decodes back to its record (a review).
  create("d");
  expect_ok(cli({"pub", "d", "-0"}, std::string("a,b\0c\0a\\x0ab\0a\nb\0,,\0", 20)));
  CliResult commas = cli({"tail", "d", "-D", ","});
  expect_ok(commas);
  EXPECT_EQ(commas.out, "a\\x2cb,c,a\\\\x0ab,a\nb,\\x2c\\x2c,");
  CliResult lines = cli({"tail", "d"});
  EXPECT_EQ(lines.out, "a,b\nc\na\\\\x0ab\na\\x0ab\n,,\n");
  // A delimiter that overlaps itself across a record's end: "a-" then "b" printed as
  // "a---b--", the same as "a" then "-b" (review of the fix).
  create("o");
  expect_ok(cli({"pub", "o", "-0"}, std::string("a-\0b\0a\0-b\0x---y\0", 16)));
  CliResult dashes = cli({"tail", "o", "-D", "--"});
  expect_ok(dashes);
  EXPECT_EQ(dashes.out, "a\\x2d--b--a---b--x\\x2d\\x2d-y--");
  CliResult hexdelim = cli({"tail", "d", "-D", "end"});
  expect_failure(hexdelim, "text output escapes a delimiter found inside a record");
  EXPECT_EQ(hexdelim.exit_code, 2);
  expect_ok(cli({"tail", "d", "-D", "end", "--format", "raw"}));
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
  // An empty -D (an unset "$SEP") published lines; --count 0 printed every record (a review).
  CliResult empty = cli({"pub", "s", "-D", ""}, "a,b");
  expect_failure(empty, "-D: the delimiter is empty");
  EXPECT_EQ(empty.exit_code, 2);
  CliResult none = cli({"tail", "s", "--count", "0"});
  expect_ok(none);
  EXPECT_EQ(none.out, "");
  expect_failure(cli({"pub", "s", "--count", "1", "--file", "-"}), "choose one");
  // The escape is quoted as typed, once (it was doubled: '\\q', known: \\n ...).
  CliResult escape = cli({"pub", "s", "-D", "\\q"});
  expect_failure(escape, "-D: '\\q' has an unknown escape (known: \\n \\t \\r \\0 \\\\ \\xNN)");
  EXPECT_EQ(cli({"tail", "s", "-D", "\\q"}).err, escape.err);
  // tail -D '': raw records back to back; text records need a delimiter (an empty one
  // was taken for none given, and newlines came out: a review).
  CliResult joined = cli({"tail", "s", "--format", "raw", "-D", "", "--count", "3"});
  expect_ok(joined);
  EXPECT_EQ(joined.out, "one\nlinetwothree");
  // Choices are taken in any case, and mean the same (--format JSON printed text, and
  // --format RAW -D '' was refused as "-D goes with --format text or raw": a review).
  CliResult upper = cli({"tail", "s", "--format", "RAW", "-D", "", "--count", "3"});
  expect_ok(upper);
  EXPECT_EQ(upper.out, joined.out);
  CliResult json_upper = cli({"tail", "s", "--format", "JSON", "--count", "1"});
  expect_ok(json_upper);
  EXPECT_EQ(json_raw(json_upper.out, "seq"), "0") << json_upper.out;
  CliResult latest_upper = cli({"tail", "s", "--from", "LATEST"});
  expect_ok(latest_upper);
  EXPECT_EQ(latest_upper.out, "");
  CliResult text_empty = cli({"tail", "s", "-D", ""});
  expect_failure(text_empty, "-D: the delimiter is empty (text records need one between them");
  EXPECT_EQ(text_empty.exit_code, 2);
  EXPECT_EQ(text_empty.out, "");
  expect_failure(cli({"tail", "s", "--format", "hex", "-D", "|"}), "-D goes with");
  expect_failure(cli({"tail", "s", "--encoding", "hex"}), "--encoding goes with");
  expect_failure(cli({"pub", "s", "--file", "/nonexistent/x"}), "/nonexistent/x");
}

// ---- issue 13 point 2: records a reader skips are never skipped silently ----------------

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
  EXPECT_EQ(json_raw(st.out, "owed_from"), "null") << st.out;  // told: nothing owed
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
    ASSERT_NO_FATAL_FAILURE(remove_while_following(bg));
    // Waiting for the name costs (almost) no CPU: no busy loop.
    const long before = cpu_ticks(bg.pid());
    std::this_thread::sleep_for(std::chrono::seconds(2));
    EXPECT_LT(cpu_ticks(bg.pid()) - before, sysconf(_SC_CLK_TCK) / 4) << "busy-looping while waiting";
    create("s");
    expect_ok(cli({"pub", "s"}, "new1\nnew2\n"));
    ASSERT_TRUE(bg.wait_for([](const std::string& out, const std::string&) {
      return out == "old\nnew1\nnew2\n";
    })) << bg.out() << bg.err();  // the new stream from its start
    EXPECT_NE(bg.err().find(kCreatedAgainNote),
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

}  // namespace
}  // namespace shmbus::test
