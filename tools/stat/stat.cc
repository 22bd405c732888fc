// stat.cc: see include/shmbus/stat.h.
#include "shmbus/stat.h"

#include "shmbus/json.h"
#include "shmbus/store_admin.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string_view>
#include <utility>

namespace shmbus {

namespace {

// A value that may be missing: null in the document.
template <typename T>
void value_or_null(JsonWriter& w, const std::optional<T>& v) {
  if (v) w.value(*v);
  else w.null();
}

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
    // persist/'s frame, or its share of a batch frame, for records of the measured mean size
    const double store_per_record =
        persist::store_bytes_per_record(lambda_records > 0 ? lambda_bytes / lambda_records : 0);
    double a = p.retention_s > 0 ? (lambda_bytes + lambda_records * store_per_record) * p.retention_s
                                 : HUGE_VAL;
    if (s.persist->retention_bytes > 0) a = std::min(a, static_cast<double>(s.persist->retention_bytes));
    p.projected_store_bytes = a;
  }
  p.ring_bytes_for_stall = (lambda_bytes + lambda_records * kRingBytesPerRecord) * stall_s;
  return p;
}

namespace {

// The store's size on disk is the persister's count in the ring's header.  A ring
// created again over its store (after a reboot, or rm and create) has none until its
// persister runs: stat, metrics and top showed "0 segment(s), 0 B" for a store that held
// data (a review).  Until then it is read from the store itself, as for a stored-only
// stream.
void store_size_before_a_persister(StreamInfo& s) {
  if (!s.persist || s.persister_beat_ns != 0 || s.segments != 0) return;
  const std::string& dir = s.persist->store_dir;
  const std::string tail = "/" + s.ns + "/" + s.name;
  if (dir.size() <= tail.size() || dir.compare(dir.size() - tail.size(), tail.size(), tail) != 0) return;
  if (auto u = persist::store_usage(s.ns, s.name, std::string_view(dir).substr(0, dir.size() - tail.size()))) {
    s.disk_bytes = u->bytes;
    s.segments = u->segments;
  }
}

}  // namespace

StreamStat compute_stat(StreamInfo after, const StreamInfo* before, double seconds, double stall_s) {
  StreamStat st;
  store_size_before_a_persister(after);
  st.info = std::move(after);
  const StreamInfo& s = st.info;
  if (before) st.rates = measure_rates(*before, s, seconds);
  st.plan = plan_capacity(s, st.rates ? &*st.rates : nullptr, stall_s);
  if (s.persist) st.store = persist::store_kind_name(s.persist->store_kind);
  const persist::PmemGranularity g = persist::granularity_from_code(s.pmem_granularity_code);
  if (g != persist::PmemGranularity::kNotPmem) st.pmem_granularity = persist::granularity_name(g);
  return st;
}

std::string stat_json(const StreamStat& st, const std::function<void(JsonWriter&)>& more) {
  const StreamInfo& s = st.info;
  const StatRates* rates = st.rates ? &*st.rates : nullptr;
  const CapacityPlan& plan = st.plan;
  JsonWriter w;
  w.begin_object();
  w.key("stream").value(s.name).key("namespace").value(s.ns);
  w.key("layout_version").value(uint64_t{s.layout_version});
  w.key("single_producer").value(s.single_producer);
  w.key("capacity").value(s.capacity).key("max_record").value(s.max_record);
  w.key("created_ns").value(s.created_ns).key("next_seq").value(s.next_seq);
  w.key("oldest_seq").value(s.oldest_seq).key("tail_pos").value(s.tail_pos);
  w.key("records_published").value(s.records_published);
  w.key("bytes_published").value(s.bytes_published);
  w.key("abandoned").value(s.abandoned).key("aborted").value(s.aborted);
  w.key("producer_waits").value(s.producer_waits).key("producer_full").value(s.producer_full);
  w.key("tail_lost").value(s.tail_lost).key("evictions").value(s.evictions);
  w.key("abandon_timeout_ms").value(s.abandon_timeout_ms);
  w.key("consumer_dead_timeout_ms").value(s.consumer_dead_timeout_ms);
  w.key("evicted_lost").value(s.evicted_lost);
  w.key("consumer_retention_ms").value(s.consumer_retention_ms);
  w.key("persist");
  if (s.persist) {
    const PersistSettings& p = *s.persist;
    w.begin_object();
    w.key("store_dir").value(p.store_dir).key("store_kind").value(st.store);
    w.key("hold_producers").value(p.hold_producers).key("sync").value(p.sync);
    w.key("secure_delete").value(p.secure_delete);
    w.key("flush_interval_ns").value(static_cast<uint64_t>(p.flush_interval.count()));
    w.key("retention_age_ns").value(static_cast<uint64_t>(p.retention_age.count()));
    w.key("retention_bytes").value(p.retention_bytes).key("segment_bytes").value(p.segment_bytes);
    w.end_object();
  } else {
    w.null();
  }
  w.key("durable_seq").value(s.durable_seq).key("oldest_persisted_seq").value(s.oldest_persisted_seq);
  w.key("deleted_below").value(s.deleted_below).key("persister_beat_ns").value(s.persister_beat_ns);
  w.key("store").value(st.store);
  w.key("pmem_granularity").value(st.pmem_granularity);
  w.key("disk_bytes").value(s.disk_bytes).key("segments").value(s.segments);
  w.key("store_errors").value(s.store_errors);
  w.key("deleted_records").value(s.deleted_records).key("deleted_bytes").value(s.deleted_bytes);
  w.key("retention_s").value(plan.retention_s).key("stall_s").value(plan.stall_s);
  w.key("projected_store_bytes");
  value_or_null(w, plan.projected_store_bytes);
  w.key("ring_bytes_for_stall");
  value_or_null(w, plan.ring_bytes_for_stall);
  const auto rate = [&](double StatRates::*field) {
    return rates ? std::optional<double>(rates->*field) : std::nullopt;
  };
  w.key("rho_records_per_s");
  value_or_null(w, rate(&StatRates::rho_records_per_s));
  w.key("rho_bytes_per_s");
  value_or_null(w, rate(&StatRates::rho_bytes_per_s));
  w.key("interval_s").value(rates ? rates->interval_s : 0.0);
  w.key("lambda_records_per_s");
  value_or_null(w, rate(&StatRates::lambda_records_per_s));
  w.key("lambda_bytes_per_s");
  value_or_null(w, rate(&StatRates::lambda_bytes_per_s));

  w.key("producers").begin_array();
  for (const ProducerInfo& p : s.producers) {
    w.begin_object();
    w.key("pid").value(uint64_t{p.pid}).key("alive").value(p.alive);
    w.key("start_ns").value(p.start_ns).key("last_active_ns").value(p.last_active_ns);
    w.key("records").value(p.records).key("bytes").value(p.bytes);
    w.end_object();
  }
  w.end_array();

  w.key("consumers").begin_array();
  for (size_t i = 0; i < s.consumers.size(); ++i) {
    const ConsumerInfo& c = s.consumers[i];
    w.begin_object();
    w.key("name").value(c.name).key("durable").value(c.durable);
    w.key("pid").value(uint64_t{c.pid}).key("alive").value(c.alive);
    w.key("evicted").value(c.evicted).key("expired").value(c.expired);
    w.key("next_seq").value(c.next_seq).key("lag").value(c.lag);
    w.key("last_active_ns").value(c.last_active_ns);
    std::optional<double> mu;
    if (rates && i < rates->mu_records_per_s.size()) mu = rates->mu_records_per_s[i];
    w.key("mu_records_per_s");
    value_or_null(w, mu);
    w.key("owed_from");
    value_or_null(w, c.owed_from);
    w.end_object();
  }
  w.end_array();
  if (more) more(w);
  w.end_object();
  return w.release();
}

void write_stored_keys(const StreamStat& st, JsonWriter& w) {
  w.field("ring", false);
  if (!st.store_range_error.empty()) w.field("store_range_error", st.store_range_error);
}

Result<StreamStat> stored_stream_stat(const std::string& ns, const std::string& stream,
                                      std::string_view data_dir_flag) {
  auto usage = persist::store_usage(ns, stream, data_dir_flag);
  if (!usage) return usage.error();
  StreamInfo info;
  info.ns = ns;
  info.name = stream;
  PersistSettings ps = usage->settings.value_or(PersistSettings{});  // (defaults if it left none)
  ps.store_dir = usage->dir;
  info.persist = ps;
  info.disk_bytes = usage->bytes;
  info.segments = usage->segments;
  info.next_seq = info.oldest_seq = info.durable_seq = usage->end_seq;
  info.oldest_persisted_seq = usage->first_seq;
  info.deleted_below = usage->deleted_below;
  StreamStat st = compute_stat(std::move(info), nullptr, 0, 0);
  st.store_range_error = usage->range_error;
  return st;
}

}  // namespace shmbus
