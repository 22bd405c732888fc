// cmd_bridge.cc: `shmbus kafka-mock` and `shmbus bridge out|in` (bridge/, shmbus/kafka.h).
// They run until SIGINT or SIGTERM and then exit 0 (main.cc keeps that 0 after a
// SIGINT for these commands, as the issue asks).  Logs go to stderr through spdlog at
// $SHMBUS_LOG (debug, info, warn: the default, error).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "args.h"
#include "collect.h"
#include "commands.h"
#include "format.h"
#include "shmbus/json.h"
#include "shmbus/kafka.h"
#include "shmbus/shmbus.h"
#include "signals.h"

namespace shmbus::tools {
namespace {

using namespace std::chrono_literals;

void start_logging() {
  const char* level = std::getenv("SHMBUS_LOG");
  kafka::log_to_stderr(level ? level : "warn");
}

bool stop() { return stop_requested(); }

}  // namespace

int cmd_kafka_mock(const KafkaMockArgs& a) {
  install_stop_handlers();
  start_logging();
  std::vector<kafka::TopicSpec> topics;
  for (const auto& t : a.topics) {
    auto spec = kafka::parse_topic_spec(t);
    if (!spec) return fail(spec.error());
    topics.push_back(spec.value());
  }
  auto m = kafka::MockCluster::start(a.brokers, topics);
  if (!m) return fail(m.error());
  // The first line of stdout, at once: scripts read it to find the cluster.
  std::printf("%s\n", m.value()->bootstraps().c_str());
  std::fflush(stdout);
  while (!stop_requested()) std::this_thread::sleep_for(50ms);
  return kExitOk;
}

int cmd_bridge_out(const BridgeOutArgs& a) {
  install_stop_handlers();
  start_logging();
  kafka::OutOptions o;
  const auto ns_or = command_namespace(a.ns);
  if (!ns_or) return kExitUsage;
  o.ns = *ns_or;
  o.stream = a.stream;
  o.brokers = a.brokers;
  o.topic = a.topic;
  o.name = a.name;
  o.partition = a.partition;
  o.exit_at_end = a.exit_at_end;
  o.data_dir = a.data_dir;
  auto from = parse_start(a.from);
  if (!from) return fail("--from: " + from.error().message, kExitUsage);
  o.from = from.value();
  if (a.key == "none")
    o.key = kafka::KeyMode::kNone;
  else if (a.key == "type")
    o.key = kafka::KeyMode::kType;
  else
    return fail("--key '" + a.key + "': expected none or type", kExitUsage);
  auto props = kafka::parse_properties(a.props);
  if (!props) return fail(props.error());
  o.properties = props.value();
  auto t = duration_flag("--connect-timeout", a.connect_timeout);
  if (!t) return kExitUsage;
  o.connect_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*t);
  auto r = kafka::run_bridge_out(o, stop);
  if (!r) return r.error().code == Errc::kNotFound && r.error().message.find("stream") != std::string::npos
                      ? fail_stream(r.error(), o.ns, o.stream)
                      : fail(r.error());
  return kExitOk;
}

int cmd_bridge_in(const BridgeInArgs& a) {
  install_stop_handlers();
  start_logging();
  kafka::InOptions o;
  const auto ns_or = command_namespace(a.ns);
  if (!ns_or) return kExitUsage;
  o.ns = *ns_or;
  o.topic = a.topic;
  o.stream = a.stream;
  o.brokers = a.brokers;
  o.group = a.group;
  o.from = a.from;
  o.type = a.type;
  o.sync = a.sync;
  o.exit_at_end = a.exit_at_end;
  auto props = kafka::parse_properties(a.props);
  if (!props) return fail(props.error());
  o.properties = props.value();
  auto st = duration_flag("--sync-timeout", a.sync_timeout);
  if (!st) return kExitUsage;
  o.sync_timeout = *st;
  auto ci = duration_flag("--commit-interval", a.commit_interval);
  if (!ci) return kExitUsage;
  o.commit_interval = std::chrono::duration_cast<std::chrono::milliseconds>(*ci);
  auto t = duration_flag("--connect-timeout", a.connect_timeout);
  if (!t) return kExitUsage;
  o.connect_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*t);
  auto r = kafka::run_bridge_in(o, stop);
  if (!r) return r.error().code == Errc::kNotFound && r.error().message.find("stream") != std::string::npos
                      ? fail_stream(r.error(), o.ns, o.stream)
                      : fail(r.error());
  return kExitOk;
}

void write_bridges_json(const std::string& ns, const std::string& stream, JsonWriter& w) {
  const auto bridges = kafka::read_bridge_status(ns, stream);
  // Only with bridges: without, the document keeps exactly the keys of the library's
  // stat_json (Python's shmbus.stat() has the same).
  if (bridges.empty()) return;
  w.key("bridges").begin_array();
  for (const auto& b : bridges) {
    w.begin_object();
    w.key("kind").value("bridge");
    w.key("direction").value(b.direction).key("name").value(b.name);
    w.key("topic").value(b.topic).key("brokers").value(b.brokers);
    w.key("pid").value(uint64_t{b.pid}).key("alive").value(bool{b.alive});
    w.key("updated_ns").value(uint64_t{b.updated_ns});
    w.key("delivered").value(uint64_t{b.counters.delivered});
    w.key("in_flight").value(uint64_t{b.counters.in_flight});
    w.key("errors").value(uint64_t{b.counters.errors});
    w.key("skipped").value(uint64_t{b.counters.skipped});
    w.key("duplicates_skipped").value(uint64_t{b.counters.duplicates_skipped});
    w.key("lag").value(uint64_t{b.counters.lag});
    w.key("restarts").value(uint64_t{b.counters.restarts});
    w.key("last_error").value(b.counters.last_error);
    w.end_object();
  }
  w.end_array();
}

std::vector<BridgeMetrics> bridge_metrics(const std::string& ns, const std::string& stream) {
  std::vector<BridgeMetrics> out;
  for (const auto& b : kafka::read_bridge_status(ns, stream)) {
    BridgeMetrics m;
    m.direction = b.direction;
    m.name = b.name;
    m.topic = b.topic;
    m.alive = b.alive;
    m.delivered = b.counters.delivered;
    m.errors = b.counters.errors;
    m.lag = b.counters.lag;
    out.push_back(std::move(m));
  }
  return out;
}

void print_bridges_text(const std::string& ns, const std::string& stream) {
  const auto bridges = kafka::read_bridge_status(ns, stream);
  if (bridges.empty()) return;
  using ull = unsigned long long;
  std::printf("\nbridges (%zu)\n", bridges.size());
  std::printf("  %-3s %-24s %-20s %8s %5s %12s %9s %7s %7s %10s %12s  %s\n", "DIR", "NAME", "TOPIC", "PID",
              "ALIVE", "DELIVERED", "IN_FLIGHT", "ERRORS", "SKIPPED", "DUPLICATES", "LAG", "LAST_ERROR");
  for (const auto& b : bridges)
    std::printf("  %-3s %-24s %-20s %8u %5s %12llu %9llu %7llu %7llu %10llu %12llu  %s\n", b.direction.c_str(),
                terminal_text(b.name).c_str(), terminal_text(b.topic).c_str(), b.pid, b.alive ? "yes" : "no",
                ull(b.counters.delivered), ull(b.counters.in_flight), ull(b.counters.errors),
                ull(b.counters.skipped), ull(b.counters.duplicates_skipped), ull(b.counters.lag),
                b.counters.last_error.empty() ? "-" : terminal_text(b.counters.last_error).c_str());
}

}  // namespace shmbus::tools
