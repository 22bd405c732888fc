// stat.cc: see shmbus/stat.h.
#include "shmbus/stat.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string_view>

namespace shmbus {

namespace {

// ---- a minimal JSON writer (RFC 8259), enough for one stat document ------------------
// Its output matches the tools' writer (tools/json.h) byte for byte: the same escaping,
// and doubles as "%.3f" (or every digit when huge), so `stat --json` did not change.

// Length of the well-formed UTF-8 sequence at s[0] (1..4), or 0 if there is none
// (stray continuation byte, overlong form, surrogate, > U+10FFFF, truncated).
size_t utf8_sequence_length(std::string_view s) noexcept {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // UTF-16 surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (s.size() < len || b(1) < lo || b(1) > hi) return 0;
  for (size_t i = 2; i < len; ++i)
    if (b(i) < 0x80 || b(i) > 0xBF) return 0;
  return len;
}

void append_escaped(std::string_view s, std::string* out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  while (!s.empty()) {
    const auto c = static_cast<unsigned char>(s[0]);
    if (c >= 0x80) {
      const size_t n = utf8_sequence_length(s);
      if (n == 0) {
        *out += "\\ufffd";  // one replacement character per bad byte
        s.remove_prefix(1);
      } else {
        out->append(s.substr(0, n));
        s.remove_prefix(n);
      }
      continue;
    }
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\b': *out += "\\b"; break;
      case '\f': *out += "\\f"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          *out += "\\u00";
          *out += kDigits[c >> 4];
          *out += kDigits[c & 15];
        } else {
          *out += static_cast<char>(c);
        }
    }
    s.remove_prefix(1);
  }
}

// Commas are the writer's business: every value and key goes through sep().
class Json {
 public:
  Json& open(char bracket) {
    sep();
    out_ += bracket;
    first_ = true;
    return *this;
  }
  Json& close(char bracket) {
    out_ += bracket;
    first_ = false;
    return *this;
  }
  Json& key(std::string_view k) {
    sep();
    string(k);
    out_ += ':';
    after_key_ = true;
    return *this;
  }
  Json& str(std::string_view s) {
    sep();
    string(s);
    return *this;
  }
  Json& num(uint64_t v) {
    sep();
    out_ += std::to_string(v);
    return *this;
  }
  Json& num(double v) {
    if (!std::isfinite(v)) return null();
    sep();
    char buf[64];
    std::snprintf(buf, sizeof buf, std::fabs(v) < 1e15 ? "%.3f" : "%.17g", v);
    out_ += buf;
    return *this;
  }
  Json& num(const std::optional<double>& v) { return v ? num(*v) : null(); }
  Json& boolean(bool v) {
    sep();
    out_ += v ? "true" : "false";
    return *this;
  }
  Json& null() {
    sep();
    out_ += "null";
    return *this;
  }
  std::string take() { return std::move(out_); }

 private:
  void sep() {
    if (after_key_) after_key_ = false;
    else if (!first_) out_ += ',';
    first_ = false;
  }
  void string(std::string_view s) {
    out_ += '"';
    append_escaped(s, &out_);
    out_ += '"';
  }

  std::string out_;
  bool first_ = true;      // no element yet in the innermost open container
  bool after_key_ = false;
};

}  // namespace

StatRates measure_rates(const StreamInfo& before, const StreamInfo& after, double seconds) {
  StatRates r;
  r.interval_s = seconds;
  const auto per_s = [&](uint64_t a, uint64_t b) {
    return b >= a && seconds > 0 ? static_cast<double>(b - a) / seconds : 0.0;
  };
  r.lambda_records_per_s = per_s(before.next_seq, after.next_seq);
  r.lambda_bytes_per_s = per_s(before.bytes_published, after.bytes_published);
  r.rho_records_per_s = per_s(before.deleted_records, after.deleted_records);
  r.rho_bytes_per_s = per_s(before.deleted_bytes, after.deleted_bytes);
  r.mu_records_per_s.reserve(after.consumers.size());
  for (const ConsumerInfo& c : after.consumers) {
    auto it = std::find_if(before.consumers.begin(), before.consumers.end(),
                           [&](const ConsumerInfo& b) { return b.name == c.name && b.durable == c.durable; });
    if (it == before.consumers.end()) r.mu_records_per_s.push_back(std::nullopt);
    else r.mu_records_per_s.push_back(per_s(it->next_seq, c.next_seq));
  }
  return r;
}

CapacityPlan plan_capacity(const StreamInfo& s, const StatRates* rates, double stall_s) {
  CapacityPlan p;
  p.stall_s = stall_s;
  if (s.persist) p.retention_s = std::chrono::duration<double>(s.persist->retention_age).count();
  if (!rates) return p;
  const double lambda_records = rates->lambda_records_per_s;
  const double lambda_bytes = rates->lambda_bytes_per_s;
  if (s.persist && (p.retention_s > 0 || s.persist->retention_bytes > 0)) {
    // Bounded by age, by bytes, or both: whichever is reached first.
    double a = p.retention_s > 0 ? (lambda_bytes + lambda_records * kStoreBytesPerRecord) * p.retention_s
                                 : HUGE_VAL;
    if (s.persist->retention_bytes > 0) a = std::min(a, static_cast<double>(s.persist->retention_bytes));
    p.projected_store_bytes = a;
  }
  p.ring_bytes_for_stall = (lambda_bytes + lambda_records * kRingBytesPerRecord) * stall_s;
  return p;
}

std::string stat_json(const StreamInfo& s, const StatRates* rates, const CapacityPlan& plan) {
  Json w;
  w.open('{');
  w.key("stream").str(s.name).key("namespace").str(s.ns);
  w.key("layout_version").num(uint64_t{s.layout_version});
  w.key("capacity").num(s.capacity).key("max_record").num(s.max_record);
  w.key("created_ns").num(s.created_ns).key("next_seq").num(s.next_seq);
  w.key("oldest_seq").num(s.oldest_seq).key("tail_pos").num(s.tail_pos);
  w.key("records_published").num(s.records_published);
  w.key("bytes_published").num(s.bytes_published);
  w.key("abandoned").num(s.abandoned).key("aborted").num(s.aborted);
  w.key("producer_waits").num(s.producer_waits).key("producer_full").num(s.producer_full);
  w.key("tail_lost").num(s.tail_lost).key("evictions").num(s.evictions);
  w.key("abandon_timeout_ms").num(s.abandon_timeout_ms);
  w.key("consumer_dead_timeout_ms").num(s.consumer_dead_timeout_ms);
  w.key("persist");
  if (s.persist) {
    const PersistSettings& p = *s.persist;
    w.open('{');
    w.key("store_dir").str(p.store_dir).key("store_kind").str(p.store_kind);
    w.key("hold_producers").boolean(p.hold_producers).key("sync").boolean(p.sync);
    w.key("flush_interval_ns").num(static_cast<uint64_t>(p.flush_interval.count()));
    w.key("retention_age_ns").num(static_cast<uint64_t>(p.retention_age.count()));
    w.key("retention_bytes").num(p.retention_bytes).key("segment_bytes").num(p.segment_bytes);
    w.close('}');
  } else {
    w.null();
  }
  w.key("durable_seq").num(s.durable_seq).key("oldest_persisted_seq").num(s.oldest_persisted_seq);
  w.key("deleted_below").num(s.deleted_below).key("persister_beat_ns").num(s.persister_beat_ns);
  w.key("store").str(s.persist ? std::string_view(s.persist->store_kind) : std::string_view());
  w.key("pmem_granularity").str(s.pmem_granularity);
  w.key("disk_bytes").num(s.disk_bytes).key("segments").num(s.segments);
  w.key("deleted_records").num(s.deleted_records).key("deleted_bytes").num(s.deleted_bytes);
  w.key("retention_s").num(plan.retention_s).key("stall_s").num(plan.stall_s);
  w.key("projected_store_bytes").num(plan.projected_store_bytes);
  w.key("ring_bytes_for_stall").num(plan.ring_bytes_for_stall);
  const auto rate = [&](double StatRates::*field) {
    return rates ? std::optional<double>(rates->*field) : std::nullopt;
  };
  w.key("rho_records_per_s").num(rate(&StatRates::rho_records_per_s));
  w.key("rho_bytes_per_s").num(rate(&StatRates::rho_bytes_per_s));
  w.key("interval_s").num(rates ? rates->interval_s : 0.0);
  w.key("lambda_records_per_s").num(rate(&StatRates::lambda_records_per_s));
  w.key("lambda_bytes_per_s").num(rate(&StatRates::lambda_bytes_per_s));

  w.key("producers").open('[');
  for (const ProducerInfo& p : s.producers) {
    w.open('{');
    w.key("pid").num(uint64_t{p.pid}).key("alive").boolean(p.alive);
    w.key("start_ns").num(p.start_ns).key("last_active_ns").num(p.last_active_ns);
    w.key("records").num(p.records).key("bytes").num(p.bytes);
    w.close('}');
  }
  w.close(']');

  w.key("consumers").open('[');
  for (size_t i = 0; i < s.consumers.size(); ++i) {
    const ConsumerInfo& c = s.consumers[i];
    w.open('{');
    w.key("name").str(c.name).key("durable").boolean(c.durable);
    w.key("pid").num(uint64_t{c.pid}).key("alive").boolean(c.alive);
    w.key("evicted").boolean(c.evicted).key("next_seq").num(c.next_seq).key("lag").num(c.lag);
    w.key("last_active_ns").num(c.last_active_ns);
    std::optional<double> mu;
    if (rates && i < rates->mu_records_per_s.size()) mu = rates->mu_records_per_s[i];
    w.key("mu_records_per_s").num(mu);
    w.close('}');
  }
  w.close(']');
  w.close('}');
  return w.take();
}

}  // namespace shmbus
