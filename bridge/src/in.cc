// in.cc: run_bridge_in(): a topic's messages into a stream, at least once, in order per
// partition.  A message is published before its offset is committed (after it is durable
// with --sync or on a stream whose persister runs in sync mode), so a crash can only
// repeat what was published since the last commit: at most one commit interval.  On a
// rebalance the offsets of published messages are committed before the partitions go.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "client.h"
#include "fetch_kick.h"
#include "shmbus/persister.h"
#include "in_batch.h"
#include "in_commit.h"
#include "in_state.h"
#include "status.h"

namespace shmbus::kafka {
namespace {

using namespace std::chrono_literals;

using detail::PartitionList;

struct In {
  In(const InOptions& opts, std::string g, Producer p) : o(opts), group(std::move(g)), producer(std::move(p)) {}
  const InOptions& o;
  std::string group;
  Producer producer;
  bool sync = false;
  rd_kafka_t* rk = nullptr;
  BridgeCounters counters;
  std::map<int32_t, int64_t> pending;      // partition -> offset to commit (published)
  std::set<int32_t> assigned;
  std::set<int32_t> at_eof;
  std::optional<uint64_t> last_seq;        // the newest record published since the last commit
  // What this bridge published, kept across a kill -9 (see in_state.h); empty if the
  // state file could not be opened (then at least once, without de-duplication).
  std::optional<detail::InState> state;
  std::set<int32_t> begun;                 // partitions read from since their assignment
  std::map<int32_t, int64_t> skip_through; // partition -> messages up to here were published
  bool duplicates_pending = false;         // duplicates skipped since the last commit
  detail::Batches batches;                // how messages are taken (in_batch.h)
  std::chrono::steady_clock::time_point last_commit = detail::coarse_now();
  // A publish waits for room in a full stream: the assigned partitions are paused (no
  // message is fetched or handed out) and the consumer is polled meanwhile, for its
  // rebalances and for max.poll.interval.ms (300 s): a bridge that stopped polling for
  // that long left the group, which gave its partitions to another member while it
  // still published the rest of its batch (duplicates on another host).
  bool waiting_for_room = false;
  bool ever_paused = false;
  const StopFn* stop_fn = nullptr;  // run_bridge_in's: a wait for durability ends at a stop

  // Commits the offsets of everything published (after it is durable when `sync`).
  // false when that could not be done (the offsets stay pending).
  bool commit() {
    last_commit = detail::coarse_now();
    if (pending.empty()) return true;
    std::optional<uint64_t> wait_seq = last_seq;
    if (sync && !wait_seq && duplicates_pending) {
      // Skipped duplicates were published by the bridge before: durable once all is.
      if (auto i = stream_info(o.ns, o.stream); i && i->next_seq > 0) wait_seq = i->next_seq - 1;
    }
    if (sync && wait_seq) {
      // In steps of 100 ms, so that a stop (SIGTERM) is seen: it ends the wait, and the
      // offsets stay uncommitted (the messages are read again: at least once).
      const auto deadline = std::chrono::steady_clock::now() + o.sync_timeout;
      PubStatus st = PubStatus::kTimeout;
      for (;;) {
        const auto left = deadline - std::chrono::steady_clock::now();
        st = producer.wait_durable(*wait_seq, std::max<std::chrono::nanoseconds>(
                                                  0ns, std::min<std::chrono::nanoseconds>(left, 100ms)));
        if (st != PubStatus::kTimeout || left <= 100ms || (stop_fn && (*stop_fn)())) break;
      }
      if (st != PubStatus::kOk) {
        ++counters.errors;
        counters.last_error = "record " + std::to_string(*wait_seq) +
                              " is not durable (is a persister running?): offsets not committed";
        spdlog::warn("bridge in {}: {}", o.topic, counters.last_error);
        return false;
      }
    }
    // What Kafka stored is settled even when other partitions were refused (in_commit.h).
    const size_t asked = pending.size();
    const auto e = detail::commit_pending(rk, o.topic.c_str(), pending, state ? &*state : nullptr, 5s);
    if (e) {
      ++counters.errors;
      counters.last_error = "offset commit failed for " + std::to_string(pending.size()) + " of " +
                            std::to_string(asked) + " partition(s): " + rd_kafka_err2str(e);
      spdlog::warn("bridge in {}: {}", o.topic, counters.last_error);
      return false;
    }
    last_seq.reset();
    duplicates_pending = false;
    counters.in_flight = 0;
    return true;
  }

  // Pauses (or resumes) every partition assigned now.  A pause drops what librdkafka had
  // fetched for them; a resume fetches again from after the last message handed out.
  void pause_assigned(bool pause) {
    ever_paused = ever_paused || pause;
    rd_kafka_topic_partition_list_t* l = nullptr;
    if (rd_kafka_assignment(rk, &l) != RD_KAFKA_RESP_ERR_NO_ERROR || !l) return;
    PartitionList held(l);
    if (held->cnt == 0) return;
    const auto e = pause ? rd_kafka_pause_partitions(rk, held.get()) : rd_kafka_resume_partitions(rk, held.get());
    if (e) spdlog::warn("bridge in {}: cannot {} the partitions: {}", o.topic, pause ? "pause" : "resume", rd_kafka_err2str(e));
  }

  void refresh_lag() {
    if (assigned.empty()) {
      counters.lag = 0;
      return;
    }
    PartitionList l(rd_kafka_topic_partition_list_new(static_cast<int>(assigned.size())));
    for (int32_t p : assigned) rd_kafka_topic_partition_list_add(l.get(), o.topic.c_str(), p);
    if (rd_kafka_position(rk, l.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
    uint64_t lag = 0;
    for (int i = 0; i < l->cnt; ++i) {
      int64_t low = 0, high = 0;
      if (rd_kafka_get_watermark_offsets(rk, o.topic.c_str(), l->elems[i].partition, &low, &high)) continue;
      const int64_t pos = l->elems[i].offset >= 0 ? l->elems[i].offset : low;
      if (high > pos) lag += static_cast<uint64_t>(high - pos);
    }
    counters.lag = lag;
  }
};

void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts, void* opaque) {
  auto* in = static_cast<In*>(opaque);
  // Inside a batch: stop it here, so that no message fetched after this rebalance is in it.
  if (in->batches.in_batch()) rd_kafka_yield(rk);
  const bool cooperative = std::string(rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE";
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    for (int i = 0; i < parts->cnt; ++i) in->assigned.insert(parts->elems[i].partition);
    if (cooperative)
      rd_kafka_error_destroy(rd_kafka_incremental_assign(rk, parts));
    else
      rd_kafka_assign(rk, parts);
    // Assigned while a publish waits for room: held back as the others are.
    // A partition stays paused across its revocation and next assignment (librdkafka):
    // one paused during an earlier wait is resumed.
    if (in->waiting_for_room)
      rd_kafka_pause_partitions(rk, parts);
    else if (in->ever_paused)
      rd_kafka_resume_partitions(rk, parts);
    spdlog::info("bridge in {}: {} partition(s) assigned", in->o.topic, parts->cnt);
    return;
  }
  // Revoked (or lost): what was published from them is committed first, while we may.
  (void)in->commit();
  for (int i = 0; i < parts->cnt; ++i) {
    in->batches.revoked(parts->elems[i].partition);
    in->assigned.erase(parts->elems[i].partition);
    in->at_eof.erase(parts->elems[i].partition);
    in->begun.erase(parts->elems[i].partition);
    in->skip_through.erase(parts->elems[i].partition);
    in->pending.erase(parts->elems[i].partition);
  }
  if (cooperative)
    rd_kafka_error_destroy(rd_kafka_incremental_unassign(rk, parts));
  else
    rd_kafka_assign(rk, nullptr);
}

// The consumer's queue as the message source of Batches.
class ConsumerSource final : public detail::MessageSource {
 public:
  explicit ConsumerSource(rd_kafka_t* rk) : rk_(rk), queue_(rd_kafka_queue_get_consumer(rk)) {}
  ssize_t take_fetched(rd_kafka_message_t** out, size_t cap) override {
    return queue_ ? rd_kafka_consume_batch_queue(queue_.get(), 0, out, cap) : 0;
  }
  rd_kafka_message_t* wait_one(int timeout_ms) override { return rd_kafka_consumer_poll(rk_, timeout_ms); }

 private:
  struct QueueDeleter {
    void operator()(rd_kafka_queue_t* q) const noexcept { rd_kafka_queue_destroy(q); }
  };
  rd_kafka_t* rk_;
  std::unique_ptr<rd_kafka_queue_t, QueueDeleter> queue_;
};

}  // namespace

Result<BridgeCounters> run_bridge_in(const InOptions& o, const StopFn& stop) {
  if (auto r = validate_name("stream", o.stream); !r) return r.error();
  if (auto r = validate_topic(o.topic); !r) return r.error();
  if (o.brokers.empty()) return make_error(Errc::kInvalidArgument, "--brokers is required");
  if (o.from != "earliest" && o.from != "latest")
    return make_error(Errc::kInvalidArgument, "--from '" + o.from + "': bridge in starts a new group at earliest or latest");
  const std::string group = o.group.empty() ? "shmbus." + o.stream : o.group;
  // A full stream is waited on in steps of 250 ms, polling the consumer between them
  // (serve_while_full below).
  ProducerOptions po;
  po.full_timeout = 250ms;
  auto producer = Producer::open(o.ns, o.stream, po);
  if (!producer) return producer.error();
  auto info = stream_info(o.ns, o.stream);
  if (!info) return info.error();
  In in(o, group, std::move(producer.value()));
  in.stop_fn = &stop;
  in.sync = o.sync || (info->persist && info->persist->sync);
  if (in.sync) {
    // A wait for durability does not poll the consumer (commit() also runs inside the
    // rebalance callback): one as long as max.poll.interval.ms would take the bridge out
    // of its group.  A value librdkafka refuses is reported when the client is made.
    uint64_t max_poll_ms = 300000;
    for (const Property& p : o.properties)
      if (p.name == "max.poll.interval.ms")
        if (auto v = detail::parse_u64(p.value)) max_poll_ms = *v;
    if (o.sync_timeout >= std::chrono::milliseconds(max_poll_ms))
      return make_error(Errc::kInvalidArgument,
                        "--sync-timeout " + std::to_string(o.sync_timeout.count() / 1000000) +
                            " ms must be shorter than max.poll.interval.ms (" + std::to_string(max_poll_ms) +
                            " ms): Kafka is not polled while the bridge waits for durability, and it "
                            "takes a consumer that did not poll for that long out of its group");
    // Without a persister every wait would time out and no offset would ever be
    // committed (a walkthrough: it ran on, warning every 30 s).  One starting meanwhile
    // registers within the grace.
    if (!persist::persister_registered(o.ns, o.stream, persist::kPersisterRegisterGrace, stop))
      return make_error(Errc::kInvalidArgument,
                        "--sync: no persister is attached to stream '" + o.stream +
                            "', so no record would become durable and no offset would be "
                            "committed (start one: " + persist_command(o.ns, o.stream) + ")");
  }

  auto conf = detail::make_conf(o.brokers,
                                {{"group.id", group},
                                 {"enable.auto.commit", "false"},
                                 {"enable.auto.offset.store", "false"},
                                 {"auto.offset.reset", o.from},
                                 {"enable.partition.eof", "true"},
                                 // A restarted bridge (or one that died) is replaced in the
                                 // group within seconds, not Kafka's default 45 s (the
                                 // brokers' group.min.session.timeout.ms is 6 s).
                                 {"session.timeout.ms", "6000"},
                                 {"heartbeat.interval.ms", "1500"}},
                                o.properties);
  if (!conf) return conf.error();
  rd_kafka_conf_set_rebalance_cb(conf->get(), on_rebalance);
  rd_kafka_conf_set_opaque(conf->get(), &in);
  auto rk = detail::make_client(RD_KAFKA_CONSUMER, std::move(conf.value()));
  if (!rk) return rk.error();
  in.rk = rk->get();
  auto parts = detail::topic_partitions(in.rk, o.brokers, o.topic, o.connect_timeout);
  if (!parts) return parts.error();
  rd_kafka_poll_set_consumer(in.rk);
  detail::FetchKick fetch_kick(in.rk, o.topic);  // see fetch_kick.h: no 1 s stall after a full queue
  PartitionList sub(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(sub.get(), o.topic.c_str(), RD_KAFKA_PARTITION_UA);
  if (auto e = rd_kafka_subscribe(in.rk, sub.get()))
    return make_error(Errc::kIo, "cannot subscribe to '" + o.topic + "': " + rd_kafka_err2str(e));
  // Only a bridge that started keeps a state file (a refused one leaves none behind).
  if (auto st = detail::InState::open(o.ns, o.stream, o.topic, group, info->created_ns))
    in.state.emplace(std::move(st.value()));
  else
    spdlog::warn("bridge in {}: {}: messages repeated after a crash will not be detected", o.topic,
                 st.error().message);

  detail::StatusWriter status(o.ns, o.stream, "in", group, o.topic, o.brokers);
  spdlog::info("bridge in {} -> {}/{} as group '{}'{}", o.topic, o.ns, o.stream, group,
               in.sync ? " (commits after durable)" : "");
  Result<BridgeCounters> result = in.counters;
  auto last_report = detail::coarse_now() - 1s;
  // The lag and the status file for `stat`, at most twice a second.
  const auto report = [&](std::chrono::steady_clock::time_point now) {
    if (now - last_report < 500ms) return;
    last_report = now;
    in.refresh_lag();
    status.update(in.counters, true);
  };
  enum class Next { kGoOn, kStop };
  // An event or error from the consumer (m->err set): counted, and destroyed.
  const auto handle_event = [&](rd_kafka_message_t* m) -> Next {
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      in.at_eof.insert(m->partition);
      rd_kafka_message_destroy(m);
      return Next::kGoOn;
    }
    const std::string why = rd_kafka_message_errstr(m);
    const auto err = m->err;
    rd_kafka_message_destroy(m);
    if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
        err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
      (void)in.commit();
      result = make_error(Errc::kNotFound, "topic '" + o.topic + "': " + why);
      return Next::kStop;
    }
    ++in.counters.errors;
    in.counters.last_error = why;
    spdlog::warn("bridge in {}: {}", o.topic, why);
    return Next::kGoOn;
  };
  // While a publish waits for room, its partitions paused: serves what the consumer has
  // (events only), commits what was published and updates the status as the main loop
  // would.  false: stop the run (an error event said so, or a message came although every
  // partition is paused: it is not published, so neither it nor what follows is lost;
  // the next run reads it again).
  const auto serve_while_full = [&]() -> bool {
    for (int i = 0; i < 64; ++i) {  // bounded: a wait step follows
      rd_kafka_message_t* e = rd_kafka_consumer_poll(in.rk, 0);
      if (!e) break;
      if (!e->err) {
        rd_kafka_message_destroy(e);
        ++in.counters.errors;
        in.counters.last_error = "librdkafka handed out a message of a paused partition: stopped (nothing is lost)";
        spdlog::error("bridge in {}: {}", o.topic, in.counters.last_error);
        return false;
      }
      if (handle_event(e) == Next::kStop) return false;
    }
    const auto now = detail::coarse_now();
    if (!in.pending.empty() && now - in.last_commit >= o.commit_interval) (void)in.commit();
    report(now);
    return true;
  };
  // One message or event from the consumer: published (or skipped, counted) and destroyed.
  const auto handle = [&](rd_kafka_message_t* m) -> Next {
    if (m->err) return handle_event(m);
    fetch_kick.taken(m->len, in.assigned);
    if (!in.at_eof.empty()) in.at_eof.erase(m->partition);
    const int32_t part = m->partition;
    const int64_t off = m->offset;
    const auto fp = [m] {
      return detail::message_fingerprint(rd_kafka_message_timestamp(m, nullptr), m->key, m->key_len, m->payload,
                                         m->len);
    };
    if (in.state) {
      if (in.begun.insert(part).second) {
        const int64_t through = in.state->begin(part, off, fp());
        if (through >= off) {
          in.skip_through[part] = through;
          spdlog::info("bridge in {}[{}]: offsets {}..{} were published before a restart: skipped", o.topic, part,
                       off, through);
        }
      } else if (in.state->at_base(part, off)) {
        in.state->seen_base(part, fp());
      }
      if (auto it = in.skip_through.find(part); it != in.skip_through.end()) {
        if (off <= it->second) {
          // Published by the bridge before it died, after its last commit: a known duplicate.
          // Committed only once the whole run is skipped: a commit inside it would restart
          // the state's run at an offset whose message this bridge never reads, so that a
          // successor resuming there (this partition revoked, or this bridge stopped, before
          // the run's end) could not recognise the rest as published, and published it
          // again (found as duplicates by the rebalance test under load).
          ++in.counters.duplicates_skipped;
          in.duplicates_pending = true;
          if (off == it->second) in.pending[part] = off + 1;
          rd_kafka_message_destroy(m);
          return Next::kGoOn;
        }
        in.skip_through.erase(it);
      }
    }
    uint32_t type = o.type;
    if (auto h = detail::header(m, kHeaderType)) {
      auto t = detail::parse_u64(*h);
      if (t && *t <= UINT32_MAX)
        type = static_cast<uint32_t>(*t);
      else
        spdlog::warn("bridge in {}[{}] offset {}: {} header '{}' is not a type number: --type {} used", o.topic,
                     m->partition, m->offset, kHeaderType, std::string(*h), o.type);
    }
    const Bytes payload(static_cast<const std::byte*>(m->payload), m->len);
    bool published = false;
    bool revoked = false;  // m's partition went while it waited for room: not ours now
    auto warned = detail::coarse_now() - 1h;
    for (;;) {
      const PubResult r = in.producer.publish(payload, type);
      if (r.ok()) {
        in.last_seq = r.seq;
        ++in.counters.delivered;
        ++in.counters.in_flight;
        published = true;
        break;
      }
      if (r.status == PubStatus::kTooLarge) {
        ++in.counters.skipped;
        in.counters.last_error = "message " + o.topic + "[" + std::to_string(m->partition) + "]@" +
                                 std::to_string(m->offset) + " of " + std::to_string(m->len) +
                                 " bytes is larger than the stream's maximum record " +
                                 std::to_string(in.producer.max_record()) + ": skipped";
        spdlog::warn("bridge in: {}", in.counters.last_error);
        published = true;  // counted and skipped: its offset may be committed
        break;
      }
      if (r.status == PubStatus::kFull && !stop()) {
        const auto now = detail::coarse_now();
        if (now - warned >= 10s) {
          warned = now;
          in.counters.last_error = "the stream stayed full: waiting (a consumer group holds producers back?)";
          spdlog::warn("bridge in {}: {}", o.topic, in.counters.last_error);
        }
        if (!in.waiting_for_room) {
          in.waiting_for_room = true;
          in.pause_assigned(true);
        }
        // The group is served while the stream is full: rebalances, and polls within
        // max.poll.interval.ms.  Paused, the consumer hands out events only.
        if (!serve_while_full()) break;  // a message came after all: stop (see there)
        if (!in.batches.ours(*m, in.assigned)) {
          revoked = true;  // whoever holds the partition now reads it from the commit
          break;
        }
        // A commit meanwhile (at the commit interval, or for a revocation of other
        // partitions) may have begun this partition's run at this very message, after its
        // check above: its fingerprint is wanted, or a successor resuming here could not
        // recognise what this bridge publishes from here on (a review: republished).
        if (in.state && in.state->at_base(part, off)) in.state->seen_base(part, fp());
        continue;
      }
      ++in.counters.errors;
      in.counters.last_error = r.status == PubStatus::kFull ? "stopped while the stream was full"
                                                            : "cannot publish to the stream (status " +
                                                                  std::to_string(static_cast<int>(r.status)) + ")";
      break;
    }
    if (in.waiting_for_room) {
      in.waiting_for_room = false;
      in.pause_assigned(false);
    }
    rd_kafka_message_destroy(m);
    if (revoked) {
      spdlog::info("bridge in {}[{}]: revoked while the stream was full: offset {} on is read by its new holder",
                   o.topic, part, off);
      return Next::kGoOn;
    }
    if (!published) {
      (void)in.commit();  // what was published before may go; this one is read again
      if (!stop() && result) result = make_error(Errc::kIo, in.counters.last_error);
      return Next::kStop;
    }
    if (in.state) in.state->published(part, off);
    in.pending[part] = off + 1;
    return Next::kGoOn;
  };

  // Messages are taken in batches (in_batch.h); a rebalance ends a batch where it happens.
  constexpr size_t kBatch = 256;
  std::array<rd_kafka_message_t*, kBatch> batch{};
  ConsumerSource source(in.rk);
  for (;;) {
    if (stop()) break;
    // One coarse clock read a batch (or a message: see coarse_now).
    const auto now = detail::coarse_now();
    report(now);
    if (o.exit_at_end && !in.assigned.empty() && in.at_eof.size() == in.assigned.size() &&
        std::includes(in.at_eof.begin(), in.at_eof.end(), in.assigned.begin(), in.assigned.end())) {
      // The end: what was published must be committed, or the run failed.
      if (!in.commit()) result = make_error(Errc::kIo, in.counters.last_error);
      break;
    }
    if (!in.pending.empty() && now - in.last_commit >= o.commit_interval)
      (void)in.commit();
    const size_t n = in.batches.take(source, batch.data(), batch.size(), 100);
    Next next = Next::kGoOn;
    for (size_t i = 0; i < n; ++i) {
      // Not ours (in_batch.h), or after a stop: not published, not committed: read again.
      if (next == Next::kStop || !in.batches.ours(*batch[i], in.assigned)) {
        rd_kafka_message_destroy(batch[i]);
        continue;
      }
      next = handle(batch[i]);
    }
    if (next == Next::kStop) break;
  }
  const bool all_committed = in.commit();
  in.refresh_lag();
  status.update(in.counters, true);
  rd_kafka_consumer_close(in.rk);
  // Everything published is committed: nothing is left that a successor could skip.  The
  // file stays while another bridge of the group runs (it is theirs too), and while a run
  // a dead bridge published is not committed yet (this one stopped before it had skipped
  // all of it, or never read that partition): its successor still has to skip it (a
  // survey: removing it here made the next bridge publish that run again).
  if (all_committed && in.state) {
    if (!in.state->settled())
      spdlog::info("bridge in {}: state file kept: messages published by an earlier bridge are not "
                   "committed yet (the next bridge of group '{}' skips them)", o.topic, group);
    else if (!in.state->remove())
      spdlog::info("bridge in {}: state file kept: another bridge of group '{}' holds it", o.topic, group);
  }
  if (!result) return result.error();
  return in.counters;
}

}  // namespace shmbus::kafka
