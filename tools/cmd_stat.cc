// cmd_stat.cc: `shmbus stat`: one stream's StreamInfo, its producers and consumers, and
// the rates measured between two snapshots an interval apart: lambda (records and bytes
// published per second) and mu per consumer (records consumed per second).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>

#include "args.h"
#include "commands.h"
#include "format.h"
#include "json.h"
#include "shmbus/shmbus.h"
#include "signals.h"

namespace shmbus::tools {
namespace {

struct Rates {
  double interval_s = 0;
  double records_per_s = 0;
  double bytes_per_s = 0;
  double rho_records_per_s = 0;   // deleted
  double rho_bytes_per_s = 0;
  // Per consumer of the second snapshot; nullopt when it was not there in the first.
  std::vector<std::optional<double>> mu;
};

Rates measure(const StreamInfo& before, const StreamInfo& after, double seconds) {
  Rates r;
  r.interval_s = seconds;
  auto per_s = [&](uint64_t a, uint64_t b) {
    return b >= a ? static_cast<double>(b - a) / seconds : 0.0;
  };
  r.records_per_s = per_s(before.next_seq, after.next_seq);
  r.bytes_per_s = per_s(before.bytes_published, after.bytes_published);
  r.rho_records_per_s = per_s(before.deleted_records, after.deleted_records);
  r.rho_bytes_per_s = per_s(before.deleted_bytes, after.deleted_bytes);
  for (const auto& c : after.consumers) {
    auto it = std::find_if(before.consumers.begin(), before.consumers.end(), [&](const auto& b) {
      return b.name == c.name && b.durable == c.durable;
    });
    if (it == before.consumers.end()) r.mu.push_back(std::nullopt);
    else r.mu.push_back(per_s(it->next_seq, c.next_seq));
  }
  return r;
}

// Capacity planning from the measured rates.  A record costs its payload plus a 32-byte
// frame (8-aligned) in the store and a 32-byte header (32-aligned) in the ring.
struct Plan {
  double retention_s = 0;            // the configured retention age (0: none)
  std::optional<double> projected_store_bytes;  // A = lambda x T (capped by retention bytes)
  std::optional<double> ring_bytes_for_stall;   // ring that absorbs a consumer stall
  double stall_s = 0;
};

Plan plan(const StreamInfo& s, const std::optional<Rates>& rates, double stall_s) {
  Plan p;
  p.stall_s = stall_s;
  if (s.persist) p.retention_s = std::chrono::duration<double>(s.persist->retention_age).count();
  if (!rates) return p;
  const double store_rate = rates->bytes_per_s + rates->records_per_s * 36.0;
  const double ring_rate = rates->bytes_per_s + rates->records_per_s * 48.0;
  if (s.persist && (p.retention_s > 0 || s.persist->retention_bytes > 0)) {
    double a = p.retention_s > 0 ? store_rate * p.retention_s : 1e300;
    if (s.persist->retention_bytes > 0) a = std::min(a, static_cast<double>(s.persist->retention_bytes));
    p.projected_store_bytes = a;
  }
  p.ring_bytes_for_stall = ring_rate * stall_s;
  return p;
}

void print_json(const StreamInfo& s, const std::optional<Rates>& rates, const Plan& pl) {
  JsonWriter w;
  w.begin_object()
      .field("stream", s.name)
      .field("namespace", s.ns)
      .field("layout_version", s.layout_version)
      .field("capacity", s.capacity)
      .field("max_record", s.max_record)
      .field("created_ns", s.created_ns)
      .field("next_seq", s.next_seq)
      .field("oldest_seq", s.oldest_seq)
      .field("tail_pos", s.tail_pos)
      .field("records_published", s.records_published)
      .field("bytes_published", s.bytes_published)
      .field("abandoned", s.abandoned)
      .field("aborted", s.aborted)
      .field("producer_waits", s.producer_waits)
      .field("producer_full", s.producer_full)
      .field("tail_lost", s.tail_lost)
      .field("evictions", s.evictions)
      .field("abandon_timeout_ms", s.abandon_timeout_ms)
      .field("consumer_dead_timeout_ms", s.consumer_dead_timeout_ms);
  w.key("persist");
  if (s.persist) {
    const PersistSettings& p = *s.persist;
    w.begin_object()
        .field("store_dir", p.store_dir)
        .field("store_kind", p.store_kind)
        .field("hold_producers", p.hold_producers)
        .field("sync", p.sync)
        .field("flush_interval_ns", static_cast<uint64_t>(p.flush_interval.count()))
        .field("retention_age_ns", static_cast<uint64_t>(p.retention_age.count()))
        .field("retention_bytes", p.retention_bytes)
        .field("segment_bytes", p.segment_bytes)
        .end_object();
  } else {
    w.null();
  }
  w.field("durable_seq", s.durable_seq)
      .field("oldest_persisted_seq", s.oldest_persisted_seq)
      .field("deleted_below", s.deleted_below)
      .field("persister_beat_ns", s.persister_beat_ns)
      .field("store", s.persist ? s.persist->store_kind : std::string())
      .field("pmem_granularity", s.pmem_granularity)
      .field("disk_bytes", s.disk_bytes)
      .field("segments", s.segments)
      .field("deleted_records", s.deleted_records)
      .field("deleted_bytes", s.deleted_bytes)
      .field("retention_s", pl.retention_s)
      .field("stall_s", pl.stall_s);
  w.key("projected_store_bytes");
  pl.projected_store_bytes ? w.value(*pl.projected_store_bytes) : w.null();
  w.key("ring_bytes_for_stall");
  pl.ring_bytes_for_stall ? w.value(*pl.ring_bytes_for_stall) : w.null();
  w.key("rho_records_per_s");
  rates ? w.value(rates->rho_records_per_s) : w.null();
  w.key("rho_bytes_per_s");
  rates ? w.value(rates->rho_bytes_per_s) : w.null();
  w.field("interval_s", rates ? rates->interval_s : 0.0);
  w.key("lambda_records_per_s");
  rates ? w.value(rates->records_per_s) : w.null();
  w.key("lambda_bytes_per_s");
  rates ? w.value(rates->bytes_per_s) : w.null();

  w.key("producers").begin_array();
  for (const auto& p : s.producers) {
    w.begin_object()
        .field("pid", p.pid)
        .field("alive", p.alive)
        .field("start_ns", p.start_ns)
        .field("last_active_ns", p.last_active_ns)
        .field("records", p.records)
        .field("bytes", p.bytes)
        .end_object();
  }
  w.end_array();

  w.key("consumers").begin_array();
  for (size_t i = 0; i < s.consumers.size(); ++i) {
    const auto& c = s.consumers[i];
    w.begin_object()
        .field("name", c.name)
        .field("durable", c.durable)
        .field("pid", c.pid)
        .field("alive", c.alive)
        .field("evicted", c.evicted)
        .field("next_seq", c.next_seq)
        .field("lag", c.lag)
        .field("last_active_ns", c.last_active_ns);
    w.key("mu_records_per_s");
    if (rates && rates->mu[i]) w.value(*rates->mu[i]);
    else w.null();
    w.end_object();
  }
  w.end_array();
  w.end_object();
  std::printf("%s\n", w.str().c_str());
}

void print_text(const StreamInfo& s, const std::optional<Rates>& rates, const Plan& pl) {
  using ull = unsigned long long;
  std::printf("stream            %s (namespace %s, layout version %u)\n", s.name.c_str(),
              s.ns.c_str(), s.layout_version);
  std::printf("capacity          %s (%llu bytes), max record %llu bytes\n",
              format_size(s.capacity).c_str(), ull(s.capacity), ull(s.max_record));
  std::printf("created           %s\n", format_time_ns(s.created_ns).c_str());
  std::printf("sequences         next %llu, oldest in ring %llu, bytes claimed %llu\n",
              ull(s.next_seq), ull(s.oldest_seq), ull(s.tail_pos));
  std::printf("published         %llu records, %llu bytes\n", ull(s.records_published),
              ull(s.bytes_published));
  std::printf("counters          abandoned %llu, aborted %llu, producer waits %llu, "
              "producer full %llu, tail lost %llu, evictions %llu\n",
              ull(s.abandoned), ull(s.aborted), ull(s.producer_waits), ull(s.producer_full),
              ull(s.tail_lost), ull(s.evictions));
  std::printf("timeouts          abandon %llu ms, consumer dead %llu ms\n",
              ull(s.abandon_timeout_ms), ull(s.consumer_dead_timeout_ms));
  if (s.persist) {
    std::printf("persisted         %s store at %s%s%s\n", s.persist->store_kind.c_str(),
                s.persist->store_dir.c_str(), s.persist->sync ? ", sync" : "",
                s.persist->hold_producers ? ", holds producers" : "");
    std::printf("durable           below seq %llu, oldest persisted %llu, deleted below %llu, "
                "persister beat %s\n",
                ull(s.durable_seq), ull(s.oldest_persisted_seq), ull(s.deleted_below),
                s.persister_beat_ns ? format_time_ns(s.persister_beat_ns).c_str() : "never");
  }
  if (s.persist)
    std::printf("store             %s, %llu segment(s), %s on disk%s%s; deleted %llu records, %s\n",
                s.persist->store_kind.c_str(), ull(s.segments), format_bytes(s.disk_bytes).c_str(),
                s.pmem_granularity.empty() ? "" : ", pmem2 granularity ",
                s.pmem_granularity.c_str(), ull(s.deleted_records),
                format_bytes(s.deleted_bytes).c_str());
  if (rates) {
    std::printf("lambda            %s records/s, %s bytes/s published (over %.3f s)\n",
                format_rate(rates->records_per_s).c_str(), format_rate(rates->bytes_per_s).c_str(),
                rates->interval_s);
    if (s.persist)
      std::printf("rho               %s records/s, %s bytes/s deleted\n",
                  format_rate(rates->rho_records_per_s).c_str(),
                  format_rate(rates->rho_bytes_per_s).c_str());
    if (pl.projected_store_bytes)
      std::printf("A = lambda x T    %s on disk at steady state (retention %.0f s)\n",
                  format_bytes(*pl.projected_store_bytes).c_str(), pl.retention_s);
    if (pl.ring_bytes_for_stall)
      std::printf("ring for stall    %s rides out a %.3g s consumer stall at this lambda "
                  "(capacity now %s)\n",
                  format_bytes(*pl.ring_bytes_for_stall).c_str(), pl.stall_s,
                  format_size(s.capacity).c_str());
  }

  std::printf("\nproducers (%zu)\n", s.producers.size());
  if (!s.producers.empty())
    std::printf("  %8s %5s %12s %14s  %s\n", "PID", "ALIVE", "RECORDS", "BYTES", "LAST_ACTIVE");
  for (const auto& p : s.producers)
    std::printf("  %8u %5s %12llu %14llu  %s\n", p.pid, p.alive ? "yes" : "no", ull(p.records),
                ull(p.bytes), format_time_ns(p.last_active_ns).c_str());

  std::printf("\nconsumers (%zu)\n", s.consumers.size());
  if (s.consumers.empty()) return;
  size_t width = 4;
  for (const auto& c : s.consumers) width = std::max(width, c.name.size());
  const int wd = static_cast<int>(width);
  std::printf("  %-*s %-7s %8s %5s %7s %12s %12s %14s\n", wd, "NAME", "KIND", "PID", "ALIVE",
              "EVICTED", "NEXT_SEQ", "LAG", "MU(rec/s)");
  for (size_t i = 0; i < s.consumers.size(); ++i) {
    const auto& c = s.consumers[i];
    std::string mu = "-";
    if (rates && rates->mu[i]) mu = format_rate(*rates->mu[i]);
    std::printf("  %-*s %-7s %8u %5s %7s %12llu %12llu %14s\n", wd, c.name.c_str(),
                c.durable ? "group" : "tail", c.pid, c.alive ? "yes" : "no",
                c.evicted ? "yes" : "no", ull(c.next_seq), ull(c.lag), mu.c_str());
  }
}

}  // namespace

int cmd_stat(const StatArgs& a) {
  const std::string ns = resolve_namespace(a.ns);
  auto interval = duration_flag("--interval", a.interval);
  if (!interval) return kExitUsage;
  auto stall = duration_flag("--stall", a.stall);
  if (!stall) return kExitUsage;
  const double stall_s = std::chrono::duration<double>(*stall).count();
  auto first = stream_info(ns, a.stream);
  if (!first) return fail(first.error());
  if (interval->count() == 0) {
    Plan pl = plan(first.value(), std::nullopt, stall_s);
    a.json ? print_json(first.value(), std::nullopt, pl) : print_text(first.value(), std::nullopt, pl);
    return kExitOk;
  }
  install_stop_handlers();
  const auto t0 = std::chrono::steady_clock::now();
  const auto deadline = t0 + *interval;
  // Sleep in short steps so that ^C still prints what was measured so far.
  while (!stop_requested()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(deadline - now,
                                                                   std::chrono::milliseconds(50)));
  }
  auto second = stream_info(ns, a.stream);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!second) return fail(second.error());
  std::optional<Rates> rates = measure(first.value(), second.value(), seconds);
  Plan pl = plan(second.value(), rates, stall_s);
  a.json ? print_json(second.value(), rates, pl) : print_text(second.value(), rates, pl);
  return kExitOk;
}

}  // namespace shmbus::tools
