#include "workloads.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "clock.h"
#include "harness.h"
#include "record.h"

namespace bench {
namespace {

constexpr uint64_t kStallNs = 10'000'000'000ull;  // silence that counts as a hang

// Receives the next record; false (with the role's error set) on error or a long silence.
bool next_record(Receiver& rx, View* v, Ctx& ctx) {
  uint64_t stall_since = 0;
  for (;;) {
    switch (rx.recv(v)) {
      case RecvStatus::kOk:
        return true;
      case RecvStatus::kError:
        ctx.fail("recv: " + rx.error());
        return false;
      case RecvStatus::kAgain: {
        const uint64_t now = mono_ns();
        if (stall_since == 0) stall_since = now;
        if (now - stall_since > kStallNs) {
          ctx.fail("recv: no record for 10 s (stalled)");
          return false;
        }
        break;
      }
    }
  }
}

// Opens the receiving end, meets the peers, opens the sending end, meets again: every
// receiver exists before any sender starts (iceoryx, ZeroMQ and tailing readers need it).
template <class Body>
int with_ends(Ctx& ctx, Transport& t, int rx_channel, int tx_channel, Body body) {
  std::string err;
  std::unique_ptr<Receiver> rx;
  if (rx_channel >= 0 && !(rx = t.open_receiver(rx_channel, &err)))
    return ctx.fail("open receiver: " + err);
  if (!ctx.barrier()) return 1;
  std::unique_ptr<Sender> tx;
  if (tx_channel >= 0 && !(tx = t.open_sender(tx_channel, &err)))
    return ctx.fail("open sender: " + err);
  if (!ctx.barrier()) return 1;
  ctx.mark_measuring();
  return body(rx.get(), tx.get());
}

// Records sent but neither received nor counted lost (or the other way round).
uint64_t unaccounted(uint64_t sent, const RoleReport& rx) {
  const uint64_t seen = rx.count + rx.lost;
  return sent > seen ? sent - seen : seen - sent;
}

void add_receiver_findings(const RoleReport& r, Anomalies* a) {
  a->lost += r.lost;
  a->missing += r.missing;
  a->disorder += r.disorder;
  a->corrupt += r.corrupt;
  a->ts_bad += r.ts_bad;
}

}  // namespace

void Anomalies::add(const Anomalies& o) {
  lost += o.lost;
  missing += o.missing;
  disorder += o.disorder;
  corrupt += o.corrupt;
  ts_bad += o.ts_bad;
  unaccounted += o.unaccounted;
  faults += o.faults;
  preempts += o.preempts;
  rx_sleeps += o.rx_sleeps;
  rx_records += o.rx_records;
}

void count_disturbances(const SharedArea* area, size_t roles, Anomalies* a) {
  for (size_t i = 0; i < roles; ++i) {
    a->faults += area->reports[i].faults;
    a->preempts += area->reports[i].preempts;
  }
}

void prefault_samples(Ctx& ctx, uint64_t n) noexcept {
  // MAP_SHARED pages are not inherited through fork: touch them before measuring.
  std::memset(ctx.samples(), 0, std::min<uint64_t>(n, ctx.max_samples()) * sizeof(float));
}

SamplePlan::SamplePlan(const Budget& b, Ctx& ctx)
    : b_(b),
      ctx_(ctx),
      out_(ctx.samples()),
      max_n_(std::min<uint64_t>(ctx.max_samples(), b.lat_round_trips)),
      warm_left_(b.lat_warmup),
      warm_deadline_ns_(mono_ns() + uint64_t(b.lat_warmup_max_s * 1e9)) {
  prefault_samples(ctx, max_n_);
}

bool SamplePlan::add(uint64_t rtt_ticks) noexcept {
  ++i_;
  if (warm_left_ > 0) {
    --warm_left_;
    if ((i_ & 255) == 0 && mono_ns() > warm_deadline_ns_) warm_left_ = 0;
    if (warm_left_ == 0) {
      stop_at_ns_ = mono_ns() + uint64_t(b_.lat_max_s * 1e9);
      ctx_.mark_measuring();
    }
    return true;
  }
  out_[n_++] = float(ticks_to_ns(rtt_ticks) / 2);
  if (n_ >= max_n_) return false;
  return (n_ & 1023) != 0 || mono_ns() < stop_at_ns_;
}

LatencyRun run_pingpong(Transport& t, size_t size, const Budget& b) {
  LatencyRun out;
  std::string err;
  if (!t.prepare(ChannelSpec{2, size, true}, &err)) {
    out.error = "prepare: " + err;
    return out;
  }
  Role ping{b.core_a, [&](Ctx& ctx) {
    return with_ends(ctx, t, 1, 0, [&](Receiver* rx, Sender* tx) {
      std::vector<std::byte> buf(size, std::byte{0x5a});
      SamplePlan plan(b, ctx);
      for (uint64_t i = 0;; ++i) {
        stamp_record(buf, i, plan.measuring() ? 1 : 0);  // aux 1: the pong side marks too
        const uint64_t c0 = ticks();
        if (!tx->send(buf)) return ctx.fail("send: " + tx->error());
        View v;
        if (!next_record(*rx, &v, ctx)) return 1;
        const uint64_t c1 = ticks();
        const RecordHeader h = read_record(v);
        if (h.seq != i || !h.tail_ok || v.size() != size)
          return ctx.fail("echo " + std::to_string(i) + " came back as " +
                          std::to_string(h.seq) + (h.tail_ok ? "" : " (torn)"));
        if (!plan.add(c1 - c0)) break;
      }
      ctx.report().nsamples = plan.samples();
      stamp_record(buf, kEndSeq, 0);
      if (!tx->send(buf)) return ctx.fail("send end: " + tx->error());
      return 0;
    });
  }};
  Role pong{b.core_b, [&](Ctx& ctx) {
    return with_ends(ctx, t, 0, 1, [&](Receiver* rx, Sender* tx) {
      bool marked = false;
      for (;;) {
        View v;
        if (!next_record(*rx, &v, ctx)) return 1;
        const RecordHeader h = read_record(v);
        if (h.seq == kEndSeq) return 0;
        if (h.aux == 1 && !marked) {
          ctx.mark_measuring();
          marked = true;
        }
        if (!tx->send(v)) return ctx.fail("echo send: " + tx->error());
        ++ctx.report().count;
      }
    });
  }};
  const RunOutcome r = run_roles({ping, pong}, b.timeout);
  const SharedArea* area = shared_area();
  out.cleanup_problem = t.cleanup();
  if (!r.ok) {
    out.error = r.error;
    return out;
  }
  out.samples_ns.assign(area->samples, area->samples + area->reports[0].nsamples);
  add_receiver_findings(area->reports[1], &out.anomalies);
  count_disturbances(area, 2, &out.anomalies);
  out.ok = !out.samples_ns.empty();
  if (!out.ok) out.error = "no samples";
  return out;
}

TputRun run_throughput(Transport& t, size_t size, int producers, const Budget& b) {
  TputRun out;
  std::string err;
  if (!t.prepare(ChannelSpec{1, size, false}, &err)) {
    out.error = "prepare: " + err;
    return out;
  }
  const uint64_t span_ns = uint64_t(b.tput_s * 1e9);
  std::vector<Role> roles;
  for (int p = 0; p < producers; ++p) {
    roles.push_back(Role{b.core_a, [&, p](Ctx& ctx) {
      return with_ends(ctx, t, -1, 0, [&](Receiver*, Sender* tx) {
        std::vector<std::byte> buf(size, std::byte{0x5a});
        const uint64_t start = mono_ns();
        ctx.report().t_start_ns = start;
        uint64_t seq = 0;
        for (;; ++seq) {
          std::span<std::byte> rec = tx->place(size);  // (a batch: the record built there)
          if (rec.empty()) rec = buf;
          stamp_record(rec, seq, uint64_t(p));
          if (!tx->send(rec)) return ctx.fail("send: " + tx->error());
          if ((seq & 63) == 63 && mono_ns() - start >= span_ns) break;
        }
        ctx.report().count = seq + 1;
        stamp_record(buf, kEndSeq, uint64_t(p));
        if (!tx->send(buf) || !tx->flush()) return ctx.fail("send end: " + tx->error());
        return 0;
      });
    }});
  }
  roles.push_back(Role{b.core_b, [&](Ctx& ctx) {
    return with_ends(ctx, t, 0, -1, [&](Receiver* rx, Sender*) {
      RoleReport& rep = ctx.report();
      uint64_t expected[kMaxRoles] = {};
      uint64_t sink = 0;
      int ends = 0;
      while (ends < producers) {
        View v;
        if (!next_record(*rx, &v, ctx)) return 1;
        const RecordHeader h = read_record(v);
        sink ^= touch_lines(v);
        // A reader in place checks after its loads (a record overwritten meanwhile is
        // counted lost by the transport, never read as torn).
        if (!rx->validate()) continue;
        if (h.seq == kEndSeq) {
          ++ends;
          continue;
        }
        ++rep.count;
        if (!h.tail_ok || h.aux >= uint64_t(producers) || v.size() != size) {
          ++rep.corrupt;
          continue;
        }
        uint64_t& e = expected[h.aux];
        if (h.seq > e) rep.missing += h.seq - e;
        if (h.seq < e) ++rep.disorder;
        e = h.seq + 1;
      }
      rep.t_end_ns = mono_ns();
      rep.lost = rx->lost();
      volatile uint64_t keep = sink;  // the payload loads must happen
      (void)keep;
      return 0;
    });
  }});
  const RunOutcome r = run_roles(roles, b.timeout);
  out.cleanup_problem = t.cleanup();
  if (!r.ok) {
    out.error = r.error;
    return out;
  }
  const SharedArea* area = shared_area();
  const RoleReport& rx = area->reports[producers];
  uint64_t start = ~uint64_t(0), sent = 0;
  for (int p = 0; p < producers; ++p) {
    start = std::min(start, area->reports[p].t_start_ns);
    sent += area->reports[p].count;
  }
  add_receiver_findings(rx, &out.anomalies);
  out.anomalies.unaccounted += unaccounted(sent, rx);
  const double secs = double(rx.t_end_ns - start) / 1e9;
  out.records_per_s = double(rx.count) / secs;
  out.bytes_per_s = out.records_per_s * double(size);
  out.ok = rx.count > 0 && secs > 0;
  if (!out.ok) out.error = "nothing received";
  return out;
}

LatencyRun run_streaming(Transport& t, size_t size, const Budget& b) {
  return run_streaming_at(t, size, b, b.stream_rate, b.stream_s);
}

LatencyRun run_streaming_at(Transport& t, size_t size, const Budget& b, double rate,
                            double seconds) {
  LatencyRun out;
  std::string err;
  if (!t.prepare(ChannelSpec{1, size, true}, &err)) {
    out.error = "prepare: " + err;
    return out;
  }
  // Warm-up: lat_warmup records unpaced (laps the ring: no first-touch faults later), then
  // stream_warmup_s paced; the receiver discards both.
  const uint64_t fast = b.lat_warmup;
  const double period_ns = 1e9 / rate;
  const uint64_t warm = fast + std::max<uint64_t>(3, uint64_t(b.stream_warmup_s * rate));
  const uint64_t total = warm + uint64_t(seconds * rate);

  Role sender{b.core_a, [&](Ctx& ctx) {
    return with_ends(ctx, t, -1, 0, [&](Receiver*, Sender* tx) {
      std::vector<std::byte> buf(size, std::byte{0x5a});
      uint64_t start = 0;
      for (uint64_t i = 0; i < total; ++i) {
        if (i == fast) start = mono_ns();
        if (i == warm) ctx.mark_measuring();
        const uint64_t due = start + uint64_t(double(i - std::min(i, fast)) * period_ns);
        while (i >= fast && mono_ns() < due) {
        }
        // Stamped when actually sent: a late sender is not charged to the transport.
        stamp_record(buf, i, mono_ns(), realtime_ns());
        if (!tx->send(buf)) return ctx.fail("send: " + tx->error());
      }
      ctx.report().count = total;
      stamp_record(buf, kEndSeq, 0);
      if (!tx->send(buf)) return ctx.fail("send end: " + tx->error());
      return 0;
    });
  }};
  Role receiver{b.core_b, [&](Ctx& ctx) {
    return with_ends(ctx, t, 0, -1, [&](Receiver* rx, Sender*) {
      RoleReport& rep = ctx.report();
      float* samples = ctx.samples();
      prefault_samples(ctx, total - warm);
      uint64_t expected = 0, n = 0;
      for (;;) {
        View v;
        if (!next_record(*rx, &v, ctx)) return 1;
        const uint64_t now = mono_ns();
        const uint64_t now_rt = realtime_ns();
        const RecordHeader h = read_record(v);
        if (h.seq == kEndSeq) break;
        ++rep.count;
        if (!h.tail_ok) {
          ++rep.corrupt;
          continue;
        }
        if (const uint64_t ts = rx->record_ts_ns(); ts != 0 && (ts < h.realtime || ts > now_rt))
          ++rep.ts_bad;
        if (h.seq > expected) rep.missing += h.seq - expected;
        if (h.seq < expected) ++rep.disorder;
        expected = h.seq + 1;
        if (h.seq == warm) ctx.mark_measuring();
        if (h.seq >= warm && n < ctx.max_samples()) samples[n++] = float(now - h.aux);
      }
      rep.nsamples = n;
      rep.lost = rx->lost();
      return 0;
    });
  }};
  const RunOutcome r = run_roles({sender, receiver}, b.timeout);
  out.cleanup_problem = t.cleanup();
  if (!r.ok) {
    out.error = r.error;
    return out;
  }
  const SharedArea* area = shared_area();
  out.samples_ns.assign(area->samples, area->samples + area->reports[1].nsamples);
  const RoleReport& rx = area->reports[1];
  add_receiver_findings(rx, &out.anomalies);
  count_disturbances(area, 2, &out.anomalies);
  out.anomalies.rx_sleeps = rx.sleeps;
  out.anomalies.rx_records = rx.nsamples;
  const uint64_t sent = area->reports[0].count;
  out.anomalies.unaccounted += unaccounted(sent, rx);
  out.ok = !out.samples_ns.empty();
  if (!out.ok) out.error = "no samples";
  return out;
}

}  // namespace bench
