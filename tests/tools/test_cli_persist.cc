// test_cli_persist.cc: the `shmbus` command on persisted streams: stat of a store,
// rm --data, tail reading the store then the ring, fsck of a live store.
#include <signal.h>

#include <fstream>

#include "cli_test_util.h"

namespace shmbus::test {
namespace {

// A pmem store's kind and granularity in `stat`: persist/'s names (those of
// Persister.stats()), in the JSON and the text.  On a non-DAX file the granularity is
// page: persisting is msync.
TEST_F(Cli, StatOfAPmemStoreNamesItsKindAndGranularityAsPersistDoes) {
  const std::filesystem::path dir = scratch_.path();
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
}

// A deletion at or below the watermark deletes nothing: said so, not reported as one
// (a walkthrough).
TEST_F(Cli, DeleteBelowTheWatermarkSaysNothingNewWasDeleted) {
  create("s");
  expect_ok(cli({"pub", "s"}, "a\nb\nc\nd\ne\n"));
  CliResult first = cli({"delete", "s", "--before", "3"});
  expect_ok(first);
  EXPECT_NE(first.out.find("records below 3 will not be served"), std::string::npos) << first.out;
  for (const char* before : {"2", "3"}) {
    CliResult again = cli({"delete", "s", "--before", before});
    expect_ok(again);
    EXPECT_EQ(again.out, "nothing new deleted: records below " + std::string(before) +
                             " were deleted already (the stream's deletion watermark is 3)\n");
  }
  CliResult zero = cli({"delete", "s", "--before", "0"});
  expect_ok(zero);
  EXPECT_EQ(zero.out, "nothing deleted: no record lies below 0\n");
  CliResult more = cli({"delete", "s", "--before", "4"});
  expect_ok(more);
  EXPECT_NE(more.out.find("records below 4 will not be served"), std::string::npos) << more.out;
  EXPECT_EQ(stream_info(ns_, "s")->deleted_below, 4u);
}

TEST_F(Cli, RmDataOfANeverPersistedStreamSaysItHadNoStore) {
  create("s");
  const std::filesystem::path dir = scratch_.path();
  CliResult r = cli({"rm", "s", "--data", "--data-dir", dir.string()});
  expect_ok(r);
  EXPECT_NE(r.err.find("shmbus: the stream had no store"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("removed the store"), std::string::npos) << r.err;
}

// On a persisted stream an evicted group loses nothing: what left the ring comes from
// the store, in order, then the ring.
TEST_F(Cli, EvictedGroupOnAPersistedStreamReadsTheStore) {
  const std::filesystem::path dir = scratch_.path();
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
    // Publishing all 200 needs slowg evicted (the ring holds fewer); then wait until the
    // persister has made them all durable (as `pub --sync` would, here with the test's
    // own deadline).
    expect_ok(cli({"pub", "ev"}, lines));
    ASSERT_EQ(json_raw(cli({"stat", "ev", "--json"}).out, "evictions"), "1");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (stream_info(ns_, "ev")->durable_seq < 205 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_EQ(stream_info(ns_, "ev")->durable_seq, 205u);

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
}

// The same on a persisted stream, where tail reads the store, then the ring: the ring
// removed (its store kept) is said and waited for; created again over its store (the
// sequence continues), it is followed from where the reader was.  The same with --group
// (a new group in the new ring: it starts where the reader was, not at the store's first
// record, which it printed already).
TEST_F(Cli, TailFollowOfAPersistedStreamNoticesRemovalAndRecreation) {
  for (const bool group : {false, true}) {
    SCOPED_TRACE(group ? "--group g" : "no group");
    const std::filesystem::path dir = scratch_.path();
    create("s", "1M");
    ASSERT_NO_FATAL_FAILURE(publish_persisted("s", dir, "old\n", 1));
    std::vector<std::string> args = {"tail", "s", "-f", "--data-dir", dir.string()};
    if (group) args.insert(args.end(), {"--group", "g"});
    Background bg(with_ns(args));
    ASSERT_NO_FATAL_FAILURE(remove_while_following(bg));
    expect_ok(cli({"create", "s", "--capacity", "1M", "--data-dir", dir.string()}));
    expect_ok(cli({"pub", "s"}, "new1\n"));
    ASSERT_TRUE(bg.wait_for([](const std::string& out, const std::string&) { return out == "old\nnew1\n"; }))
        << bg.out() << bg.err();
    EXPECT_NE(bg.err().find(kCreatedAgainNote), std::string::npos) << bg.err();
    CliResult r = bg.stop(SIGINT);
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 130) << r.err;
    expect_ok(cli({"rm", "s", "--force", "--data", "--data-dir", dir.string()}));
  }
}

// A review of the above (2026-12-04): `tail -f --group` began the new stream at where it
// was in the old one, also when the stream was created again with --fresh (numbering from
// 0): stopped meanwhile (SIGSTOP) while 3000 records lapped the 64K ring, it printed from
// new100 on, said "nothing lost", and skipped new0..new99.  A new sequence is read from
// its earliest record (here the store's), a continued one from where the reader was.
// The same without --group (a review of stop 51: `tail -f` resumed at where it was, and
// skipped new0).
// CI (2026-12-05), the case without --group: the tail was stopped between its look (no
// stream yet) and its open of the stream created meanwhile, and read the new stream from
// where it had been in the old one: new0 skipped unsaid (the look is now checked against
// the stream opened).  And a tail that found the stream created again before its
// persister ran (the third case) read it as a stream that is not persisted: lapped while
// stopped, it printed "records 0..2441: lost (lapped on a stream that is not persisted)"
// of records the store held; a reader now looks for the store again when the ring lets
// records go.
TEST_F(Cli, TailFollowGroupOfAStreamCreatedAgainFreshReadsItFromItsStart) {
  enum Case { kGroup, kNoGroup, kNoGroupAttachedBeforeThePersister };
  for (const Case c : {kGroup, kNoGroup, kNoGroupAttachedBeforeThePersister}) {
  SCOPED_TRACE(c == kGroup ? "--group g" : c == kNoGroup ? "no group" : "no group, attached before the persister");
  const std::filesystem::path dir = scratch_.path();
  create("s");
  ASSERT_NO_FATAL_FAILURE(publish_persisted("s", dir, "old\n", 1));
  std::vector<std::string> args = {"tail", "s", "-f", "--data-dir", dir.string()};
  if (c == kGroup) args.insert(args.end(), {"--group", "g"});
  Background bg(with_ns(args));
  ASSERT_NO_FATAL_FAILURE(remove_while_following(bg));
  const std::vector<std::string> create_again = {"create", "s", "--capacity", "64K", "--fresh", "--data-dir",
                                                 dir.string()};
  if (c == kNoGroupAttachedBeforeThePersister) {
    expect_ok(cli(create_again));
    ASSERT_TRUE(bg.wait_for([](const std::string&, const std::string& err) {
      return err.find(kCreatedAgainNote) != std::string::npos;
    })) << bg.err();
    ASSERT_EQ(::kill(bg.pid(), SIGSTOP), 0);
  } else {
    ASSERT_EQ(::kill(bg.pid(), SIGSTOP), 0);
    expect_ok(cli(create_again));
  }
  std::string lines, want = "old\n";
  for (int i = 0; i < 3000; ++i) lines += "new" + std::to_string(i) + "\n";
  want += lines;
  ASSERT_NO_FATAL_FAILURE(publish_persisted("s", dir, lines, 3000));
  ASSERT_GT(stream_info(ns_, "s")->oldest_seq, 100u);  // lapped while the reader was stopped
  ASSERT_EQ(::kill(bg.pid(), SIGCONT), 0);
  EXPECT_TRUE(bg.wait_for([&](const std::string& out, const std::string&) { return out.size() >= want.size(); }))
      << bg.err();
  EXPECT_EQ(bg.out(), want) << bg.err();
  EXPECT_EQ(bg.err().find("records lost"), std::string::npos) << bg.err();  // (a group's)
  EXPECT_EQ(bg.err().find(": lost"), std::string::npos) << bg.err();        // (a replay's)
  CliResult r = bg.stop(SIGINT);
  EXPECT_EQ(r.exit_code, 130) << r.err;
  expect_ok(cli({"rm", "s", "--force", "--data", "--data-dir", dir.string()}));
  }
}

// A review (2026-12-05): `tail -f` following a stream created again --fresh, persisted
// only after its first ~2000 records had left the ring, began at the store's first record
// and skipped the records before it unsaid (with --group too).  A new sequence is read
// from 0: what the store lacks is said.
TEST_F(Cli, TailFollowOfAStreamCreatedAgainAndPersistedLateSaysWhatTheStoreLacks) {
  for (const bool group : {false, true}) {
    SCOPED_TRACE(group ? "--group g" : "no group");
    const std::filesystem::path dir = scratch_.path();
    create("s");
    ASSERT_NO_FATAL_FAILURE(publish_persisted("s", dir, "old\n", 1));
    std::vector<std::string> args = {"tail", "s", "-f", "--data-dir", dir.string()};
    if (group) args.insert(args.end(), {"--group", "g"});
    Background bg(with_ns(args));
    ASSERT_NO_FATAL_FAILURE(remove_while_following(bg));
    ASSERT_EQ(::kill(bg.pid(), SIGSTOP), 0);
    expect_ok(cli({"create", "s", "--capacity", "64K", "--fresh", "--data-dir", dir.string()}));
    std::string lines;
    for (int i = 0; i < 3000; ++i) lines += "new" + std::to_string(i) + "\n";
    expect_ok(cli({"pub", "s"}, lines));  // nobody persists yet: the ring laps
    const uint64_t oldest = stream_info(ns_, "s")->oldest_seq;
    ASSERT_GT(oldest, 100u);
    ASSERT_NO_FATAL_FAILURE(publish_persisted("s", dir, "more\n", 3001));
    std::string want = "old\n";
    for (uint64_t i = oldest; i < 3000; ++i) want += "new" + std::to_string(i) + "\n";
    want += "more\n";
    ASSERT_EQ(::kill(bg.pid(), SIGCONT), 0);
    EXPECT_TRUE(bg.wait_for([&](const std::string& out, const std::string&) { return out.size() >= want.size(); }))
        << bg.err();
    EXPECT_EQ(bg.out(), want) << bg.err();
    // (A group's loss is the range the ring let go when it looked: [0, 2015), or more of
    // it with the rest from the store.)
    const std::string said = group ? ": " + std::to_string(oldest) + " records lost"
                                   : "records 0.." + std::to_string(oldest - 1) + ": not in the store";
    EXPECT_NE(bg.err().find(said), std::string::npos) << bg.err();
    CliResult r = bg.stop(SIGINT);
    EXPECT_EQ(r.exit_code, 130) << r.err;
    expect_ok(cli({"rm", "s", "--force", "--data", "--data-dir", dir.string()}));
  }
}

// A review (2026-12-05): `tail -f` begun on a stream that was not persisted (its ring
// read) followed the stream created again over its store as a ring reader: lapped, it
// said "lapped: N records lost" of records the store held.  It reads the new one through
// its store, as a tail begun on it does.
TEST_F(Cli, TailFollowOfAPlainStreamCreatedAgainOverItsStoreReadsTheStore) {
  const std::filesystem::path dir = scratch_.path();
  create("s");
  ASSERT_NO_FATAL_FAILURE(publish_persisted("s", dir, "old\n", 1));
  expect_ok(cli({"persist", "s", "--detach"}));  // not persisted; its store stays
  Background bg(with_ns({"tail", "s", "-f", "--data-dir", dir.string()}));
  ASSERT_NO_FATAL_FAILURE(remove_while_following(bg));
  expect_ok(cli({"create", "s", "--capacity", "64K", "--data-dir", dir.string()}));  // over the store
  ASSERT_TRUE(bg.wait_for([](const std::string&, const std::string& err) {
    return err.find(kCreatedAgainNote) != std::string::npos;
  })) << bg.err();
  ASSERT_EQ(::kill(bg.pid(), SIGSTOP), 0);
  std::string lines, want = "old\n";
  for (int i = 1; i <= 3000; ++i) lines += "new" + std::to_string(i) + "\n";
  want += lines;
  ASSERT_NO_FATAL_FAILURE(publish_persisted("s", dir, lines, 3001));
  ASSERT_GT(stream_info(ns_, "s")->oldest_seq, 100u);  // lapped while the reader was stopped
  ASSERT_EQ(::kill(bg.pid(), SIGCONT), 0);
  EXPECT_TRUE(bg.wait_for([&](const std::string& out, const std::string&) { return out.size() >= want.size(); }))
      << bg.err();
  EXPECT_EQ(bg.out(), want) << bg.err();
  EXPECT_EQ(bg.err().find("lost"), std::string::npos) << bg.err();
  CliResult r = bg.stop(SIGINT);
  EXPECT_EQ(r.exit_code, 130) << r.err;
  expect_ok(cli({"rm", "s", "--force", "--data", "--data-dir", dir.string()}));
}

// A review (2026-12-05): `tail -f` following a stream removed (rm --force) while some of
// its records were not stored yet (recorded lost in the store at the removal), then
// created again over its store, printed the store again from 0: it looked for record
// was-1, stamped before the new stream, to tell whether the new one continued, and found
// the lost range.  One whose printed records were deleted (`delete --before`) said
// "records 0..9: deleted" of them.  The new stream's first sequence decides now.
TEST_F(Cli, TailFollowOfAStreamCreatedAgainOverItsStoreNeverPrintsARecordTwice) {
  for (const bool group : {false, true}) {
    for (const bool deleted : {false, true}) {
      SCOPED_TRACE(std::string(group ? "--group g" : "no group") + (deleted ? ", deleted" : ", unstored"));
      const std::filesystem::path dir = scratch_.path();
      create("s");
      std::string printed;
      for (int i = 0; i < 10; ++i) printed += "a" + std::to_string(i) + "\n";
      ASSERT_NO_FATAL_FAILURE(publish_persisted("s", dir, printed, 10));
      if (!deleted) {
        const std::string unstored = "b10\nb11\nb12\nb13\nb14\n";  // its persister stopped
        expect_ok(cli({"pub", "s"}, unstored));
        printed += unstored;
      }
      std::vector<std::string> args = {"tail", "s", "-f", "--data-dir", dir.string()};
      if (group) args.insert(args.end(), {"--group", "g"});
      Background bg(with_ns(args));
      ASSERT_TRUE(bg.wait_for([&](const std::string& out, const std::string&) { return out == printed; }))
          << bg.out() << bg.err();
      if (deleted) expect_ok(cli({"delete", "s", "--before", "10", "--data-dir", dir.string()}));
      expect_ok(cli({"rm", "s", "--force"}));
      ASSERT_TRUE(bg.wait_for([](const std::string&, const std::string& err) {
        return err.find(kRemovedNote) != std::string::npos;
      })) << bg.err();
      expect_ok(cli({"create", "s", "--capacity", "64K", "--data-dir", dir.string()}));  // continues the store
      EXPECT_EQ(stream_info(ns_, "s")->first_seq, deleted ? 10u : 15u);
      expect_ok(cli({"pub", "s"}, "c0\nc1\nc2\n"));
      const std::string want = printed + "c0\nc1\nc2\n";
      EXPECT_TRUE(bg.wait_for([&](const std::string& out, const std::string&) { return out.size() >= want.size(); }))
          << bg.err();
      EXPECT_EQ(bg.out(), want) << bg.err();
      for (const char* word : {"deleted", "lost", "not persisted", "not in the store"})
        EXPECT_EQ(bg.err().find(word), std::string::npos) << word << ": " << bg.err();
      CliResult r = bg.stop(SIGINT);
      EXPECT_EQ(r.exit_code, 130) << r.err;
      expect_ok(cli({"rm", "s", "--force", "--data", "--data-dir", dir.string()}));
    }
  }
}

// A walkthrough (2026-12-04): `rm` without --force removed a persisted stream whose
// stopped persister had not stored its last records: they were gone, and `create` over
// the store gave their sequence numbers to new records.  It refuses now, saying how many
// are not stored; once they are, or with --force, it removes the stream.
// stat of a stored-only stream whose store cannot be read says its range is unknown, not
// "no records (next sequence 0)" as a fact (a review: a damaged segment header).
TEST_F(Cli, StatOfADamagedStoreSaysItsRangeIsUnknown) {
  const std::filesystem::path dir = scratch_.path();
  create("s");
  ASSERT_NO_FATAL_FAILURE(publish_persisted("s", dir, "a\nb\nc\n", 3));
  expect_ok(cli({"rm", "s", "--force"}));
  const std::filesystem::path seg = dir / ns_ / "s" / (std::string(20, '0') + ".seg");
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f);
    f.seekp(40);
    f.put('\x7f');  // inside the header's namespace name: its CRC fails
  }
  CliResult text = cli({"stat", "s", "--data-dir", dir.string()});
  expect_ok(text);
  EXPECT_NE(text.out.find("stored            range unknown: "), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("no records"), std::string::npos) << text.out;
  CliResult json = cli({"stat", "s", "--json", "--data-dir", dir.string()});
  expect_ok(json);
  EXPECT_NE(json_raw(json.out, "store_range_error"), "") << json.out;
  expect_ok(cli({"rm", "s", "--data", "--data-dir", dir.string()}));
}

// rm --force while a persister (here stalled) holds the store: the records are not
// recorded as lost (the persister stores them from its mapping when it runs again, if it
// can), and rm says so (the path first dereferenced the error).
TEST_F(Cli, RmForceWhileAPersisterHoldsTheStoreSaysItStoresThemIfItCan) {
  const std::filesystem::path dir = scratch_.path();
  create("s");
  Background persister(with_ns({"persist", "s", "--data-dir", dir.string()}));
  ASSERT_TRUE(persister.wait_for(
      [](const std::string&, const std::string& e) { return e.find("persisting") != std::string::npos; }))
      << persister.err();
  ASSERT_EQ(::kill(persister.pid(), SIGSTOP), 0);
  expect_ok(cli({"pub", "s"}, "a\nb\n"));
  ASSERT_LT(stream_info(ns_, "s")->durable_seq, 2u);
  CliResult r = cli({"rm", "s", "--force"});
  ::kill(persister.pid(), SIGCONT);
  expect_ok(r);
  EXPECT_NE(r.err.find("records 0..1 were not stored yet and could not be recorded as lost"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("the persister holding the store stores them if it can"), std::string::npos) << r.err;
  // It notices the removal by itself (within 100 ms), stores both and stops (exit 1); before,
  // it ran on with the removed ring and held the store until stopped.
  EXPECT_TRUE(persister.wait_for([](const std::string&, const std::string& e) {
    return e.find("a persister stopped: stream ") != std::string::npos;
  })) << persister.err();
  CliResult stopped = persister.stop(SIGTERM);
  EXPECT_EQ(stopped.exit_code, 1) << stopped.err;
  EXPECT_NE(stopped.err.find("was removed while persisted"), std::string::npos) << stopped.err;
  expect_ok(cli({"create", "s", "--data-dir", dir.string()}));
  EXPECT_EQ(stream_info(ns_, "s")->next_seq, 2u) << "the persister stored both from its mapping";
  expect_ok(cli({"rm", "s", "--force", "--data", "--data-dir", dir.string()}));
}

// `shmbus persist s s` said "another writer has DIR/NS/s open" (its second persister met
// the first's store) and exited 1: a usage error, said as one, and nothing is started.
TEST_F(Cli, PersistOfAStreamNamedTwiceIsAUsageError) {
  const std::filesystem::path dir = scratch_.path();
  create("s");
  for (const char* flag : {"", "--detach"}) {
    SCOPED_TRACE(flag);
    std::vector<std::string> args = {"persist", "s", "t", "s", "--data-dir", dir.string()};
    if (*flag) args.push_back(flag);
    CliResult r = cli(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("stream 's' is named twice"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(stream_info(ns_, "s")->persist);
  EXPECT_FALSE(std::filesystem::exists(dir / ns_ / "s"));
}

// `shmbus persist a b` with a's ring removed (rm --force): a's persister stores what it
// read and stops, said at once; b's goes on until ^C, and the command exits 1 (a review:
// the first to stop ended both, and b's stop lines were never printed).
TEST_F(Cli, PersistOfTwoStreamsGoesOnWithTheOtherWhenOneIsRemoved) {
  const std::filesystem::path dir = scratch_.path();
  create("a");
  create("b");
  Background persister(with_ns({"persist", "a", "b", "--data-dir", dir.string()}));
  ASSERT_NO_FATAL_FAILURE(wait_persisting(persister));
  expect_ok(cli({"pub", "a"}, "x\n"));
  expect_ok(cli({"rm", "a", "--force"}));
  ASSERT_TRUE(persister.wait_for([](const std::string&, const std::string& e) {
    return e.find("a persister stopped: stream ") != std::string::npos;
  })) << persister.err();
  EXPECT_NE(persister.err().find("/a was removed while persisted"), std::string::npos) << persister.err();
  expect_ok(cli({"pub", "b"}, "y\nz\n"));
  EXPECT_TRUE(eventually([&] { return stream_info(ns_, "b")->durable_seq == 2; }))
      << "b's persister stopped with a's";
  CliResult r = persister.stop(SIGINT);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("shmbus: b: stored 2 records"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("stream 'b' stays persisted"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("stream 'a' stays persisted"), std::string::npos) << r.err;
  expect_ok(cli({"rm", "b", "--force", "--data", "--data-dir", dir.string()}));
  expect_ok(cli({"create", "a", "--data-dir", dir.string()}));
  EXPECT_EQ(stream_info(ns_, "a")->next_seq, 1u) << "a continues its store";
  expect_ok(cli({"rm", "a", "--force", "--data", "--data-dir", dir.string()}));
}

TEST_F(Cli, RmRefusesAPersistedStreamWithRecordsNotStoredYet) {
  const std::filesystem::path dir = scratch_.path();
  create("s");
  ASSERT_NO_FATAL_FAILURE(publish_persisted("s", dir, "a\n", 1));
  expect_ok(cli({"pub", "s"}, "b\nc\n"));
  CliResult r = cli({"rm", "s"});
  expect_failure(r, "stream 's' holds 2 records its persister has not stored yet (from sequence 1)");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  ASSERT_TRUE(stream_info(ns_, "s"));
  ASSERT_NO_FATAL_FAILURE(publish_persisted("s", dir, "", 3));
  expect_ok(cli({"rm", "s"}));
  expect_ok(cli({"create", "s", "--capacity", "64K", "--data-dir", dir.string()}));
  expect_ok(cli({"pub", "s"}, "d\n"));
  expect_failure(cli({"rm", "s"}), "holds 1 records");
  // --force loses it, and says so; the store records it as lost, so a ring created over
  // the store continues after it: the number 3 is not given to a new record (it was:
  // a bridge that had sent 3 skipped the new record as sent).
  // A --data-dir that is not where the header says the store is: refused (the records
  // could not be recorded as lost there).  Without one, the header's store is used.
  const std::string elsewhere = (dir / "elsewhere").string();
  expect_failure(cli({"rm", "s", "--force", "--data-dir", elsewhere}),
                 "give the --data-dir its header names so that they are recorded as lost there, or --data");
  ASSERT_TRUE(stream_info(ns_, "s"));
  CliResult forced = cli({"rm", "s", "--force"});
  expect_ok(forced);
  EXPECT_EQ(forced.err, "shmbus: 1 records up to sequence 3 were never stored: recorded as lost in the store, "
                        "so a ring created over it continues at 4\n");
  expect_ok(cli({"create", "s", "--capacity", "64K", "--data-dir", dir.string()}));
  EXPECT_EQ(stream_info(ns_, "s")->next_seq, 4u);
  expect_ok(cli({"pub", "s"}, "e\n"));
  CliResult all = cli({"tail", "s", "--format", "json", "--data-dir", dir.string()});
  expect_ok(all);
  std::vector<std::string> seqs;
  for (const auto& l : lines_of(all.out)) seqs.push_back(json_raw(l, "seq") + "=" + json_raw(l, "data"));
  EXPECT_EQ(seqs, (std::vector<std::string>{"0=\"a\"", "1=\"b\"", "2=\"c\"", "4=\"e\""})) << all.out << all.err;
  EXPECT_EQ(all.err, "shmbus: record 3: not persisted\n");
  expect_ok(cli({"rm", "s", "--force", "--data", "--data-dir", dir.string()}));
}

// A walkthrough (2026-12-04): `fsck /etc` said "checked 57 stream(s) ... clean", and fsck
// of a namespace's folder (one level too deep) "checked 0 stream(s) ... clean": a folder
// that holds no store file is no store (and --repair writes nothing into it), and a run
// that found no store says so and fails.
TEST_F(Cli, FsckOfAFolderWithoutStoresSaysSoAndWritesNothing) {
  const std::filesystem::path dir = scratch_.path();
  std::filesystem::create_directories(dir / "etc" / "app" / "conf.d");
  { std::ofstream(dir / "etc" / "app" / "conf.d" / "x.conf") << "x=1\n"; }
  for (const bool repair : {false, true}) {
    std::vector<std::string> args = {"fsck", (dir / "etc").string()};
    if (repair) args.push_back("--repair");
    CliResult r = run_cli(args);
    expect_failure(r, "no store under " + (dir / "etc").string() + ": nothing checked");
    EXPECT_EQ(r.exit_code, 1) << r.err;
  }
  size_t files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir / "etc"))
    files += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(files, 1u) << "fsck --repair wrote into a folder that is no store";
  create("s");
  ASSERT_NO_FATAL_FAILURE(publish_persisted("s", dir / "data", "a\n", 1));
  CliResult ns_dir = run_cli({"fsck", (dir / "data" / ns_).string()});  // one level too deep
  expect_failure(ns_dir, "no store under");
  CliResult ok = run_cli({"fsck", (dir / "data").string()});
  expect_ok(ok);
  EXPECT_NE(ok.out.find("checked 1 stream(s), 1 segment(s), 1 records"), std::string::npos) << ok.out;
  if (::geteuid() == 0) {
    // A store whose folders are another user's is reported and left alone, not "no
    // store" (a review: the report's only store being left alone printed that).
    const std::string ns_folder = (dir / "data" / ns_).string();
    ASSERT_EQ(::chown(ns_folder.c_str(), 65534, 65534), 0);
    CliResult other = run_cli({"fsck", (dir / "data").string(), "--repair"});
    EXPECT_EQ(other.exit_code, 1) << other.err;
    EXPECT_EQ(other.err.find("no store under"), std::string::npos) << other.err;
    std::string problem = "PROBLEM ";  // (appended: g++ 12's -Wrestrict misfires on a + chain)
    problem += ns_;
    problem += "/s";
    EXPECT_NE(other.out.find(problem), std::string::npos) << other.out;
    EXPECT_NE(other.out.find("not repaired"), std::string::npos) << other.out;
    ASSERT_EQ(::chown(ns_folder.c_str(), 0, 0), 0);
  }
  // A store whose only problem --repair cannot fix (a damaged settings file) is not sent
  // to --repair, which said the same again (a review); a fixable one still is.
  const std::filesystem::path store = dir / "data" / ns_ / "s";
  { std::ofstream(store / "settings", std::ios::binary | std::ios::trunc) << std::string(64, 'x'); }
  for (const bool repair : {false, true}) {
    std::vector<std::string> args = {"fsck", (dir / "data").string()};
    if (repair) args.push_back("--repair");
    CliResult damaged = run_cli(args);
    expect_failure(damaged, "1 problem(s) found; --repair cannot fix it (see its PROBLEM line)");
    EXPECT_EQ(damaged.err.find("run with --repair"), std::string::npos) << damaged.err;
  }
  { std::ofstream(store / "00000000000000000099.idx") << "x"; }  // an index without its segment
  CliResult fixable = run_cli({"fsck", (dir / "data").string()});
  expect_failure(fixable, "2 problem(s) found; run with --repair to fix what can be fixed");
  // After --repair: the count is of what is left, and says that it cannot be fixed.
  CliResult repaired = run_cli({"fsck", (dir / "data").string(), "--repair"});
  expect_failure(repaired, "1 problem(s) found (1 more repaired); --repair cannot fix it");
  expect_ok(cli({"rm", "s", "--force", "--data", "--data-dir", (dir / "data").string()}));
}

// CRC-32C (Castagnoli), bit by bit: a segment header edited by a test gets a valid CRC.
uint32_t crc32c_bitwise(const unsigned char* p, size_t n) {
  uint32_t c = ~0u;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
  }
  return ~c;
}

// A segment header naming another stream, with an ESC in the name (its CRC valid): fsck
// reports it with the name as terminal text (its lines went out raw: a review).
TEST_F(Cli, FsckQuotesNamesFromSegmentHeadersAsTerminalText) {
  const std::filesystem::path dir = scratch_.path();
  create("s");
  ASSERT_NO_FATAL_FAILURE(publish_persisted("s", dir / "data", "a\n", 1));
  const std::filesystem::path seg = dir / "data" / ns_ / "s" / "00000000000000000000.seg";
  std::string b;
  {
    std::ifstream in(seg, std::ios::binary);
    b.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_GE(b.size(), 256u);
  auto crc_at_252 = [&] {
    return static_cast<uint32_t>(static_cast<unsigned char>(b[252])) |
           static_cast<uint32_t>(static_cast<unsigned char>(b[253])) << 8 |
           static_cast<uint32_t>(static_cast<unsigned char>(b[254])) << 16 |
           static_cast<uint32_t>(static_cast<unsigned char>(b[255])) << 24;
  };
  const auto* bytes = reinterpret_cast<const unsigned char*>(b.data());
  ASSERT_EQ(crc32c_bitwise(bytes, 252), crc_at_252()) << "the header's CRC is not CRC-32C over 252 bytes";
  b[33] = '\x1b';  // the namespace's first byte (offset 33, after its length at 32)
  const uint32_t crc = crc32c_bitwise(bytes, 252);
  for (int i = 0; i < 4; ++i) b[252 + i] = static_cast<char>(crc >> (8 * i));
  {
    std::ofstream out(seg, std::ios::binary | std::ios::trunc);
    out << b;
  }
  CliResult r = run_cli({"fsck", (dir / "data").string()});
  expect_failure(r, "problem(s) found");
  EXPECT_NE(r.out.find("header names stream \\x1b"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << "a raw ESC reached stdout";
  expect_ok(cli({"rm", "s", "--force", "--data", "--data-dir", (dir / "data").string()}));
}

// A walkthrough (2026-12-04): a stream created again over its store with no persister
// running said "holds producers" in stat, but nothing did: records that left the ring
// before a persister started were never stored, unsaid.  create registers the persister's
// group at the first new record, as a stopped persister leaves it: producers wait, and
// the persister started later stores every record.
TEST_F(Cli, CreateOverAStoreHoldsProducersUntilAPersisterComes) {
  const std::filesystem::path dir = scratch_.path();
  create("s", "4K");
  ASSERT_NO_FATAL_FAILURE(publish_persisted("s", dir, "a\n", 1));
  expect_ok(cli({"rm", "s"}));
  expect_ok(cli({"create", "s", "--capacity", "4K", "--data-dir", dir.string()}));
  // Before a persister runs again its counters are not in the header: the store's size
  // is read from the store (it was "0 segment(s), 0 B on disk": a review).
  CliResult st = cli({"stat", "s", "--json", "--interval", "0"});
  EXPECT_EQ(json_raw(st.out, "segments"), "1") << st.out;
  EXPECT_NE(json_raw(st.out, "disk_bytes"), "0") << st.out;
  std::string lines;
  for (int i = 1; i < 300; ++i) lines += "r" + std::to_string(i) + "\n";  // ~5 rings of 4K
  CliResult full = cli({"pub", "s", "--full-timeout", "300ms"}, lines);
  expect_failure(full, "the persister (consumer group '_persister')");
  const uint64_t next = stream_info(ns_, "s")->next_seq;
  ASSERT_GT(next, 1u);
  ASSERT_LT(next, 300u);
  ASSERT_NO_FATAL_FAILURE(publish_persisted("s", dir, "", next));
  CliResult all = cli({"tail", "s", "--from", "earliest", "--data-dir", dir.string()});
  expect_ok(all);
  EXPECT_EQ(all.err, "");
  std::string want = "a\n";
  for (uint64_t i = 1; i < next; ++i) want += "r" + std::to_string(i) + "\n";
  EXPECT_EQ(all.out, want);
  expect_ok(cli({"rm", "s", "--force", "--data", "--data-dir", dir.string()}));
}

// ---- issue 13 point 13: fsck of a store a persister is writing --------------------------

TEST_F(Cli, FsckOfALiveStoreSaysLiveAndCountsWhatIsWritten) {
  const std::filesystem::path dir = scratch_.path();
  create("s", "1M");
  {
    Background persister(with_ns({"persist", "s", "--data-dir", dir.string()}));
    ASSERT_NO_FATAL_FAILURE(wait_persisting(persister));
    expect_ok(cli({"pub", "s", "--count", "2000", "--size", "32"}));
    ASSERT_NO_FATAL_FAILURE(wait_durable("s", 2000));
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
}

// tail without --group checks its flags the same whether persist/ (open_tail) has it read
// the store then the ring, or the ring: --reset-to without a group is a usage error on a
// persisted stream too (it was ignored there), and --from works on both.
TEST_F(Cli, TailOfAPersistedStreamChecksItsFlagsAsAnyTail) {
  const std::filesystem::path dir = scratch_.path();
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
}

// An aborted claim is a gap nothing was published under: `tail` of a persisted stream
// read from the store said "record 1: never published (claims aborted or abandoned)" on
// stderr, where a tail of the ring says nothing (left in stop 44's note).  A real loss is
// still told (LappedTailReportsLostRecords, EvictedGroupIsToldWhatItLost).
TEST_F(Cli, TailOfAPersistedStreamSaysNothingOfAnAbortedClaim) {
  const std::filesystem::path dir = scratch_.path();
  create("s", "1M");
  ASSERT_NO_FATAL_FAILURE(persist_while("s", dir, 3, [&] {
    auto p = Producer::open(ns_, "s");
    ASSERT_TRUE(p) << p.error().message;
    ASSERT_TRUE(p->publish(std::string_view("a")).ok());
    {
      PubStatus st{};
      Claim c = p->claim(8, 0, &st);
      ASSERT_EQ(st, PubStatus::kOk);
      c.abort();
    }
    ASSERT_TRUE(p->publish(std::string_view("c")).ok());
  }));
  for (const bool ring : {true, false}) {
    SCOPED_TRACE(ring ? "store, then the ring" : "the store alone");
    if (!ring) expect_ok(cli({"rm", "s", "--data-dir", dir.string()}));
    CliResult all = cli({"tail", "s", "--data-dir", dir.string()});
    expect_ok(all);
    EXPECT_EQ(all.out, "a\nc\n");
    EXPECT_EQ(all.err, "");
  }
}

}  // namespace
}  // namespace shmbus::test
