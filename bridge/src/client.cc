// client.cc: see client.h.
#include "client.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include <cstring>

namespace shmbus::kafka::detail {
namespace {

// librdkafka's syslog levels onto spdlog's.
void log_to_spdlog(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  // The bridge reports what matters itself (unreachable brokers, failed deliveries);
  // librdkafka's own view is for debugging (SHMBUS_LOG=debug).
  const char* who = rk ? rd_kafka_name(rk) : "rdkafka";
  if (level <= 2)
    spdlog::error("{} {}: {}", who, fac, buf);
  else
    spdlog::debug("{} {}: {}", who, fac, buf);
}

Result<void> set(rd_kafka_conf_t* c, const Property& p, bool from_user) {
  char err[512];
  if (rd_kafka_conf_set(c, p.name.c_str(), p.value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
    return make_error(Errc::kInvalidArgument,
                      std::string(from_user ? "-X " : "") + p.name + "=" + p.value + ": " + err);
  return {};
}

}  // namespace

void KafkaDeleter::operator()(rd_kafka_t* rk) const noexcept { rd_kafka_destroy(rk); }

Result<ConfPtr> make_conf(const std::string& brokers, const std::vector<Property>& defaults,
                          const std::vector<Property>& user) {
  ConfPtr c(rd_kafka_conf_new());
  rd_kafka_conf_set_log_cb(c.get(), log_to_spdlog);
  if (auto r = set(c.get(), {"bootstrap.servers", brokers}, false); !r)
    return make_error(Errc::kInvalidArgument, "--brokers '" + brokers + "': " + r.error().message);
  for (const auto& p : defaults)
    if (auto r = set(c.get(), p, false); !r) return r.error();
  for (const auto& p : user)
    if (auto r = set(c.get(), p, true); !r) return r.error();
  return c;
}

Result<KafkaPtr> make_client(rd_kafka_type_t type, ConfPtr conf) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), err, sizeof err);
  if (!rk) return make_error(Errc::kInvalidArgument, std::string("cannot make a Kafka client: ") + err);
  (void)conf.release();  // rd_kafka_new took it
  return KafkaPtr(rk);
}

Result<int32_t> topic_partitions(rd_kafka_t* rk, const std::string& brokers,
                                 const std::string& topic, std::chrono::milliseconds timeout) {
  const struct rd_kafka_metadata* md = nullptr;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  // all_topics = 1: a request for one topic could create it on a broker that
  // auto-creates topics; a missing topic is an error here.
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    err = rd_kafka_metadata(rk, 1, nullptr, &md,
                            static_cast<int>(std::max<int64_t>(100, std::min<int64_t>(left.count(), 2000))));
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
    if (std::chrono::steady_clock::now() >= deadline)
      return make_error(Errc::kIo, "cannot reach the brokers " + brokers + ": " +
                                       rd_kafka_err2str(err) + " (no metadata within " +
                                       std::to_string(timeout.count()) + " ms)");
  }
  int32_t partitions = -1;
  rd_kafka_resp_err_t topic_err = RD_KAFKA_RESP_ERR_NO_ERROR;
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (topic == md->topics[i].topic) {
      topic_err = md->topics[i].err;
      partitions = md->topics[i].partition_cnt;
    }
  }
  rd_kafka_metadata_destroy(md);
  if (partitions <= 0 || topic_err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
    return make_error(Errc::kNotFound, "topic '" + topic + "' not found on the brokers " + brokers +
                                           (topic_err ? std::string(" (") + rd_kafka_err2str(topic_err) + ")" : ""));
  if (topic_err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return make_error(Errc::kIo, "topic '" + topic + "': " + rd_kafka_err2str(topic_err));
  return partitions;
}

std::optional<std::string_view> header(const rd_kafka_message_t* m, const char* name) {
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || !hdrs) return std::nullopt;
  const void* v = nullptr;
  size_t n = 0;
  if (rd_kafka_header_get_last(hdrs, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR) return std::nullopt;
  if (!v) return std::string_view();
  return std::string_view(static_cast<const char*>(v), n);
}

std::optional<uint64_t> parse_u64(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

std::string stream_id(std::string_view ns, std::string_view stream) {
  return std::string(ns) + "/" + std::string(stream);
}

int32_t partition_for_key(std::string_view key, int32_t partitions) {
  // MurmurHash2, 32 bit, seed 0x9747b28c: the hash Kafka's default partitioner uses.
  constexpr uint32_t m = 0x5bd1e995;
  const size_t len = key.size();
  uint32_t h = 0x9747b28cu ^ static_cast<uint32_t>(len);
  size_t i = 0;
  for (; i + 4 <= len; i += 4) {
    uint32_t k;
    std::memcpy(&k, key.data() + i, 4);  // little-endian host: as Kafka's byte order
    k *= m;
    k ^= k >> 24;
    k *= m;
    h *= m;
    h ^= k;
  }
  switch (len - i) {
    case 3: h ^= static_cast<uint32_t>(static_cast<uint8_t>(key[i + 2])) << 16; [[fallthrough]];
    case 2: h ^= static_cast<uint32_t>(static_cast<uint8_t>(key[i + 1])) << 8; [[fallthrough]];
    case 1:
      h ^= static_cast<uint8_t>(key[i]);
      h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return static_cast<int32_t>((h & 0x7fffffffu) % static_cast<uint32_t>(partitions));
}

}  // namespace shmbus::kafka::detail

namespace shmbus::kafka {

void log_to_stderr(std::string_view level) {
  auto logger = spdlog::stderr_logger_mt("shmbus-bridge");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  const auto l = level == "debug" ? spdlog::level::debug
                 : level == "info" ? spdlog::level::info
                 : level == "error" ? spdlog::level::err
                                    : spdlog::level::warn;
  logger->set_level(l);
  spdlog::set_default_logger(logger);
}

Result<std::vector<Property>> parse_properties(const std::vector<std::string>& texts) {
  std::vector<Property> out;
  for (const auto& t : texts) {
    const size_t eq = t.find('=');
    if (eq == std::string::npos || eq == 0)
      return make_error(Errc::kInvalidArgument,
                        "-X '" + t + "': expected PROP=VALUE (e.g. -X security.protocol=SSL)");
    out.push_back({t.substr(0, eq), t.substr(eq + 1)});
  }
  return out;
}

Result<void> validate_topic(std::string_view topic) {
  if (topic.empty() || topic.size() > 249 || topic == "." || topic == "..")
    return make_error(Errc::kInvalidArgument, "topic '" + std::string(topic) +
                                                  "' is not a valid Kafka topic name ([A-Za-z0-9._-]{1,249})");
  for (char c : topic)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      return make_error(Errc::kInvalidArgument, "topic '" + std::string(topic) +
                                                    "' is not a valid Kafka topic name ([A-Za-z0-9._-]{1,249})");
  return {};
}

Result<TopicSpec> parse_topic_spec(std::string_view text) {
  TopicSpec t;
  const size_t colon = text.find(':');
  t.name = std::string(text.substr(0, colon));
  if (auto r = validate_topic(t.name); !r) return r.error();
  if (colon != std::string_view::npos) {
    auto n = detail::parse_u64(text.substr(colon + 1));
    if (!n || *n < 1 || *n > 100000)
      return make_error(Errc::kInvalidArgument, "--topic '" + std::string(text) +
                                                    "': PARTITIONS must be a number from 1 to 100000");
    t.partitions = static_cast<int32_t>(*n);
  }
  return t;
}

}  // namespace shmbus::kafka
