// out.cc: run_bridge_out(): a stream's records into a Kafka topic, exactly once, in order.
//
// Exactly once rests on three facts.  (1) Kafka is the record of what was delivered: on
// start (and after every failed producer session) the highest shmbus.seq of this stream
// in each target partition is read back from the partition's tail (highest_seqs), and a
// record whose seq is at or below its partition's highest is skipped, never sent again.
// (2) Within a session the idempotent producer (enable.idempotence=true, acks=all) keeps
// each partition's messages in order with no duplicate across its internal retries, so
// what a partition holds of the stream is always a prefix of what was sent to it; a
// session whose delivery fails for any other reason than a too-large record is ended
// (purged) and a new one recovers from Kafka again.  (3) The position in the stream is
// never ahead of Kafka: a durable consumer group (streams without a persister) commits
// only records Kafka acknowledged, and a persisted stream is read through the replay
// path (store, then ring), which holds nobody back.  (4) One bridge per stream and topic
// runs on the host (an OFD lock, lock.h): a stalled bridge is not dead, and a second one
// beside it would send again what the first is about to deliver.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <thread>
#include <variant>

#include "client.h"
#include "lock.h"
#include "shmbus/persister.h"
#include "shmbus/store_admin.h"
#include "status.h"

namespace shmbus::kafka {
namespace {

using namespace std::chrono_literals;

// Records produced and not yet acknowledged, at most.
constexpr size_t kMaxInFlight = 100000;

// The stream, read either way.
class Reader {
 public:
  enum class Status { kOk, kTimeout, kLost, kError };

  static Result<Reader> open(const OutOptions& o, const std::string& group, bool through_store,
                             StartFrom start) {
    Reader r;
    if (through_store) {
      persist::ReplayOptions ro;
      ro.start = start;
      ro.data_dir = o.data_dir;
      auto c = persist::ReplayConsumer::open(o.ns, o.stream, ro);
      if (!c) return c.error();
      r.c_ = std::move(c.value());
    } else {
      ConsumerOptions co;
      co.group = group;
      co.start = start;
      co.reset = true;  // Kafka, not the group, says where to continue
      co.auto_commit = false;
      auto c = Consumer::open(o.ns, o.stream, co);
      if (!c) return c.error();
      r.c_ = std::move(c.value());
    }
    return r;
  }

  // *why: for kLost and kError, what happened.
  Status poll(Record* rec, std::chrono::nanoseconds timeout, std::string* why) {
    if (auto* rc = std::get_if<persist::ReplayConsumer>(&c_)) {
      persist::ReplayStatus st;
      // Numbers under which nothing was published (claims aborted or abandoned): no
      // record to bridge and none lost (a review: logged as an error, counted in errors).
      while ((st = rc->poll(rec, timeout)) == persist::ReplayStatus::kGap && rc->gap().never_published) {
      }
      switch (st) {
        case persist::ReplayStatus::kOk: return Status::kOk;
        case persist::ReplayStatus::kTimeout: return Status::kTimeout;
        case persist::ReplayStatus::kGap:
          *why = "records " + std::to_string(rc->gap().from) + ".." + std::to_string(rc->gap().to - 1) +
                 " of the stream are gone (" + rc->gap().reason + "): not bridged";
          return Status::kLost;
        case persist::ReplayStatus::kClosed: *why = "the stream was closed"; return Status::kError;
        case persist::ReplayStatus::kError: *why = rc->error().message; return Status::kError;
      }
      return Status::kError;
    }
    auto& c = std::get<Consumer>(c_);
    const uint64_t lost_before = c.lost();
    switch (c.poll(rec, timeout)) {
      case ReadStatus::kOk: return Status::kOk;
      case ReadStatus::kTimeout: return Status::kTimeout;
      case ReadStatus::kLapped:
      case ReadStatus::kEvicted:
        *why = "the bridge's consumer group was evicted: " + std::to_string(c.lost() - lost_before) +
               " record(s) were overwritten before they were bridged";
        return Status::kLost;
      case ReadStatus::kBeforeOldest: {
        // Restarted where Kafka ends, but the ring has overwritten that far (the group
        // was forgotten meanwhile): say what is gone, then go on from the oldest record.
        const LossRange l = c.last_loss();
        *why = "records " + std::to_string(l.from) + ".." + std::to_string(l.to - 1) +
               " of the stream were overwritten before the bridge restarted: not bridged";
        return Status::kLost;
      }
      case ReadStatus::kCorrupt: *why = "the stream's shared memory is damaged"; return Status::kError;
      case ReadStatus::kClosed: *why = "the stream was closed"; return Status::kError;
    }
    return Status::kError;
  }
  // Durable group: everything returned so far is consumed.  Replay: nothing to do.
  void commit() {
    if (auto* c = std::get_if<Consumer>(&c_)) c->commit();
  }
  bool durable() const { return std::holds_alternative<Consumer>(c_); }
  uint64_t next_seq() const {
    if (auto* rc = std::get_if<persist::ReplayConsumer>(&c_)) return rc->next_seq();
    return std::get<Consumer>(c_).next_seq();
  }

 private:
  std::variant<std::monostate, persist::ReplayConsumer, Consumer> c_;
};

struct InFlight {
  uint64_t seq;
  bool done;
};

// One producer session: its handle's delivery reports land here (rd_kafka_poll runs them
// on the bridge's thread).
struct Session {
  std::deque<InFlight> in_flight;  // in production order (increasing seq)
  BridgeCounters* counters = nullptr;
  bool failed = false;             // a delivery failed: end the session
  bool purging = false;            // reports of purged messages are no news
  // Each message goes alone in its produce request (batch.num.messages=1): a "too large"
  // report then means this record alone exceeds the topic's limit.  In a batch it may
  // only mean the batch does (a broker whose max.message.bytes is below the producer's
  // batch): then the whole session is redone one record at a time past those records.
  bool single = false;
  bool batch_too_large = false;
  std::string topic;
};

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* s = static_cast<Session*>(opaque);
  if (s->purging) return;
  const uint64_t seq = reinterpret_cast<uintptr_t>(m->_private);
  auto it = std::lower_bound(s->in_flight.begin(), s->in_flight.end(), seq,
                             [](const InFlight& f, uint64_t v) { return f.seq < v; });
  if (it == s->in_flight.end() || it->seq != seq) return;  // purged before
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    it->done = true;
    ++s->counters->delivered;
    s->counters->last_ack = std::chrono::steady_clock::now();
    if (s->counters->first_ack == std::chrono::steady_clock::time_point{}) s->counters->first_ack = s->counters->last_ack;
  } else if (m->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE && !s->single) {
    // Maybe only the batch it travelled in: not skipped (a survey: a whole batch of small
    // records was counted as oversized and lost).  Redone one record at a time.
    if (!s->failed)
      spdlog::warn("bridge out: Kafka refused a batch holding record {} as too large; sending one "
                   "record at a time past it",
                   seq);
    s->batch_too_large = true;
    s->failed = true;
  } else if (m->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
    it->done = true;
    ++s->counters->skipped;
    s->counters->last_error = "record " + std::to_string(seq) + " is larger than topic '" + s->topic +
                              "' accepts: skipped";
    spdlog::warn("bridge out: {}", s->counters->last_error);
  } else {
    ++s->counters->errors;
    s->counters->last_error = "delivery of record " + std::to_string(seq) + " failed: " + rd_kafka_err2str(m->err);
    if (!s->failed) spdlog::warn("bridge out: {}; restarting the producer session", s->counters->last_error);
    s->failed = true;
  }
}

// Why a session ended.
enum class End { kStopped, kAtEnd, kFailed, kRenew };  // kRenew: a new session at once, no error

struct Ctx {
  const OutOptions& o;
  const StopFn& stop;
  std::string group, id;
  bool through_store = false;
  uint64_t end_seq = 0;              // exit_at_end: records below existed at start
  BridgeCounters counters;
  detail::StatusWriter* status = nullptr;
  // The brokers answered and the topic exists (once): later set-up failures (a partition
  // without a leader while the position is recovered) are outages to ride out.
  bool reached = false;
  // A session found what no retry can mend (the topic holds records this stream never
  // wrote): the command ends with that error.
  bool fatal = false;
  // > 0: sessions send one record per request until every record below this sequence
  // is acknowledged (after Kafka refused a batch as too large; see Session::single).
  uint64_t single_until = 0;
};

void refresh_lag(Ctx& x, uint64_t acked_below) {
  if (auto info = stream_info(x.o.ns, x.o.stream); info)
    x.counters.lag = info->next_seq > acked_below ? info->next_seq - acked_below : 0;
}

// Runs one producer session.  Set-up errors are returned (the first session's end the
// run); after set-up every failure is an End::kFailed.
Result<End> run_session(Ctx& x) {
  const OutOptions& o = x.o;
  Session s;
  s.counters = &x.counters;
  s.topic = o.topic;
  auto conf = detail::make_conf(o.brokers,
                                {{"enable.idempotence", "true"},
                                 // A batch that fails for good ends the producer (a fatal
                                 // error: the session restarts and recovers from Kafka)
                                 // instead of letting the batches behind it land after the
                                 // gap: then "continue after the highest shmbus.seq" skipped
                                 // the failed batch for ever (474 records in a loaded run of
                                 // Bridge.OutLosesNothingAfterAPermanentProduceError).
                                 {"enable.gapless.guarantee", "true"},
                                 {"acks", "all"},
                                 {"linger.ms", "5"},
                                 // Outages are ridden out by retrying, never by failing
                                 // a message (a failed one ends the session anyway).
                                 {"message.timeout.ms", "0"},
                                 {"queue.buffering.max.messages", std::to_string(kMaxInFlight + 1000)}},
                                o.properties);
  if (!conf) return conf.error();
  s.single = x.single_until > 0;
  if (s.single) {
    char err[256];
    if (rd_kafka_conf_set(conf->get(), "batch.num.messages", "1", err, sizeof err) != RD_KAFKA_CONF_OK)
      return make_error(Errc::kInvalidArgument, std::string("batch.num.messages: ") + err);
  }
  char buf[64];
  size_t n = sizeof buf;
  if (rd_kafka_conf_get(conf->get(), "enable.idempotence", buf, &n) != RD_KAFKA_CONF_OK ||
      std::string(buf) != "true")
    return make_error(Errc::kInvalidArgument, "bridge out needs enable.idempotence=true (exactly once)");
  n = sizeof buf;
  if (rd_kafka_conf_get(conf->get(), "acks", buf, &n) != RD_KAFKA_CONF_OK ||
      (std::string(buf) != "-1" && std::string(buf) != "all"))
    return make_error(Errc::kInvalidArgument, "bridge out needs acks=all (exactly once)");
  n = sizeof buf;
  if (rd_kafka_conf_get(conf->get(), "enable.gapless.guarantee", buf, &n) != RD_KAFKA_CONF_OK ||
      std::string(buf) != "true")
    return make_error(Errc::kInvalidArgument, "bridge out needs enable.gapless.guarantee=true (exactly once)");
  rd_kafka_conf_set_dr_msg_cb(conf->get(), on_delivery);
  rd_kafka_conf_set_opaque(conf->get(), &s);
  auto rk = detail::make_client(RD_KAFKA_PRODUCER, std::move(conf.value()));
  if (!rk) return rk.error();

  auto parts = detail::topic_partitions(rk->get(), o.brokers, o.topic, o.connect_timeout);
  if (!parts) return parts.error();
  const int32_t nparts = parts.value();
  std::vector<int32_t> targets;
  if (o.key == KeyMode::kNone) {
    if (o.partition < 0 || o.partition >= nparts)
      return make_error(Errc::kInvalidArgument, "--partition " + std::to_string(o.partition) + ": topic '" +
                                                    o.topic + "' has partitions 0.." + std::to_string(nparts - 1));
    targets.push_back(o.partition);
  } else {
    for (int32_t p = 0; p < nparts; ++p) targets.push_back(p);
  }
  x.reached = true;  // (after the --partition check: a bad one is the user's error)
  auto highest = highest_seqs(o.brokers, o.properties, o.topic, targets, x.id,
                              std::max(o.connect_timeout, std::chrono::milliseconds(30000)), x.stop);
  if (!highest) return highest.error();
  std::vector<std::optional<uint64_t>> max_seq(static_cast<size_t>(nparts));
  bool any = false, all = true;
  uint64_t resume = UINT64_MAX, top = 0;
  for (size_t i = 0; i < targets.size(); ++i) {
    max_seq[static_cast<size_t>(targets[i])] = highest.value()[i];
    if (highest.value()[i]) {
      any = true;
      resume = std::min(resume, *highest.value()[i] + 1);
      top = std::max(top, *highest.value()[i]);
    } else {
      all = false;
    }
  }
  // Kafka holding a sequence this stream has not reached means another stream of the
  // same name wrote it (this one was re-created, or one on another host bridges into the
  // same topic): continuing "after what Kafka holds" would skip this stream's records
  // without a word.  Refused (a survey found the silent skip).
  if (any) {
    auto now = stream_info(o.ns, o.stream);
    if (!now) return now.error();
    if (top >= now->next_seq) {
      x.fatal = true;
      return make_error(Errc::kIncompatible,
                        "topic '" + o.topic + "' holds records of " + x.id + " up to seq " + std::to_string(top) +
                            " but the stream has only reached seq " + std::to_string(now->next_seq) +
                            ": they were written by another stream of that name (re-created, or on "
                            "another host); bridge this one to another topic");
    }
  }
  // Where to read from: after what Kafka holds; with --key type and a partition that holds
  // nothing of the stream yet, from --from as for a new bridge (its records may lie
  // anywhere after it).
  StartFrom start = o.from;
  if (any && (all || o.from.kind != StartFrom::Kind::kEarliest)) start = StartFrom::seq(resume);
  if (any)
    spdlog::info("bridge out {} -> {}: Kafka holds this stream up to seq {}; continuing at {}", x.id,
                 o.topic, resume - 1, start.kind == StartFrom::Kind::kSeq ? std::to_string(start.value) : "--from");

  auto reader = Reader::open(o, x.group, x.through_store, start);
  if (!reader) return reader.error();
  Reader& r = reader.value();

  bool uncommitted = false;  // durable: records returned that are acknowledged, not committed
  uint64_t acked_below = r.next_seq();
  auto settle = [&] {
    while (!s.in_flight.empty() && s.in_flight.front().done) s.in_flight.pop_front();
    x.counters.in_flight = s.in_flight.size();
    acked_below = s.in_flight.empty() ? r.next_seq() : s.in_flight.front().seq;
    if (s.in_flight.empty() && uncommitted) {
      r.commit();
      uncommitted = false;
    }
  };
  auto last_report = std::chrono::steady_clock::time_point{};
  auto report = [&](bool force) {
    settle();
    if (force || std::chrono::steady_clock::now() - last_report > 500ms) {
      last_report = std::chrono::steady_clock::now();
      refresh_lag(x, acked_below);
      x.status->update(x.counters, force);
    }
  };

  End end = End::kStopped;
  Record rec;
  std::string why;
  for (;;) {
    rd_kafka_poll(rk->get(), 0);  // delivery reports
    report(false);
    if (x.stop()) break;
    if (s.failed) {
      end = End::kFailed;
      break;
    }
    char fatal[256];
    if (auto fe = rd_kafka_fatal_error(rk->get(), fatal, sizeof fatal)) {
      ++x.counters.errors;
      x.counters.last_error = std::string("producer fatal error: ") + fatal;
      spdlog::warn("bridge out: {} ({}); restarting the producer session", x.counters.last_error, rd_kafka_err2name(fe));
      end = End::kFailed;
      break;
    }
    if (o.exit_at_end && s.in_flight.empty() && r.next_seq() >= x.end_seq) {
      end = End::kAtEnd;
      break;
    }
    // Past the records of the refused batch, all acknowledged: batches again.
    if (s.single && s.in_flight.empty() && r.next_seq() >= x.single_until) {
      x.single_until = 0;
      end = End::kRenew;
      break;
    }
    // A durable group commits only when nothing is in flight: bound what is read ahead.
    const size_t limit = r.durable() ? kMaxInFlight / 2 : kMaxInFlight;
    if (s.in_flight.size() >= limit) {
      rd_kafka_poll(rk->get(), 10);
      continue;
    }
    const auto st = r.poll(&rec, s.in_flight.empty() ? std::chrono::nanoseconds(100ms) : std::chrono::nanoseconds(0), &why);
    if (st == Reader::Status::kTimeout) {
      if (!s.in_flight.empty()) rd_kafka_poll(rk->get(), 1);
      continue;
    }
    if (st == Reader::Status::kLost) {
      ++x.counters.errors;
      x.counters.last_error = why;
      spdlog::error("bridge out {}: {}", x.id, why);
      continue;
    }
    if (st == Reader::Status::kError) {
      ++x.counters.errors;
      x.counters.last_error = why;
      spdlog::error("bridge out {}: {}", x.id, why);
      end = End::kFailed;
      break;
    }
    const std::string type_text = std::to_string(rec.type);
    const int32_t p = o.key == KeyMode::kNone ? o.partition : detail::partition_for_key(type_text, nparts);
    if (max_seq[static_cast<size_t>(p)] && rec.seq <= *max_seq[static_cast<size_t>(p)]) {
      ++x.counters.duplicates_skipped;  // already in Kafka (a restart)
      uncommitted = true;
      continue;
    }
    const std::string seq_text = std::to_string(rec.seq);
    const std::string ts_text = std::to_string(rec.ts_ns);
    // (computed here: librdkafka's RD_KAFKA_V_KEY macro names its own variables `key`)
    void* key_ptr = o.key == KeyMode::kType ? const_cast<char*>(type_text.data()) : nullptr;
    const size_t key_len = o.key == KeyMode::kType ? type_text.size() : 0;
    bool sent = false;
    while (!sent) {
      const auto e = rd_kafka_producev(
          rk->get(), RD_KAFKA_V_TOPIC(o.topic.c_str()), RD_KAFKA_V_PARTITION(p),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_VALUE(const_cast<std::byte*>(rec.data.data()), rec.data.size()),
          RD_KAFKA_V_KEY(key_ptr, key_len),
          RD_KAFKA_V_TIMESTAMP(static_cast<int64_t>(rec.ts_ns / 1000000)),
          RD_KAFKA_V_HEADER(kHeaderSeq, seq_text.data(), static_cast<ssize_t>(seq_text.size())),
          RD_KAFKA_V_HEADER(kHeaderType, type_text.data(), static_cast<ssize_t>(type_text.size())),
          RD_KAFKA_V_HEADER(kHeaderTsNs, ts_text.data(), static_cast<ssize_t>(ts_text.size())),
          RD_KAFKA_V_HEADER(kHeaderStream, x.id.data(), static_cast<ssize_t>(x.id.size())),
          RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<uintptr_t>(rec.seq))), RD_KAFKA_V_END);
      if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
        s.in_flight.push_back({rec.seq, false});
        sent = true;
      } else if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(rk->get(), 10);
        if (x.stop() || s.failed) break;
      } else if (e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
        ++x.counters.skipped;
        x.counters.last_error = "record " + seq_text + " of " + std::to_string(rec.data.size()) +
                                " bytes is larger than the producer's message.max.bytes: skipped";
        spdlog::warn("bridge out {}: {}", x.id, x.counters.last_error);
        uncommitted = true;
        sent = true;
      } else {
        ++x.counters.errors;
        x.counters.last_error = "cannot produce record " + seq_text + ": " + rd_kafka_err2str(e);
        spdlog::warn("bridge out {}: {}; restarting the producer session", x.id, x.counters.last_error);
        s.failed = true;
        break;
      }
    }
    if (!sent) {
      end = s.failed ? End::kFailed : End::kStopped;
      break;
    }
    if (r.durable()) uncommitted = true;
  }
  if (s.batch_too_large) x.single_until = std::max(x.single_until, r.next_seq());
  if (end == End::kFailed) {
    // Nothing more of this session may reach Kafka unseen: drop what waits, then forget.
    s.purging = true;
    rd_kafka_purge(rk->get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(rk->get(), 0);
    s.in_flight.clear();
    uncommitted = false;
  } else {
    // Deliver what is in flight (bounded), then commit what Kafka acknowledged.
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!s.in_flight.empty() && std::chrono::steady_clock::now() < deadline && !s.failed) {
      rd_kafka_poll(rk->get(), 50);
      settle();
    }
    if (!s.in_flight.empty())
      spdlog::warn("bridge out {}: {} record(s) still unacknowledged at exit; a restart finds out from Kafka",
                   x.id, s.in_flight.size());
  }
  report(true);
  x.counters.in_flight = 0;
  // The handle goes after the reader (rk destroyed last: on_delivery must not run into
  // a dead session): purge leftovers without waiting.
  s.purging = true;
  rd_kafka_purge(rk->get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT | RD_KAFKA_PURGE_F_NON_BLOCKING);
  rd_kafka_poll(rk->get(), 0);
  s.in_flight.clear();
  return end;
}

}  // namespace

Result<BridgeCounters> run_bridge_out(const OutOptions& o, const StopFn& stop) {
  if (auto r = validate_name("stream", o.stream); !r) return r.error();
  if (auto r = validate_topic(o.topic); !r) return r.error();
  if (o.brokers.empty()) return make_error(Errc::kInvalidArgument, "--brokers is required");
  if (o.partition < 0) return make_error(Errc::kInvalidArgument, "--partition must not be negative");
  Ctx x{o, stop, o.name.empty() ? "_bridge." + o.topic : o.name, detail::stream_id(o.ns, o.stream), false, 0, {},
        nullptr};
  if (auto r = validate_name("--name", x.group); !r) return r.error();
  auto info = stream_info(o.ns, o.stream);
  if (!info) return info.error();
  // One bridge per stream and topic (see lock.h): held until this function returns.
  auto lock = detail::OutLock::acquire(o.ns, o.stream, o.topic);
  if (!lock) return lock.error();
  x.end_seq = info->next_seq;
  x.through_store = persist::reads_through_store(o.ns, o.stream, o.data_dir);
  detail::StatusWriter status(o.ns, o.stream, "out", x.through_store ? "(replay)" : x.group, o.topic, o.brokers);
  x.status = &status;
  spdlog::info("bridge out {} -> {} ({}), reading {}", x.id, o.topic, o.brokers,
               x.through_store ? "through the store (replay)" : "as durable consumer '" + x.group + "'");
  bool first = true;
  while (!stop()) {
    auto r = run_session(x);
    if (!r) {
      if ((first && !x.reached) || x.fatal) return r.error();
      ++x.counters.errors;
      x.counters.last_error = r.error().message;
      spdlog::warn("bridge out {}: {}", x.id, r.error().message);
    } else if (r.value() == End::kRenew) {
      continue;
    } else if (r.value() != End::kFailed) {
      break;
    }
    first = false;
    ++x.counters.restarts;
    status.update(x.counters, true);
    for (int i = 0; i < 10 && !stop(); ++i) std::this_thread::sleep_for(100ms);
  }
  return x.counters;
}

}  // namespace shmbus::kafka
