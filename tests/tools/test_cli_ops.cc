// `shmbus stat --format prometheus`, `shmbus metrics` and `shmbus top --once`, run as
// child processes against a live stream (a producer in this process, a durable group,
// a tailing reader, a persister).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "cli_test_util.h"
#include "shmbus/shmbus.h"

namespace shmbus::test {
namespace {

bool have_promtool() { return std::system("promtool --version >/dev/null 2>&1") == 0; }

// `promtool check metrics` on `text`: "" when it is content, else what it said.
std::string promtool_problems(const std::string& text, const std::string& dir) {
  const std::string in = dir + "/metrics.txt", out = dir + "/promtool.out";
  std::ofstream(in) << text;
  const int rc = std::system(("promtool check metrics < '" + in + "' > '" + out + "' 2>&1").c_str());
  std::ifstream f(out);
  std::stringstream said;
  said << f.rdbuf();
  if (rc != 0 && said.str().empty()) return "promtool exited " + std::to_string(rc);
  return said.str();
}

// The value of the sample `series` (metric name and labels exactly) in `text`, or "".
std::string sample(const std::string& text, const std::string& series) {
  for (const auto& l : lines_of(text))
    if (l.rfind(series + " ", 0) == 0) return l.substr(series.size() + 1);
  return "";
}

// A plain HTTP/1.1 request on 127.0.0.1:port: the whole response (status line, headers, body).
std::string http_request(int port, const std::string& method, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  std::string resp;
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
    const std::string req = method + " " + path +
                            " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    (void)!write(fd, req.data(), req.size());
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) resp.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return resp;
}

std::string http_get(int port, const std::string& path) { return http_request(port, "GET", path); }

std::string body_of(const std::string& resp) {
  const size_t at = resp.find("\r\n\r\n");
  return at == std::string::npos ? "" : resp.substr(at + 4);
}

class CliOps : public Cli {
 protected:
  // Stream `s` with 50 records from a producer of this process (alive), a group `audit`
  // that read 20 of them, a tailing reader (alive) and a persister that made all durable.
  void live_stream() {
    create("s");
    persister_ = std::make_unique<Background>(
        with_ns({"persist", "s", "--data-dir", scratch_.path() + "/data"}));
    ASSERT_TRUE(persister_->wait_for(
        [](const std::string&, const std::string& e) { return e.find("persisting") != std::string::npos; }))
        << persister_->err();
    auto p = Producer::open(ns_, "s");
    ASSERT_TRUE(p) << p.error().message;
    producer_.emplace(std::move(p.value()));
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(producer_->publish(as_bytes("record-" + std::to_string(i))).ok());
    expect_ok(cli({"tail", "s", "--group", "audit", "--count", "20"}));
    tail_ = std::make_unique<Background>(with_ns({"tail", "s", "-f"}));
    ASSERT_TRUE(tail_->wait_for([](const std::string& o, const std::string&) {
      return o.find("record-49\n") != std::string::npos;
    })) << tail_->err();
    ASSERT_TRUE(eventually([&] {
      auto i = stream_info(ns_, "s");
      return i && i.value().durable_seq == 50 && i.value().consumers.size() == 3;
    }));
    // The persister publishes its store's size after the records are durable: until that
    // value is there and holds still, two stat calls may see two values (a run saw 0 in
    // the first and 2688 in the second).
    uint64_t bytes = 0;
    ASSERT_TRUE(eventually([&] {
      auto i = stream_info(ns_, "s");
      if (!i || i.value().disk_bytes == 0) return false;
      const bool still = i.value().disk_bytes == bytes;
      bytes = i.value().disk_bytes;
      if (!still) std::this_thread::sleep_for(std::chrono::milliseconds(300));
      return still;
    }));
  }

  std::unique_ptr<Background> persister_, tail_;
  std::optional<Producer> producer_;
};

TEST_F(CliOps, StatPrometheusPassesPromtoolAndAgreesWithStatJson) {
  live_stream();
  const CliResult prom = cli({"stat", "s", "--format", "prometheus"});
  expect_ok(prom);
  const CliResult json = cli({"stat", "s", "--json"});
  expect_ok(json);
  const std::string l = "{namespace=\"" + ns_ + "\",stream=\"s\"}";
  EXPECT_EQ(sample(prom.out, "shmbus_records_published_total" + l), json_raw(json.out, "records_published"));
  EXPECT_EQ(sample(prom.out, "shmbus_bytes_published_total" + l), json_raw(json.out, "bytes_published"));
  EXPECT_EQ(sample(prom.out, "shmbus_records_abandoned_total" + l), json_raw(json.out, "abandoned"));
  EXPECT_EQ(sample(prom.out, "shmbus_next_seq" + l), json_raw(json.out, "next_seq"));
  EXPECT_EQ(sample(prom.out, "shmbus_store_bytes" + l), json_raw(json.out, "disk_bytes"));
  EXPECT_EQ(sample(prom.out, "shmbus_ring_capacity_bytes" + l), json_raw(json.out, "capacity"));
  EXPECT_EQ(sample(prom.out, "shmbus_records_published_total" + l), "50");
  EXPECT_EQ(sample(prom.out, "shmbus_producers_alive" + l), "1");
  EXPECT_EQ(sample(prom.out, "shmbus_durable_lag_records" + l), "0");
  const std::string c = "{namespace=\"" + ns_ + "\",stream=\"s\",consumer=";
  EXPECT_EQ(sample(prom.out, "shmbus_consumer_lag_records" + c + "\"audit\",kind=\"group\"}"), "30") << prom.out;
  EXPECT_EQ(sample(prom.out, "shmbus_consumer_alive" + c + "\"audit\",kind=\"group\"}"), "0");
  EXPECT_NE(prom.out.find(",kind=\"tail\"} 0\n"), std::string::npos) << prom.out;  // the tail -f reader
  if (!have_promtool()) GTEST_SKIP() << "promtool (Debian package prometheus) is not installed";
  EXPECT_EQ(promtool_problems(prom.out, scratch_.path()), "") << prom.out;
}

TEST_F(CliOps, StatPrometheusWithoutStreamShowsEveryStreamAndRefusesRates) {
  create("a");
  create("b");
  const CliResult all = cli({"stat", "--format", "prometheus"});
  expect_ok(all);
  EXPECT_NE(all.out.find("stream=\"a\"} 0\n"), std::string::npos) << all.out;
  EXPECT_NE(all.out.find("stream=\"b\"} 0\n"), std::string::npos) << all.out;
  EXPECT_EQ(all.out.find("# TYPE shmbus_next_seq gauge"), all.out.rfind("# TYPE shmbus_next_seq gauge"));
  expect_failure(cli({"stat", "a", "--format", "prometheus", "--watch"}), "one snapshot");
  expect_failure(cli({"stat", "a", "--format", "prometheus", "--interval", "1s"}), "one snapshot");
  expect_failure(cli({"stat"}), "STREAM is required");
  expect_failure(cli({"stat", "a", "--json", "--format", "text"}), "disagree");
  expect_failure(cli({"stat", "nope", "--format", "prometheus"}), "nope");
  // --format json is --json.
  const CliResult j = cli({"stat", "a", "--format", "json"});
  expect_ok(j);
  EXPECT_EQ(json_raw(j.out, "stream"), "\"a\"");
}

TEST_F(CliOps, MetricsServesTheTextOverHttpUntilSigterm) {
  live_stream();
  Background m(with_ns({"metrics", "--listen", "127.0.0.1:0"}));
  ASSERT_TRUE(m.wait_for([](const std::string& o, const std::string&) { return o.find('\n') != std::string::npos; }))
      << m.err();
  const std::string first = m.out().substr(0, m.out().find('\n'));
  ASSERT_EQ(first.rfind("127.0.0.1:", 0), 0u) << first;
  const int port = std::stoi(first.substr(10));
  ASSERT_GT(port, 0);
  const std::string resp = http_get(port, "/metrics");
  EXPECT_EQ(resp.rfind("HTTP/1.1 200", 0), 0u) << resp;
  EXPECT_NE(resp.find("Content-Type: text/plain; version=0.0.4\r\n"), std::string::npos) << resp;
  const std::string body = body_of(resp);
  EXPECT_EQ(sample(body, "shmbus_records_published_total{namespace=\"" + ns_ + "\",stream=\"s\"}"), "50") << body;
  // Each scrape reads anew.
  ASSERT_TRUE(producer_->publish(as_bytes("one more")).ok());
  EXPECT_EQ(sample(body_of(http_get(port, "/metrics")),
                   "shmbus_records_published_total{namespace=\"" + ns_ + "\",stream=\"s\"}"),
            "51");
  EXPECT_EQ(http_get(port, "/").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(http_get(port, "/metricsx").rfind("HTTP/1.1 404", 0), 0u);
  const CliResult r = m.stop(SIGTERM);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(r.timed_out);
  if (!have_promtool()) GTEST_SKIP() << "promtool (Debian package prometheus) is not installed";
  EXPECT_EQ(promtool_problems(body, scratch_.path()), "") << body;
}

TEST_F(CliOps, MetricsAllNamespacesAndCtrlCExits130) {
  create("mine");
  Background m({"metrics", "--listen", "127.0.0.1:0", "--all"});
  ASSERT_TRUE(m.wait_for([](const std::string& o, const std::string&) { return o.find('\n') != std::string::npos; }))
      << m.err();
  const int port = std::stoi(m.out().substr(10, m.out().find('\n') - 10));
  const std::string body = body_of(http_get(port, "/metrics"));
  EXPECT_NE(body.find("shmbus_next_seq{namespace=\"" + ns_ + "\",stream=\"mine\"} 0\n"), std::string::npos) << body;
  const CliResult r = m.stop(SIGINT);
  EXPECT_EQ(r.exit_code, 130) << r.err;
}

TEST_F(CliOps, MetricsBadAddressOrPortInUseIsOneLineError) {
  for (const char* bad : {"nonsense", "127.0.0.1", "127.0.0.1:99999", "300.1.1.1:80", "127.0.0.1:-1",
                          "[::1:80", "example.com:80"}) {
    const CliResult r = cli({"metrics", "--listen", bad});
    expect_failure(r, "--listen");
    EXPECT_EQ(r.exit_code, 2) << bad;
  }
  // A port someone else listens on.
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof sa;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  const std::string addr = "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
  const CliResult r = cli({"metrics", "--listen", addr});
  expect_failure(r, "cannot listen on " + addr + ": Address already in use");
  EXPECT_EQ(r.exit_code, 1);
  close(fd);
}

// The port of a `metrics --listen 127.0.0.1:0` from its first line of stdout (0 if none).
int metrics_port(Background& m) {
  if (!m.wait_for([](const std::string& o, const std::string&) { return o.find('\n') != std::string::npos; }))
    return 0;
  return std::stoi(m.out().substr(10, m.out().find('\n') - 10));
}

// A TCP connection to 127.0.0.1:port (-1 if it failed).
int connect_to(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

TEST_F(CliOps, MetricsOnAPortAnotherMetricsListensOnFails) {
  // cpp-httplib's default socket options set SO_REUSEPORT: a second listener on the same
  // port used to succeed, and scrapes alternated between the two.
  create("a");
  Background first(with_ns({"metrics", "--listen", "127.0.0.1:0"}));
  const int port = metrics_port(first);
  ASSERT_GT(port, 0) << first.err();
  const std::string addr = "127.0.0.1:" + std::to_string(port);
  const CliResult r = cli({"metrics", "--listen", addr});
  expect_failure(r, "cannot listen on " + addr + ": Address already in use");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(lines_of(r.err).size(), 1u) << r.err;
  EXPECT_EQ(http_get(port, "/metrics").rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(first.stop(SIGTERM).exit_code, 0);
}

TEST_F(CliOps, MetricsAnswersOtherMethodsWith405AndAllow) {
  create("a");
  Background m(with_ns({"metrics", "--listen", "127.0.0.1:0"}));
  const int port = metrics_port(m);
  ASSERT_GT(port, 0) << m.err();
  for (const char* method : {"POST", "PUT", "DELETE"}) {
    const std::string resp = http_request(port, method, "/metrics");
    EXPECT_EQ(resp.rfind("HTTP/1.1 405", 0), 0u) << method << "\n" << resp;
    EXPECT_NE(resp.find("Allow: GET, HEAD\r\n"), std::string::npos) << resp;
  }
  EXPECT_EQ(http_request(port, "HEAD", "/metrics").rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(m.stop(SIGTERM).exit_code, 0);
}

TEST_F(CliOps, MetricsSlowClientsBlockNeitherScrapesNorSigterm) {
  create("a");
  Background m(with_ns({"metrics", "--listen", "127.0.0.1:0"}));
  const int port = metrics_port(m);
  ASSERT_GT(port, 0) << m.err();
  // Four clients that sent half a request and then nothing, two that trickle one byte
  // of a header line every 300 ms (each byte restarts a read timeout): the scrape below
  // and SIGTERM come while all of them are connected.
  std::vector<int> idle, trickling;
  for (int i = 0; i < 4; ++i) {
    idle.push_back(connect_to(port));
    ASSERT_GE(idle.back(), 0);
    const std::string half = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
    ASSERT_EQ(write(idle.back(), half.data(), half.size()), static_cast<ssize_t>(half.size()));
  }
  for (int i = 0; i < 2; ++i) {
    trickling.push_back(connect_to(port));
    ASSERT_GE(trickling.back(), 0);
    ASSERT_EQ(write(trickling.back(), "GET /metrics HTTP/1.1\r\nX-a: ", 28), 28);
  }
  std::atomic<bool> done{false};
  std::thread trickle([&] {
    while (!done.load()) {
      for (int fd : trickling) (void)!send(fd, "b", 1, MSG_NOSIGNAL);
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
  });
  // Let the server take the slow connections before the scrape.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::string resp = http_get(port, "/metrics");  // gives up after 10 s
  EXPECT_EQ(resp.rfind("HTTP/1.1 200", 0), 0u) << resp;
  const CliResult r = m.stop(SIGTERM);  // SIGKILLed after 10 s
  done = true;
  trickle.join();
  for (int fd : idle) close(fd);
  for (int fd : trickling) close(fd);
  EXPECT_FALSE(r.timed_out) << "SIGTERM did not end metrics while clients trickled";
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// A first-hour review: stat of a stored-only stream showed the default settings
// (segment_bytes 64 MiB) instead of those its persister ran with and left in `settings`;
// a ring created over the store then said "oldest persisted 0" until a persister ran.
TEST_F(CliOps, AStoredOnlyStreamShowsItsPersistersSettingsAndItsOldestRecord) {
  const std::string data = scratch_.path() + "/data";
  create("p");
  {
    Background persister(with_ns({"persist", "p", "--data-dir", data, "--segment-size", "4K",
                                  "--retention-age", "1h"}));
    ASSERT_NO_FATAL_FAILURE(wait_persisting(persister));
    std::string lines;
    for (int i = 0; i < 100; ++i) lines += "record " + std::to_string(i) + "\n";
    expect_ok(cli({"pub", "p"}, lines));
    ASSERT_NO_FATAL_FAILURE(wait_durable("p", 100));
    expect_ok(cli({"delete", "p", "--before", "40", "--data-dir", data}));
    EXPECT_EQ(persister.stop(SIGTERM).exit_code, 0);
  }
  expect_ok(cli({"rm", "p", "--force"}));
  const CliResult json = cli({"stat", "p", "--json", "--data-dir", data});
  expect_ok(json);
  EXPECT_EQ(json_raw(json.out, "segment_bytes"), "4096") << json.out;
  EXPECT_EQ(json_raw(json.out, "retention_age_ns"), "3600000000000") << json.out;
  EXPECT_EQ(json_raw(json.out, "deleted_below"), "40") << json.out;
  const std::string oldest = json_raw(json.out, "oldest_persisted_seq");
  ASSERT_NE(oldest, "") << json.out;
  EXPECT_GE(std::stoull(oldest), 40u) << json.out;
  expect_ok(cli({"create", "p", "--data-dir", data}));
  const CliResult again = cli({"stat", "p", "--json"});
  expect_ok(again);
  EXPECT_EQ(json_raw(again.out, "oldest_persisted_seq"), oldest) << again.out;
}

TEST_F(CliOps, StoredOnlyStreamsShowTheirStoreInPrometheusAndTop) {
  // A persisted stream whose ring is gone (rm --force; a reboot) is `stored (no ring)` in
  // ls; stat --format prometheus and top left it out, and its store gauges vanished.
  const std::string data = scratch_.path() + "/data";
  create("p");
  publish_persisted("p", data, "a\nb\nc\n", 3);
  expect_ok(cli({"rm", "p", "--force"}));  // the ring only: the store stays
  create("live");
  CliEnv env;
  env.set = {{"SHMBUS_DATA_DIR", data}};
  const CliResult ls = run_cli(with_ns({"ls"}), "", env);
  expect_ok(ls);
  ASSERT_NE(ls.out.find("stored (no ring)"), std::string::npos) << ls.out;
  const CliResult prom = run_cli(with_ns({"stat", "--format", "prometheus"}), "", env);
  expect_ok(prom);
  const std::string p = "{namespace=\"" + ns_ + "\",stream=\"p\"}";
  const std::string live = "{namespace=\"" + ns_ + "\",stream=\"live\"}";
  const std::string bytes = sample(prom.out, "shmbus_store_bytes" + p);
  ASSERT_NE(bytes, "") << prom.out;
  EXPECT_GT(std::stoull(bytes), 0u);
  EXPECT_EQ(sample(prom.out, "shmbus_store_segments" + p), "1") << prom.out;
  EXPECT_EQ(sample(prom.out, "shmbus_ring" + p), "0") << prom.out;
  EXPECT_EQ(sample(prom.out, "shmbus_ring" + live), "1") << prom.out;
  EXPECT_EQ(sample(prom.out, "shmbus_next_seq" + p), "") << prom.out;  // no ring figures
  EXPECT_EQ(sample(prom.out, "shmbus_next_seq" + live), "0") << prom.out;
  // stat STREAM said "not found": the store's part, and --json keeps every key.
  const CliResult human = run_cli(with_ns({"stat", "p"}), "", env);
  expect_ok(human);
  EXPECT_NE(human.out.find("no ring (stored only"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find(data + "/" + ns_ + "/p"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("stored            records 0..2 (next sequence 3), deleted below 0\n"),
            std::string::npos) << human.out;
  const CliResult json = run_cli(with_ns({"stat", "p", "--json"}), "", env);
  expect_ok(json);
  EXPECT_EQ(json_raw(json.out, "ring"), "false") << json.out;
  EXPECT_EQ(json_raw(json.out, "disk_bytes"), bytes) << json.out;
  EXPECT_EQ(json_raw(json.out, "stream"), "\"p\"") << json.out;
  for (const char* key : {"next_seq", "capacity", "consumers", "producers", "records_published", "persist"})
    EXPECT_NE(json_raw(json.out, key), "") << key << " " << json.out;
  // The store's range, not zeros (a walkthrough): where a ring created over it continues.
  EXPECT_EQ(json_raw(json.out, "next_seq"), "3") << json.out;
  EXPECT_EQ(json_raw(json.out, "durable_seq"), "3") << json.out;
  EXPECT_EQ(json_raw(json.out, "oldest_persisted_seq"), "0") << json.out;
  EXPECT_EQ(json_raw(json.out, "deleted_below"), "0") << json.out;
  // --data-dir, as ls takes it, without the environment.
  const CliResult by_flag = cli({"stat", "p", "--json", "--data-dir", data});
  expect_ok(by_flag);
  EXPECT_EQ(json_raw(by_flag.out, "next_seq"), "3") << by_flag.out;
  const CliResult prom1 = run_cli(with_ns({"stat", "p", "--format", "prometheus"}), "", env);
  expect_ok(prom1);
  EXPECT_EQ(sample(prom1.out, "shmbus_store_bytes" + p), bytes) << prom1.out;
  const CliResult top = run_cli(with_ns({"top", "--once", "--interval", "100ms"}), "", env);
  expect_ok(top);
  EXPECT_NE(top.out.find("\np "), std::string::npos) << top.out;
  EXPECT_NE(top.out.find("no ring (stored only)"), std::string::npos) << top.out;
  // A command that needs the ring said "not found (create it with ...)" (a walkthrough:
  // tail --group of a stored stream): it names the store and the ways on.
  const CliResult group = run_cli(with_ns({"tail", "p", "--group", "g"}), "", env);
  expect_failure(group, "stream '" + ns_ + "/p' has no ring, only its store in " + data + "/" + ns_ + "/p");
  // The commands as typed here: this namespace (and data dir, when given).
  EXPECT_NE(group.err.find("`shmbus create p --namespace " + ns_ + "` continues the stream"), std::string::npos)
      << group.err;
  EXPECT_NE(group.err.find("`shmbus tail p --namespace " + ns_ + "` without --group reads the store"),
            std::string::npos) << group.err;
  const CliResult flag = cli({"tail", "p", "--group", "g", "--data-dir", data});
  expect_failure(flag, "`shmbus rm --data p --namespace " + ns_ + " --data-dir " + data + "` removes it");
  const CliResult plain = cli({"tail", "p", "--data-dir", data});  // without --group: the store
  expect_ok(plain);
  EXPECT_EQ(plain.out, "a\nb\nc\n");
  expect_failure(run_cli(with_ns({"pub", "p"}), "x\n", env), "has no ring, only its store");
  if (!have_promtool()) GTEST_SKIP() << "promtool (Debian package prometheus) is not installed";
  EXPECT_EQ(promtool_problems(prom.out, scratch_.path()), "") << prom.out;
}

TEST_F(CliOps, TopOncePrintsEveryStreamWithItsConsumers) {
  live_stream();
  create("quiet");
  const CliResult r = cli({"top", "--once", "--interval", "200ms"});
  expect_ok(r);
  const auto ls = lines_of(r.out);
  ASSERT_GE(ls.size(), 4u) << r.out;
  EXPECT_NE(ls[0].find("shmbus top  namespace " + ns_), std::string::npos) << r.out;
  EXPECT_NE(ls[1].find("STREAM"), std::string::npos);
  EXPECT_NE(ls[1].find("REC/S"), std::string::npos);
  // The table: quiet (nothing), then s: 1 producer alive, lag 30 (audit), store, durable lag 0.
  EXPECT_EQ(ls[2].rfind("quiet ", 0), 0u) << r.out;
  EXPECT_EQ(ls[3].rfind("s ", 0), 0u) << r.out;
  std::istringstream row(ls[3]);
  std::string name, rec, bytes, prod, lag, lost, abnd, store, dlag;
  row >> name >> rec >> bytes >> prod >> lag >> lost >> abnd >> store >> dlag;
  EXPECT_EQ(prod, "1") << ls[3];
  EXPECT_EQ(lag, "30") << ls[3];
  EXPECT_EQ(lost, "0") << ls[3];
  EXPECT_EQ(abnd, "0") << ls[3];
  EXPECT_NE(store, "-") << ls[3];
  EXPECT_EQ(dlag, "0") << ls[3];
  EXPECT_NE(r.out.find("A = lambda x T"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  audit "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  _persister "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("durable lag 0"), std::string::npos) << r.out;
  expect_failure(cli({"top", "--interval", "0"}), "--interval");
}

TEST_F(CliOps, TopToAPipePrintsAFrameEveryIntervalUntilSigterm) {
  create("piped");
  Background top(with_ns({"top", "--interval", "100ms"}));
  ASSERT_TRUE(top.wait_for([](const std::string& o, const std::string&) {
    size_t frames = 0;
    for (size_t at = o.find("shmbus top  namespace"); at != std::string::npos; at = o.find("shmbus top  namespace", at + 1))
      ++frames;
    return frames >= 2;
  })) << top.out() << top.err();
  EXPECT_EQ(top.out().find('\x1b'), std::string::npos);  // plain text, no terminal escapes
  EXPECT_NE(top.out().find("\npiped "), std::string::npos) << top.out();
  const CliResult r = top.stop(SIGTERM);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(CliOps, TopIntoAPipeWhoseReaderLeftEndsQuietly) {
  // `shmbus top | head -n 1`: the next frame meets EPIPE; like tail, top ends with 0 and
  // says nothing (it said "cannot write to stdout" and exited 1).
  create("piped");
  const CliResult r = run_program(
      "/bin/bash",
      {"-c", "\"$0\" top --namespace \"$1\" --interval 100ms | head -n 1 >/dev/null; echo \"${PIPESTATUS[0]}\"",
       SHMBUS_CLI, ns_});
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.out, "0\n") << r.err;
  EXPECT_EQ(r.err, "");
}

}  // namespace
}  // namespace shmbus::test
