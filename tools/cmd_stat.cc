// cmd_stat.cc: `shmbus stat`: one stream's StreamInfo, its producers and consumers, and
// the rates measured between two snapshots an interval apart: lambda (records and bytes
// published per second) and mu per consumer (records consumed per second).  The
// document (compute_stat) and its --json form are tools/stat's (shmbus/stat.h), shared
// with the Python shmbus.stat(); this file takes the snapshots and prints the text form.
#include <stdio_ext.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "args.h"
#include "collect.h"
#include "commands.h"
#include "format.h"
#include "shmbus/prometheus.h"
#include "shmbus/shmbus.h"
#include "shmbus/stat.h"
#include "signals.h"

namespace shmbus::tools {
namespace {

void print_text(const StreamStat& st) {
  using ull = unsigned long long;
  const StreamInfo& s = st.info;
  const StatRates* rates = st.rates ? &*st.rates : nullptr;
  const CapacityPlan& pl = st.plan;
  // Names and paths come from shared memory: escaped, so that nothing in them can
  // drive the terminal.
  std::printf("stream            %s (namespace %s, layout version %u%s)\n",
              terminal_text(s.name).c_str(), terminal_text(s.ns).c_str(), s.layout_version,
              s.single_producer ? ", single producer" : "");
  std::printf("capacity          %s (%llu bytes), max record %llu bytes\n",
              format_size(s.capacity).c_str(), ull(s.capacity), ull(s.max_record));
  std::printf("created           %s\n", format_time_ns(s.created_ns).c_str());
  std::printf("sequences         next %llu, oldest in ring %llu, bytes claimed %llu\n",
              ull(s.next_seq), ull(s.oldest_seq), ull(s.tail_pos));
  std::printf("published         %llu records, %llu bytes\n", ull(s.records_published),
              ull(s.bytes_published));
  std::printf("counters          abandoned %llu, aborted %llu, producer waits %llu, "
              "producer full %llu, tail lost %llu, evictions %llu (records they lost %llu)\n",
              ull(s.abandoned), ull(s.aborted), ull(s.producer_waits), ull(s.producer_full),
              ull(s.tail_lost), ull(s.evictions), ull(s.evicted_lost));
  const uint64_t kept = s.consumer_retention_ms;
  const std::string kept_text = kept == 0                 ? "for ever"
                                : kept % 86400000 == 0    ? std::to_string(kept / 86400000) + " d"
                                : kept % 3600000 == 0     ? std::to_string(kept / 3600000) + " h"
                                                          : std::to_string(kept) + " ms";
  std::printf("timeouts          abandon %llu ms, consumer dead %llu ms, group positions kept %s\n",
              ull(s.abandon_timeout_ms), ull(s.consumer_dead_timeout_ms), kept_text.c_str());
  if (s.persist) {
    std::printf("persisted         %s store at %s%s%s%s\n", st.store.c_str(),
                terminal_text(s.persist->store_dir).c_str(), s.persist->sync ? ", sync" : "",
                s.persist->hold_producers ? ", holds producers" : "",
                s.persist->secure_delete ? ", overwrites what it deletes (--secure)" : "");
    std::printf("durable           below seq %llu, oldest persisted %llu, deleted below %llu, "
                "persister beat %s\n",
                ull(s.durable_seq), ull(s.oldest_persisted_seq), ull(s.deleted_below),
                s.persister_beat_ns ? format_time_ns(s.persister_beat_ns).c_str() : "never");
  }
  // "page": no DAX, persisting is msync.
  const std::string granularity_text =
      st.pmem_granularity + (st.pmem_granularity == "page" ? " (msync)" : "");
  if (s.persist)
    std::printf("store             %s, %llu segment(s), %s on disk%s%s; deleted %llu records, %s; "
                "%llu store error(s)\n",
                st.store.c_str(), ull(s.segments), format_bytes(s.disk_bytes).c_str(),
                st.pmem_granularity.empty() ? "" : ", pmem2 granularity ",
                granularity_text.c_str(), ull(s.deleted_records),
                format_bytes(s.deleted_bytes).c_str(), ull(s.store_errors));
  if (!rates && s.created_ns && now_ns() > s.created_ns) {
    // What the counters already say: the averages since the stream was created.
    const double age_s = static_cast<double>(now_ns() - s.created_ns) / 1e9;
    std::printf("average           %s records/s, %s bytes/s published since created %.0f s ago "
                "(--interval D or --watch: measured rates)\n",
                format_rate(static_cast<double>(s.records_published) / age_s).c_str(),
                format_rate(static_cast<double>(s.bytes_published) / age_s).c_str(), age_s);
  }
  if (rates) {
    std::printf("lambda            %s records/s, %s bytes/s published (over %.3f s)\n",
                format_rate(rates->lambda_records_per_s).c_str(),
                format_rate(rates->lambda_bytes_per_s).c_str(),
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
  std::vector<std::string> names;
  for (const auto& c : s.consumers) names.push_back(terminal_text(c.name));
  size_t width = 4;
  for (const auto& n : names) width = std::max(width, n.size());
  const int wd = static_cast<int>(width);
  std::printf("  %-*s %-7s %8s %5s %7s %12s %12s %14s\n", wd, "NAME", "KIND", "PID", "ALIVE",
              "EVICTED", "NEXT_SEQ", "LAG", "MU(rec/s)");
  for (size_t i = 0; i < s.consumers.size(); ++i) {
    const auto& c = s.consumers[i];
    std::string mu = "-";
    if (rates && rates->mu_records_per_s[i]) mu = format_rate(*rates->mu_records_per_s[i]);
    std::printf("  %-*s %-7s %8u %5s %7s %12llu %12llu %14s\n", wd, names[i].c_str(),
                c.durable ? "group" : "tail", c.pid, c.alive ? "yes" : "no",
                c.expired ? "expired" : c.evicted ? "yes" : "no", ull(c.next_seq), ull(c.lag), mu.c_str());
  }
  for (const auto& c : s.consumers)
    if (c.expired)
      std::printf("  group %s expired: nobody held it for longer than the consumer retention; its "
                  "position is forgotten and its next holder starts it anew\n",
                  terminal_text(c.name).c_str());
  for (size_t i = 0; i < s.consumers.size(); ++i)
    if (s.consumers[i].owed_from)
      std::printf("  group %s owes the records from seq %llu on (left the ring unread): its "
                  "next holder is told of them\n",
                  names[i].c_str(), ull(*s.consumers[i].owed_from));
}

void print(const StreamStat& st, bool json) {
  const StreamInfo& s = st.info;
  if (json) {
    // cmd_bridge.cc: the "bridges" key.  (No "ring" key here: Python's shmbus.stat() has
    // the same keys; only a stream without its ring says "ring": false.)
    const std::string doc = stat_json(st, [&](JsonWriter& w) { write_bridges_json(s.ns, s.name, w); });
    std::printf("%s\n", doc.c_str());
  } else {
    print_text(st);
    print_bridges_text(s.ns, s.name);
  }
}

// A stream that exists only as its store (ls: "stored (no ring)"): the store's part, and
// in --json every key of the document (the ring's zero) with "ring": false.
int print_stored(const StreamMetrics& m, bool json) {
  const StreamInfo& s = m.stat.info;
  if (json) {
    std::printf("%s\n", stat_json(m.stat, [&](JsonWriter& w) {
                           write_bridges_json(s.ns, s.name, w);
                           write_stored_keys(m.stat, w);
                         }).c_str());
    return kExitOk;
  }
  std::printf("stream            %s/%s: no ring (stored only; shmbus create %s continues it)\n",
              terminal_text(s.ns).c_str(), terminal_text(s.name).c_str(), terminal_text(s.name).c_str());
  std::printf("store             %s: %s in %llu segments\n",
              terminal_text(s.persist ? s.persist->store_dir : "").c_str(),
              format_bytes(static_cast<double>(s.disk_bytes)).c_str(), static_cast<unsigned long long>(s.segments));
  using ull = unsigned long long;
  const std::string held = s.oldest_persisted_seq < s.next_seq
                               ? "records " + std::to_string(s.oldest_persisted_seq) + ".." +
                                     std::to_string(s.next_seq - 1)
                               : std::string("no records");
  if (!m.stat.store_range_error.empty())
    std::printf("stored            range unknown: %s (shmbus fsck %s says more)\n",
                terminal_text(m.stat.store_range_error).c_str(),
                terminal_text(s.persist ? s.persist->store_dir : "").c_str());
  else
    std::printf("stored            %s (next sequence %llu), deleted below %llu\n", held.c_str(),
                ull(s.next_seq), ull(s.deleted_below));
  return kExitOk;
}

// Sleeps until `deadline` in short steps; false if a stop signal came first.
bool sleep_until(std::chrono::steady_clock::time_point deadline) {
  while (!stop_requested()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return true;
    std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(deadline - now,
                                                                   std::chrono::milliseconds(50)));
  }
  return false;
}

// --watch: a snapshot every `every`, each printed with the rates since the one before.
int watch(const StatArgs& a, const std::string& ns, std::chrono::nanoseconds every, double stall_s,
          StreamInfo prev) {
  auto t_prev = std::chrono::steady_clock::now();
  print(compute_stat(prev, nullptr, 0, stall_s), a.json);
  for (uint64_t round = 1;; ++round) {
    // Nobody reads the snapshots any more: stop (a review: it refreshed into nothing
    // until Ctrl-C).  A pipe whose reader left (`stat --watch | head`) or a stop while
    // blocked in the write ends quietly, as in top and tail; a closed stdout or a full
    // disk is a failure.
    if (errno = 0; std::fflush(stdout) != 0 || std::ferror(stdout)) {
      const int err = errno;
      __fpurge(stdout);
      return stdout_write_error(err);
    }
    if (!sleep_until(t_prev + every)) return kExitOk;  // stopped: main() picks the code
    auto next = stream_info(ns, a.stream);
    const auto t = std::chrono::steady_clock::now();
    if (!next) return fail(next.error());
    StreamStat st = compute_stat(std::move(next.value()), &prev,
                                 std::chrono::duration<double>(t - t_prev).count(), stall_s);
    if (!a.json) std::printf("\n---- %s\n", format_time_ns(now_ns()).c_str());
    print(st, a.json);
    prev = std::move(st.info);
    t_prev = t;
  }
}

// --format prometheus: one snapshot of STREAM, or of every stream of the namespace.
int print_prometheus(const StatArgs& a, const std::string& ns) {
  std::vector<StreamMetrics> streams;
  if (a.stream.empty()) {
    streams = collect_namespaces({ns});
  } else {
    auto m = collect_stream(ns, a.stream);
    if (!m && m.error().code == Errc::kNotFound) {
      if (auto stored = collect_stored(ns, a.stream, a.data_dir); stored) m = std::move(stored);
    }
    if (!m) return fail_stream(m.error(), ns, a.stream);
    streams.push_back(std::move(m.value()));
  }
  const std::string text = prometheus_text(streams);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return kExitOk;
}

}  // namespace

int cmd_stat(const StatArgs& a_in) {
  StatArgs a = a_in;
  if (a.json && !a.format.empty() && a.format != "json")
    return fail("--json and --format " + a.format + " disagree: give one", kExitUsage);
  if (a.format == "json") a.json = true;
  const auto ns_or = command_namespace(a.ns);
  if (!ns_or) return kExitUsage;
  const std::string ns = *ns_or;
  if (a.format == "prometheus") {
    if (a.watch || !a.interval.empty())
      return fail("--format prometheus prints one snapshot (counters and gauges; let Prometheus "
                  "take the rates): leave out --watch and --interval",
                  kExitUsage);
    return print_prometheus(a, ns);
  }
  if (a.stream.empty())
    return fail("stat: STREAM is required (without it only --format prometheus, for every "
                "stream) (see: shmbus help stat)",
                kExitUsage);
  std::chrono::nanoseconds interval{0};
  if (!a.interval.empty()) {
    auto i = duration_flag("--interval", a.interval);
    if (!i) return kExitUsage;
    interval = *i;
  }
  std::chrono::nanoseconds every{std::chrono::seconds(1)};
  if (a.watch && !a.watch_every.empty()) {
    // `stat --watch a b`: the word after --watch was taken as STREAM only when none came
    // after it; two names are two streams, not a bad period for the first (a review).
    if (!a.watch_attached && a.stream_after_watch && !parse_duration(a.watch_every))
      return fail("stat describes one STREAM: '" + a.watch_every + "' and '" + a.stream +
                      "' are two (to watch one: stat STREAM --watch [DURATION])",
                  kExitUsage);
    auto w = duration_flag("--watch", a.watch_every);
    if (!w) return kExitUsage;
    if (w->count() == 0) return fail("--watch: must be more than 0", kExitUsage);
    every = *w;
  }
  if (a.watch && interval.count() != 0)
    return fail("--watch DURATION measures over each DURATION: leave out --interval", kExitUsage);
  auto stall = duration_flag("--stall", a.stall);
  if (!stall) return kExitUsage;
  const double stall_s = std::chrono::duration<double>(*stall).count();
  install_stop_handlers();
  auto first = stream_info(ns, a.stream);
  if (!first && first.error().code == Errc::kNotFound && !a.watch) {
    auto stored = collect_stored(ns, a.stream, a.data_dir);
    if (stored) return print_stored(stored.value(), a.json);
    // A store that is there but cannot be read (e.g. another user's, mode 0700): that,
    // not "not found" (a review).
    if (stored.error().code != Errc::kNotFound) return fail(stored.error());
  }
  if (!first) return fail_stream(first.error(), ns, a.stream, a.data_dir);
  if (a.watch) return watch(a, ns, every, stall_s, std::move(first.value()));
  if (interval.count() == 0) {
    print(compute_stat(std::move(first.value()), nullptr, 0, stall_s), a.json);
    return kExitOk;
  }
  const auto t0 = std::chrono::steady_clock::now();
  // Sleep in short steps so that ^C still prints what was measured so far.
  sleep_until(t0 + interval);
  auto second = stream_info(ns, a.stream);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!second) return fail(second.error());
  print(compute_stat(std::move(second.value()), &first.value(), seconds, stall_s), a.json);
  return kExitOk;
}

}  // namespace shmbus::tools
