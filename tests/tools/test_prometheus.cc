// The Prometheus text of tools/stat (shmbus/prometheus.h), in-process: escaping of label
// values, one HELP and TYPE per family, values from the StreamStat, and (when Debian's
// prometheus package is installed) `promtool check metrics` on it.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "../common/scratch.h"
#include "shmbus/prometheus.h"

namespace shmbus {
namespace {

size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

StreamMetrics sample_stream(const std::string& ns, const std::string& name) {
  StreamInfo s;
  s.ns = ns;
  s.name = name;
  s.capacity = 65536;
  s.next_seq = 120;
  s.oldest_seq = 20;
  s.records_published = 118;
  s.bytes_published = 4000;
  s.abandoned = 2;
  s.tail_lost = 5;
  s.evicted_lost = 7;
  s.producers.push_back({.pid = 1, .alive = true});
  s.producers.push_back({.pid = 2, .alive = false});
  ConsumerInfo g;
  g.name = "audit";
  g.durable = true;
  g.lag = 30;
  g.next_seq = 90;
  ConsumerInfo t = g;
  t.durable = false;
  t.lag = 0;
  t.next_seq = 120;
  s.consumers = {g, t};
  StreamMetrics m;
  m.stat = compute_stat(s, nullptr, 0, 1.0);
  return m;
}

std::string escaped(std::string_view s) {
  std::string out;
  prometheus_escape_label(s, &out);
  return out;
}

TEST(Prometheus, LabelValuesAreEscapedAsTheFormatSays) {
  EXPECT_EQ(escaped("plain.name-1"), "plain.name-1");
  EXPECT_EQ(escaped("a\"b"), "a\\\"b");
  EXPECT_EQ(escaped("a\\b"), "a\\\\b");
  EXPECT_EQ(escaped("a\nb"), "a\\nb");
  EXPECT_EQ(escaped("caf\xc3\xa9"), "caf\xc3\xa9");             // UTF-8 passes
  EXPECT_EQ(escaped("bad\xff"), "bad\xef\xbf\xbd");             // not UTF-8: U+FFFD
  EXPECT_EQ(escaped("\xc3"), "\xef\xbf\xbd");                   // truncated sequence
}

TEST(Prometheus, OneHelpAndTypePerFamilyAndTheStatsValues) {
  const std::string text = prometheus_text({sample_stream("ns1", "a"), sample_stream("ns1", "b")});
  for (const char* family : {"records_published_total", "consumer_lag_records", "records_lost_total"}) {
    EXPECT_EQ(count_of(text, std::string("# HELP shmbus_") + family + " "), 1u) << family;
    EXPECT_EQ(count_of(text, std::string("# TYPE shmbus_") + family + " "), 1u) << family;
  }
  EXPECT_NE(text.find("# TYPE shmbus_records_published_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE shmbus_consumer_lag_records gauge\n"), std::string::npos);
  EXPECT_NE(text.find("shmbus_records_published_total{namespace=\"ns1\",stream=\"a\"} 118\n"), std::string::npos);
  EXPECT_NE(text.find("shmbus_bytes_published_total{namespace=\"ns1\",stream=\"b\"} 4000\n"), std::string::npos);
  EXPECT_NE(text.find("shmbus_records_abandoned_total{namespace=\"ns1\",stream=\"a\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("shmbus_records_lost_total{namespace=\"ns1\",stream=\"a\",reason=\"tail\"} 5\n"),
            std::string::npos);
  EXPECT_NE(text.find("shmbus_records_lost_total{namespace=\"ns1\",stream=\"a\",reason=\"evicted\"} 7\n"),
            std::string::npos);
  EXPECT_NE(text.find("shmbus_ring_records{namespace=\"ns1\",stream=\"a\"} 100\n"), std::string::npos);
  EXPECT_NE(text.find("shmbus_producers_alive{namespace=\"ns1\",stream=\"a\"} 1\n"), std::string::npos);
  // A group and a tailing reader of the same name: `kind` keeps their series apart.
  EXPECT_NE(text.find("shmbus_consumer_lag_records{namespace=\"ns1\",stream=\"a\",consumer=\"audit\",kind=\"group\"} 30\n"),
            std::string::npos);
  EXPECT_NE(text.find("shmbus_consumer_lag_records{namespace=\"ns1\",stream=\"a\",consumer=\"audit\",kind=\"tail\"} 0\n"),
            std::string::npos);
  // Not persisted, no bridges: no store or bridge families at all.
  EXPECT_EQ(text.find("shmbus_store_bytes"), std::string::npos);
  EXPECT_EQ(text.find("shmbus_durable_lag_records"), std::string::npos);
  EXPECT_EQ(text.find("shmbus_bridge_"), std::string::npos);
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(prometheus_text({}), "");
}

TEST(Prometheus, PersistedStreamsAndBridgesHaveTheirGauges) {
  StreamMetrics m = sample_stream("ns", "p");
  PersistSettings ps;
  ps.store_dir = "/tmp/x";
  m.stat.info.persist = ps;
  m.stat.info.durable_seq = 100;
  m.stat.info.disk_bytes = 12345;
  m.stat.info.deleted_records = 9;
  m.bridges.push_back({.direction = "out", .name = "br\"1", .topic = "t\\x", .alive = true, .delivered = 50,
                       .errors = 1, .lag = 70});
  const std::string text = prometheus_text({m, sample_stream("ns", "q")});
  EXPECT_NE(text.find("shmbus_durable_lag_records{namespace=\"ns\",stream=\"p\"} 20\n"), std::string::npos);
  EXPECT_NE(text.find("shmbus_store_bytes{namespace=\"ns\",stream=\"p\"} 12345\n"), std::string::npos);
  EXPECT_NE(text.find("shmbus_records_deleted_total{namespace=\"ns\",stream=\"p\"} 9\n"), std::string::npos);
  EXPECT_EQ(text.find("shmbus_store_bytes{namespace=\"ns\",stream=\"q\"}"), std::string::npos);  // not persisted
  EXPECT_NE(text.find("shmbus_bridge_lag_records{namespace=\"ns\",stream=\"p\",bridge=\"br\\\"1\","
                      "direction=\"out\",topic=\"t\\\\x\"} 70\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE shmbus_bridge_delivered_total counter\n"), std::string::npos);
}

TEST(Prometheus, StoredOnlyStreamsHaveTheirStoreGaugesAndRingZero) {
  StreamMetrics stored;
  stored.ring = false;
  stored.stat.info.ns = "ns";
  stored.stat.info.name = "old";
  PersistSettings ps;
  ps.store_dir = "/data/ns/old";
  stored.stat.info.persist = ps;
  stored.stat.info.disk_bytes = 4096;
  stored.stat.info.segments = 2;
  const std::string text = prometheus_text({sample_stream("ns", "a"), stored});
  EXPECT_NE(text.find("shmbus_store_bytes{namespace=\"ns\",stream=\"old\"} 4096\n"), std::string::npos) << text;
  EXPECT_NE(text.find("shmbus_store_segments{namespace=\"ns\",stream=\"old\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("shmbus_ring{namespace=\"ns\",stream=\"old\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("shmbus_ring{namespace=\"ns\",stream=\"a\"} 1\n"), std::string::npos) << text;
  // No ring figures for it: not zeros that look like an empty ring.
  for (const char* family : {"next_seq", "records_published_total", "ring_capacity_bytes", "records_lost_total",
                             "durable_lag_records", "persister_beat_timestamp_seconds"})
    EXPECT_EQ(text.find(std::string("shmbus_") + family + "{namespace=\"ns\",stream=\"old\""), std::string::npos)
        << family;
  EXPECT_EQ(count_of(text, "# TYPE shmbus_ring gauge\n"), 1u);
}

TEST(Prometheus, PromtoolAcceptsTheTextWithOddNames) {
  if (std::system("promtool --version >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "promtool (Debian package prometheus) is not installed";
  StreamMetrics m = sample_stream("odd\"ns\\", "we\nird");
  m.stat.info.consumers[0].name = "caf\xc3\xa9 \xff";
  m.bridges.push_back({.direction = "in", .name = "b", .topic = "t", .alive = false});
  const std::string text = prometheus_text({m, sample_stream("n", "plain")});
  const test::TempDir dir("shmbus-prom");
  const std::string path = dir.path() + "/metrics.txt";
  std::ofstream(path) << text;
  const std::string cmd = "promtool check metrics < '" + path + "' > '" + path + ".out' 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream in(path + ".out");
  std::stringstream out;
  out << in.rdbuf();
  EXPECT_EQ(rc, 0) << out.str() << "\n" << text;
  EXPECT_EQ(out.str(), "") << text;
}

}  // namespace
}  // namespace shmbus
