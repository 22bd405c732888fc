// test_stat.cc: tools/stat (shmbus::stat), the stat document of `shmbus stat` and Python's
// shmbus.stat(), in-process: the names it takes from persist/, the frame overhead, the
// extra keys the CLI adds.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "shmbus/json.h"
#include "shmbus/persist.h"
#include "shmbus/persister.h"
#include "shmbus/stat.h"
#include "../common/scratch.h"

namespace shmbus {
namespace {

using persist::PmemGranularity;

StreamInfo persisted(uint32_t granularity_code) {
  StreamInfo s;
  s.ns = "n";
  s.name = "s";
  s.persist = PersistSettings{};
  s.persist->store_dir = "/d/n/s";
  s.persist->store_kind = StoreKind::kPmem;
  s.pmem_granularity_code = granularity_code;
  return s;
}

// The value of `"key":"..."` in a one-line document.
std::string string_field(const std::string& doc, const std::string& key) {
  const std::string k = "\"" + key + "\":\"";
  const size_t at = doc.find(k);
  if (at == std::string::npos) return "<no key " + key + ">";
  const size_t from = at + k.size();
  return doc.substr(from, doc.find('"', from) - from);
}

TEST(Stat, GranularityIsPersistsNameOfThePublishedCode) {
  // The persister publishes granularity_code(); stat shows granularity_name() of it,
  // the spelling of Persister.stats() ("cache-line", "page").
  for (auto g : {PmemGranularity::kByte, PmemGranularity::kCacheLine, PmemGranularity::kPage}) {
    const StreamStat st = compute_stat(persisted(persist::granularity_code(g)), nullptr, 0, 1.0);
    EXPECT_EQ(st.pmem_granularity, persist::granularity_name(g));
    EXPECT_EQ(string_field(stat_json(st), "pmem_granularity"), persist::granularity_name(g));
  }
  EXPECT_EQ(compute_stat(persisted(2), nullptr, 0, 1.0).pmem_granularity, "cache-line");
  EXPECT_EQ(compute_stat(persisted(3), nullptr, 0, 1.0).pmem_granularity, "page");
  // Not pmem, or a code this version does not know (shared memory is not trusted): "".
  for (uint32_t code : {0u, 4u, 0xffffffffu})
    EXPECT_EQ(string_field(stat_json(compute_stat(persisted(code), nullptr, 0, 1.0)), "pmem_granularity"), "")
        << code;
}

TEST(Stat, GranularityCodesRoundTrip) {
  for (auto g : {PmemGranularity::kNotPmem, PmemGranularity::kByte, PmemGranularity::kCacheLine,
                 PmemGranularity::kPage})
    EXPECT_EQ(persist::granularity_from_code(persist::granularity_code(g)), g);
  // The codes of shm/FORMAT.md (StreamHeader pmem_granularity).
  EXPECT_EQ(persist::granularity_code(PmemGranularity::kByte), 1u);
  EXPECT_EQ(persist::granularity_code(PmemGranularity::kCacheLine), 2u);
  EXPECT_EQ(persist::granularity_code(PmemGranularity::kPage), 3u);
  EXPECT_EQ(persist::granularity_from_code(4), PmemGranularity::kNotPmem);
}

TEST(Stat, StoreKindIsAnEnumNamedByPersist) {
  EXPECT_EQ(std::string(persist::store_kind_name(StoreKind::kFile)), "file");
  EXPECT_EQ(std::string(persist::store_kind_name(StoreKind::kPmem)), "pmem");
  EXPECT_EQ(persist::parse_store_kind("file"), StoreKind::kFile);
  EXPECT_EQ(persist::parse_store_kind("pmem"), StoreKind::kPmem);
  EXPECT_EQ(persist::parse_store_kind("PMEM"), std::nullopt);
  EXPECT_EQ(persist::parse_store_kind(""), std::nullopt);
  StreamStat st = compute_stat(persisted(0), nullptr, 0, 1.0);
  const std::string doc = stat_json(st);
  EXPECT_EQ(string_field(doc, "store_kind"), "pmem");
  EXPECT_EQ(string_field(doc, "store"), "pmem");
  StreamInfo plain;
  EXPECT_EQ(string_field(stat_json(compute_stat(plain, nullptr, 0, 1.0)), "store"), "");
  EXPECT_NE(stat_json(compute_stat(plain, nullptr, 0, 1.0)).find("\"persist\":null"), std::string::npos);
}

TEST(Stat, ProjectedStoreBytesUsePersistsFrameOverhead) {
  // A 32-byte frame header padded to 8 bytes: 32 + 4 per record on average; a record of
  // up to 256 bytes shares a batch frame: 16 + 4, and 32 bytes per 4 KiB of those.
  static_assert(persist::kStoreBytesPerRecord == 36);
  static_assert(persist::store_bytes_per_record(1000) == 36);
  static_assert(persist::store_bytes_per_record(257) == 36);
  static_assert(persist::store_bytes_per_record(64) == 20 + 32 * 84 / 4096.0);
  static_assert(persist::store_bytes_per_record(256) == 20 + 32 * 276 / 4096.0);
  StreamInfo before = persisted(0);
  before.persist->retention_age = std::chrono::seconds(100);
  StreamInfo after = before;
  after.next_seq = 1000;
  after.bytes_published = 64000;
  const StreamStat st = compute_stat(after, &before, 2.0, 1.0);
  ASSERT_TRUE(st.rates);
  EXPECT_DOUBLE_EQ(st.rates->lambda_records_per_s, 500);
  EXPECT_DOUBLE_EQ(st.rates->lambda_bytes_per_s, 32000);
  ASSERT_TRUE(st.plan.projected_store_bytes);
  EXPECT_DOUBLE_EQ(*st.plan.projected_store_bytes, (32000 + 500 * (20 + 32 * 84 / 4096.0)) * 100);
  ASSERT_TRUE(st.plan.ring_bytes_for_stall);
  EXPECT_DOUBLE_EQ(*st.plan.ring_bytes_for_stall, (32000 + 500 * 48.0) * 1.0);
  EXPECT_NE(stat_json(st).find("\"projected_store_bytes\":4232812.500,"), std::string::npos)
      << stat_json(st);
  // Records of 1000 bytes: a data frame each.
  after.bytes_published = 1'000'000;
  const StreamStat big = compute_stat(after, &before, 2.0, 1.0);
  EXPECT_DOUBLE_EQ(*big.plan.projected_store_bytes, (500000 + 500 * 36.0) * 100);
}

TEST(Stat, OneSnapshotHasNoRates) {
  const StreamStat st = compute_stat(persisted(0), nullptr, 0, 1.0);
  EXPECT_FALSE(st.rates);
  const std::string doc = stat_json(st);
  EXPECT_NE(doc.find("\"interval_s\":0.000,\"lambda_records_per_s\":null,"), std::string::npos) << doc;
}

TEST(Stat, MoreKeysGoAtTheEndOfTheObject) {
  const StreamStat st = compute_stat(persisted(0), nullptr, 0, 1.0);
  const std::string plain = stat_json(st);
  const std::string more = stat_json(st, [](JsonWriter& w) { w.key("bridges").begin_array().end_array(); });
  ASSERT_EQ(plain.back(), '}');
  EXPECT_EQ(more, plain.substr(0, plain.size() - 1) + ",\"bridges\":[]}");
  EXPECT_EQ(stat_json(st, [](JsonWriter&) {}), plain);  // writing nothing adds nothing
}

// `stat` reads what a running persister published in the stream header; the persister
// asks its store.  Both name the store's kind and granularity the same way (before the
// fix: "page (msync)" against "page", "cache line" against "cache-line").
// PMEM2_FORCE_GRANULARITY=cache_line makes libpmem2 map a non-DAX file as if it were.
// `want`: the granularity expected ("": not pmem).
void expect_stat_agrees_with_persister(StoreKind kind, const std::string& want) {
  test::ScopedNs ns;
  char tmpl[] = "/tmp/shmbus-stat-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string data = tmpl;
  StreamOptions o;
  o.capacity = 1 << 16;
  ASSERT_TRUE(create_stream(ns.ns(), "s", o));
  {
    persist::PersisterOptions po;
    po.data_dir = data;
    po.kind = kind;
    auto per = persist::Persister::start(ns.ns(), "s", po);
    ASSERT_TRUE(per) << per.error().message;
    auto p = Producer::open(ns.ns(), "s");
    ASSERT_TRUE(p);
    const char x = 'x';
    ASSERT_TRUE(p->publish(Bytes(reinterpret_cast<const std::byte*>(&x), 1)).ok());
    ASSERT_TRUE((*per)->flush());
    // The persister publishes its store statistics at start and every 100 ms.
    StreamStat st;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    do {
      auto info = stream_info(ns.ns(), "s");
      ASSERT_TRUE(info);
      st = compute_stat(std::move(info.value()), nullptr, 0, 1.0);
      if (st.info.segments > 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    } while (std::chrono::steady_clock::now() < deadline);
    const persist::StoreStats mine = (*per)->stats().store;
    EXPECT_EQ(st.store, persist::store_kind_name(mine.kind));
    EXPECT_EQ(st.store, persist::store_kind_name(kind));
    if (mine.granularity == persist::PmemGranularity::kNotPmem) {
      EXPECT_EQ(kind, StoreKind::kFile);
      EXPECT_EQ(st.pmem_granularity, "");
    } else {
      EXPECT_EQ(kind, StoreKind::kPmem);
      EXPECT_EQ(st.pmem_granularity, persist::granularity_name(mine.granularity));
    }
    EXPECT_EQ(st.pmem_granularity, want);
    EXPECT_EQ(string_field(stat_json(st), "pmem_granularity"), want);
    ASSERT_TRUE((*per)->stop());
  }
  std::error_code ec;
  std::filesystem::remove_all(data, ec);
}

TEST(StatAndPersister, AgreeOnAFileStore) { expect_stat_agrees_with_persister(StoreKind::kFile, ""); }

TEST(StatAndPersister, AgreeOnAPmemStore) {
  // On a non-DAX file libpmem2 reports "page" (persisting is msync).
  expect_stat_agrees_with_persister(StoreKind::kPmem, "page");
}

TEST(StatAndPersister, AgreeOnACacheLinePmemStore) {
  ::setenv("PMEM2_FORCE_GRANULARITY", "cache_line", 1);
  expect_stat_agrees_with_persister(StoreKind::kPmem, "cache-line");
  ::unsetenv("PMEM2_FORCE_GRANULARITY");
}

}  // namespace
}  // namespace shmbus
