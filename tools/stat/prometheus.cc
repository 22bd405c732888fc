// prometheus.cc: see include/shmbus/prometheus.h.
#include "shmbus/prometheus.h"

#include <algorithm>
#include <functional>

#include "shmbus/json.h"  // utf8_sequence_length

namespace shmbus {

void prometheus_escape_label(std::string_view s, std::string* out) {
  walk_utf8(
      s,
      [&](unsigned char c) {
        if (c == '\\') *out += "\\\\";
        else if (c == '"') *out += "\\\"";
        else if (c == '\n') *out += "\\n";
        else *out += static_cast<char>(c);
      },
      [&](std::string_view seq) { out->append(seq); },
      [&](unsigned char) { *out += "\xef\xbf\xbd"; });  // U+FFFD: label values are UTF-8
}

namespace {

using Labels = std::vector<std::pair<const char*, std::string_view>>;

// One metric family: HELP and TYPE once, then the samples its writer adds.
class Family {
 public:
  Family(std::string* out, const char* name, const char* type, const char* help) : out_(out), name_(name) {
    *out_ += "# HELP shmbus_";
    *out_ += name;
    *out_ += ' ';
    *out_ += help;  // constant text: no \ or newline to escape
    *out_ += "\n# TYPE shmbus_";
    *out_ += name;
    *out_ += ' ';
    *out_ += type;
    *out_ += '\n';
  }
  void sample(const Labels& labels, uint64_t v) {
    *out_ += "shmbus_";
    *out_ += name_;
    *out_ += '{';
    bool first = true;
    for (const auto& [k, val] : labels) {
      if (!first) *out_ += ',';
      first = false;
      *out_ += k;
      *out_ += "=\"";
      prometheus_escape_label(val, out_);
      *out_ += '"';
    }
    *out_ += "} ";
    *out_ += std::to_string(v);
    *out_ += '\n';
  }

 private:
  std::string* out_;
  const char* name_;
};

Labels stream_labels(const StreamInfo& s) { return {{"namespace", s.ns}, {"stream", s.name}}; }

uint64_t minus(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

}  // namespace

std::string prometheus_text(const std::vector<StreamMetrics>& streams) {
  std::string out;
  if (streams.empty()) return out;
  // A family of one value per stream: of every stream with a ring, of the persisted ones
  // with a ring, or of every stream with a store (a ring or not).
  // Streams without a ring (only a store) are in the store families and `ring` only.
  enum Of { kRing, kPersistedRing, kStore };
  const auto per_stream = [&](const char* name, const char* type, const char* help,
                              const std::function<uint64_t(const StreamStat&)>& value, Of of = kRing) {
    const auto shown = [&](const StreamMetrics& m) {
      if (of == kRing) return m.ring;
      if (of == kPersistedRing) return m.ring && m.stat.info.persist.has_value();
      return m.stat.info.persist.has_value();
    };
    if (std::none_of(streams.begin(), streams.end(), shown)) return;
    Family f(&out, name, type, help);
    for (const auto& m : streams)
      if (shown(m)) f.sample(stream_labels(m.stat.info), value(m.stat));
  };
  using S = const StreamStat&;
  per_stream("records_published_total", "counter", "Records committed to the stream.",
             [](S st) { return st.info.records_published; });
  per_stream("bytes_published_total", "counter", "Payload bytes of the records committed.",
             [](S st) { return st.info.bytes_published; });
  per_stream("records_abandoned_total", "counter",
             "Claims of dead producers turned into gaps.", [](S st) { return st.info.abandoned; });
  per_stream("records_aborted_total", "counter", "Claims aborted by their producer.",
             [](S st) { return st.info.aborted; });
  {
    Family f(&out, "records_lost_total", "counter",
             "Records readers lost: reason tail (lapped tailing readers) or evicted (durable "
             "groups evicted as dead, counted when they read again).");
    for (const auto& m : streams) {
      if (!m.ring) continue;
      Labels l = stream_labels(m.stat.info);
      l.emplace_back("reason", "tail");
      f.sample(l, m.stat.info.tail_lost);
      l.back().second = "evicted";
      f.sample(l, m.stat.info.evicted_lost);
    }
  }
  per_stream("consumer_evictions_total", "counter", "Durable consumers evicted as dead.",
             [](S st) { return st.info.evictions; });
  per_stream("producer_waits_total", "counter", "Times a producer waited for room.",
             [](S st) { return st.info.producer_waits; });
  per_stream("producer_full_total", "counter", "Publishes refused for lack of room.",
             [](S st) { return st.info.producer_full; });
  per_stream("records_deleted_total", "counter",
             "Records deleted from the store (retention and explicit delete).",
             [](S st) { return st.info.deleted_records; }, kPersistedRing);
  per_stream("bytes_deleted_total", "counter", "Bytes deleted from the store.",
             [](S st) { return st.info.deleted_bytes; }, kPersistedRing);
  per_stream("store_errors_total", "counter", "Store write or sync failures.",
             [](S st) { return st.info.store_errors; }, kPersistedRing);

  {
    Family f(&out, "ring", "gauge",
             "1 while the stream has its ring in shared memory; 0: it exists only as its store "
             "(after a reboot), with the store gauges only.");
    for (const auto& m : streams) f.sample(stream_labels(m.stat.info), m.ring ? 1 : 0);
  }
  per_stream("next_seq", "gauge", "Sequence number the next record gets.",
             [](S st) { return st.info.next_seq; });
  per_stream("ring_capacity_bytes", "gauge", "Size of the ring.",
             [](S st) { return st.info.capacity; });
  per_stream("ring_records", "gauge", "Records still in the ring (next_seq - oldest_seq): its fill.",
             [](S st) { return minus(st.info.next_seq, st.info.oldest_seq); });
  per_stream("producers", "gauge", "Producers registered with the stream.",
             [](S st) { return uint64_t{st.info.producers.size()}; });
  per_stream("producers_alive", "gauge", "Producers whose process is alive.", [](S st) {
    return uint64_t(std::count_if(st.info.producers.begin(), st.info.producers.end(),
                                  [](const ProducerInfo& p) { return p.alive; }));
  });
  per_stream("durable_lag_records", "gauge",
             "Records published but not yet durable in the store (next_seq - durable_seq).",
             [](S st) { return minus(st.info.next_seq, st.info.durable_seq); }, kPersistedRing);
  per_stream("store_bytes", "gauge", "The store's size on disk.",
             [](S st) { return st.info.disk_bytes; }, kStore);
  per_stream("store_segments", "gauge", "Segment files of the store.",
             [](S st) { return st.info.segments; }, kStore);
  per_stream("persister_beat_timestamp_seconds", "gauge",
             "Last sign of life of the persister (seconds since the epoch; 0: never).",
             [](S st) { return st.info.persister_beat_ns / 1000000000ULL; }, kPersistedRing);

  // Per consumer.  An anonymous tailing reader and a group may share a name: `kind` tells them apart.
  const auto per_consumer = [&](const char* name, const char* help,
                                const std::function<uint64_t(const ConsumerInfo&)>& value) {
    bool any = false;
    for (const auto& m : streams) any |= !m.stat.info.consumers.empty();
    if (!any) return;
    Family f(&out, name, "gauge", help);
    for (const auto& m : streams)
      for (const ConsumerInfo& c : m.stat.info.consumers) {
        Labels l = stream_labels(m.stat.info);
        l.emplace_back("consumer", c.name);
        l.emplace_back("kind", c.durable ? "group" : "tail");
        f.sample(l, value(c));
      }
  };
  per_consumer("consumer_lag_records", "Records published that the consumer has not read.",
               [](const ConsumerInfo& c) { return c.lag; });
  per_consumer("consumer_next_seq", "First sequence number the consumer has not read.",
               [](const ConsumerInfo& c) { return c.next_seq; });
  per_consumer("consumer_alive", "1 while a live process holds the consumer.",
               [](const ConsumerInfo& c) { return uint64_t{c.alive}; });
  per_consumer("consumer_evicted", "1 once the consumer stopped holding producers back.",
               [](const ConsumerInfo& c) { return uint64_t{c.evicted}; });

  // Per bridge.
  const auto per_bridge = [&](const char* name, const char* type, const char* help,
                              const std::function<uint64_t(const BridgeMetrics&)>& value) {
    bool any = false;
    for (const auto& m : streams) any |= !m.bridges.empty();
    if (!any) return;
    Family f(&out, name, type, help);
    for (const auto& m : streams)
      for (const BridgeMetrics& b : m.bridges) {
        Labels l = stream_labels(m.stat.info);
        l.emplace_back("bridge", b.name);
        l.emplace_back("direction", b.direction);
        l.emplace_back("topic", b.topic);
        f.sample(l, value(b));
      }
  };
  per_bridge("bridge_lag_records", "gauge", "Records the bridge has yet to carry.",
             [](const BridgeMetrics& b) { return b.lag; });
  per_bridge("bridge_up", "gauge", "1 while the bridge's process is alive.",
             [](const BridgeMetrics& b) { return uint64_t{b.alive}; });
  per_bridge("bridge_delivered_total", "counter", "Records the bridge delivered.",
             [](const BridgeMetrics& b) { return b.delivered; });
  per_bridge("bridge_errors_total", "counter", "Errors the bridge met.",
             [](const BridgeMetrics& b) { return b.errors; });
  return out;
}

}  // namespace shmbus
