// The subject: shmbus through its public header only. One stream per channel in the
// namespace "bench<pid>", created by the parent before the fork and removed after.
// Producers and consumers busy-spin (WaitStrategy::kBusySpin) but in the kBlock mode, whose
// consumer waits with the default kBlock (spin, yield, futex sleep). Modes: a durable
// consumer (group "bench") or an anonymous tailing consumer, fed by publish() (copy), by
// claim() + commit() (the record is written into the ring), or by publish_batch() of 32
// records that the throughput sender builds in the batch itself (Sender::place(), as an
// application that builds its batch in place: one copy per record, into the ring, as the
// SPSC ring's; records sent from elsewhere are copied into the batch) and read by
// poll_batch() of up to kShmbusConsumerBatch.
#include <unistd.h>

#include <cstring>
#include <vector>

#include "shmbus/shmbus.h"
#include "transport.h"

namespace bench {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kMaxRecord = 128 * 1024;

// The header may grow statuses: anything unnamed here prints as its number.
std::string pub_status_name(shmbus::PubStatus s) {
  switch (s) {
    case shmbus::PubStatus::kOk: return "ok";
    case shmbus::PubStatus::kTooLarge: return "too large";
    case shmbus::PubStatus::kFull: return "full (wait timed out)";
    case shmbus::PubStatus::kAbandoned: return "abandoned";
    case shmbus::PubStatus::kClosed: return "closed";
    default: return "status " + std::to_string(int(s));
  }
}

class ShmbusSender final : public Sender {
 public:
  ShmbusSender(shmbus::Producer p, bool use_claim, bool batch)
      : p_(std::move(p)), claim_(use_claim), batch_(batch) {}
  std::span<std::byte> place(size_t size) override {
    if (!batch_ || staged_ >= kShmbusBatch) return {};
    std::byte* at = room(size);  // (none: send() flushes to make room)
    return at ? std::span(at, size) : std::span<std::byte>{};
  }
  bool send(View rec) override {
    if (batch_) {
      if (staged_ == kShmbusBatch && !flush()) return false;
      std::byte* at = room(rec.size());
      if (at == nullptr) {
        if (!flush()) return false;
        at = room(rec.size());
      }
      if (at != rec.data()) std::memcpy(at, rec.data(), rec.size());  // (built elsewhere)
      views_[staged_++] = shmbus::Bytes(at, rec.size());
      used_ += rec.size();
      return staged_ < kShmbusBatch || flush();
    }
    if (!claim_) {
      const shmbus::PubResult r = p_.publish(rec);
      if (r.ok()) return true;
      error_ = "publish: " + pub_status_name(r.status);
      return false;
    }
    shmbus::PubStatus st = shmbus::PubStatus::kOk;
    shmbus::Claim c = p_.claim(rec.size(), 0, &st);
    if (!c.valid()) {
      error_ = "claim: " + pub_status_name(st);
      return false;
    }
    if (c.data().size() < rec.size()) {
      error_ = "claim returned " + std::to_string(c.data().size()) + " bytes for " +
               std::to_string(rec.size());
      return false;
    }
    std::memcpy(c.data().data(), rec.data(), rec.size());
    st = c.commit();
    if (st == shmbus::PubStatus::kOk) return true;
    error_ = "commit: " + pub_status_name(st);
    return false;
  }
  bool flush() override {
    if (staged_ == 0) return true;
    const shmbus::PubResult r = p_.publish_batch(std::span(views_, staged_));
    staged_ = used_ = 0;
    if (r.ok()) return true;
    error_ = "publish_batch: " + pub_status_name(r.status);
    return false;
  }

 private:
  shmbus::Producer p_;
  bool claim_;
  bool batch_;
  size_t staged_ = 0;
  // Where the next record of `size` bytes goes in store_, after the staged ones (place()
  // returns it, and send() finds the record already there).  store_ grows to a whole
  // batch of such records only while nothing is staged, the staged views pointing into
  // it: nullptr when the record does not fit after them (flush first).
  std::byte* room(size_t size) {
    const size_t batch = kShmbusBatch * std::max<size_t>(size, 1);
    if (staged_ == 0 && store_.size() < batch) store_.assign(batch, std::byte{0x5a});
    return used_ + size <= store_.size() ? store_.data() + used_ : nullptr;
  }
  size_t used_ = 0;                      // bytes of store_ the staged records take
  std::vector<std::byte> store_;         // kShmbusBatch records, allocated once
  shmbus::Bytes views_[kShmbusBatch];
};

class ShmbusReceiver final : public Receiver {
 public:
  ShmbusReceiver(shmbus::Consumer c, bool batch, bool copy, bool in_place)
      : c_(std::move(c)), batch_(batch), copy_(copy), in_place_(in_place) {
    if (copy_) copy_buf_.resize(kMaxRecord);
  }
  RecvStatus recv(View* out) override {
    const RecvStatus st = take(out);
    if (st == RecvStatus::kOk && copy_) {
      // The tailing reader's copy (Consumer::poll copies into its buffer): one memcpy of
      // the payload into a private buffer allocated once, read from there.
      std::memcpy(copy_buf_.data(), out->data(), out->size());
      *out = View(copy_buf_.data(), out->size());
    }
    return st;
  }
  uint64_t lost() const noexcept override { return c_.lost(); }
  bool validate() noexcept override { return !in_place_ || c_.validate(); }
  uint64_t record_ts_ns() const noexcept override { return ts_; }

 private:
  // The next record from the consumer: the rest of the last poll_batch, or a new poll.
  RecvStatus take(View* out) {
    if (at_ < got_) {  // the rest of the last poll_batch (valid until the next one)
      *out = recs_[at_].data;
      ts_ = recs_[at_++].ts_ns;
      return RecvStatus::kOk;
    }
    for (;;) {
      shmbus::ReadStatus st;
      if (batch_) {
        st = c_.poll_batch(recs_, kShmbusConsumerBatch, &got_, 100ms);
        at_ = 1;
      } else if (in_place_) {
        st = c_.poll_in_place(&recs_[0], 100ms);  // (got_ stays 0)
      } else {
        st = c_.poll(&recs_[0], 100ms);  // (got_ stays 0)
      }
      switch (st) {
        case shmbus::ReadStatus::kOk:
          *out = recs_[0].data;
          ts_ = recs_[0].ts_ns;
          return RecvStatus::kOk;
        case shmbus::ReadStatus::kTimeout:
          return RecvStatus::kAgain;
        case shmbus::ReadStatus::kLapped:
          continue;  // counted in lost(); the next poll resumes
        case shmbus::ReadStatus::kCorrupt:
          error_ = "poll: corrupt ring";
          return RecvStatus::kError;
        case shmbus::ReadStatus::kClosed:
          error_ = "poll: closed";
          return RecvStatus::kError;
        default:  // a status this bench does not know yet
          error_ = "poll: status " + std::to_string(int(st));
          return RecvStatus::kError;
      }
    }
  }

  shmbus::Consumer c_;
  bool batch_;
  bool copy_;
  bool in_place_;  // kTailingInPlace: poll_in_place(), validate() after the reads
  std::vector<std::byte> copy_buf_;  // kDurableCopy: kMaxRecord bytes
  shmbus::Record recs_[kShmbusConsumerBatch];
  size_t got_ = 0, at_ = 0;  // records of the last poll or poll_batch, handed out
  uint64_t ts_ = 0;
};

class ShmbusTransport final : public Transport {
 public:
  explicit ShmbusTransport(ShmbusMode mode)
      : mode_(mode), ns_("bench" + std::to_string(::getpid())) {}
  ~ShmbusTransport() override { cleanup(); }

  std::string name() const override {
    switch (mode_) {
      case ShmbusMode::kDurable: return "shmbus durable (publish)";
      case ShmbusMode::kTailing: return "shmbus tailing (publish)";
      case ShmbusMode::kDurableClaim: return "shmbus durable (claim/commit)";
      case ShmbusMode::kDurableBlock: return "shmbus durable, kBlock consumer";
      case ShmbusMode::kDurableBatch: return "shmbus durable (publish_batch of 32)";
      case ShmbusMode::kDurableSingle: return "shmbus durable, single-producer stream (publish)";
      case ShmbusMode::kDurableSingleBatch:
        return "shmbus durable, single-producer stream (publish_batch of 32)";
      case ShmbusMode::kDurableCopy: return "shmbus durable, receiver copies (the tailing copy)";
      case ShmbusMode::kTailingInPlace: return "shmbus tailing, in place (poll_in_place + validate)";
    }
    return "shmbus";
  }
  bool multi_producer() const override { return !single_producer(); }

  bool prepare(const ChannelSpec& spec, std::string* err) override {
    cleanup();
    ++run_;
    shmbus::StreamOptions o;
    o.capacity = ring_bytes(spec);
    o.max_record = kMaxRecord;
    o.single_producer = single_producer();
    for (int c = 0; c < spec.channels; ++c) {
      const std::string name = stream(c);
      if (auto r = shmbus::create_stream(ns_, name, o); !r) {
        *err = "create_stream " + name + ": " + r.error().message;
        return false;
      }
      created_.push_back(name);
    }
    return true;
  }

  std::unique_ptr<Sender> open_sender(int ch, std::string* err) override {
    shmbus::ProducerOptions o;
    o.wait = shmbus::WaitStrategy::kBusySpin;
    o.when_full = shmbus::FullPolicy::kWait;
    o.full_timeout = 10s;
    auto p = shmbus::Producer::open(ns_, stream(ch), o);
    if (!p) {
      *err = p.error().message;
      return nullptr;
    }
    return std::make_unique<ShmbusSender>(std::move(p).value(),
                                          mode_ == ShmbusMode::kDurableClaim, batch());
  }

  std::unique_ptr<Receiver> open_receiver(int ch, std::string* err) override {
    shmbus::ConsumerOptions o;
    const bool tailing = mode_ == ShmbusMode::kTailing || mode_ == ShmbusMode::kTailingInPlace;
    o.group = tailing ? "" : "bench";
    o.start = shmbus::StartFrom::earliest();
    o.wait = mode_ == ShmbusMode::kDurableBlock ? shmbus::WaitStrategy::kBlock
                                                : shmbus::WaitStrategy::kBusySpin;
    auto c = shmbus::Consumer::open(ns_, stream(ch), o);
    if (!c) {
      *err = c.error().message;
      return nullptr;
    }
    return std::make_unique<ShmbusReceiver>(std::move(c).value(), batch(),
                                            mode_ == ShmbusMode::kDurableCopy,
                                            mode_ == ShmbusMode::kTailingInPlace);
  }

  // Removes without force first: the children are gone, so a refusal is worth reporting.
  std::string cleanup() override {
    std::string problems;
    for (const std::string& name : created_) {
      if (auto r = shmbus::remove_stream(ns_, name, false); r) continue;
      else problems += "remove_stream(" + name + ") refused: " + r.error().message + "; ";
      if (auto f = shmbus::remove_stream(ns_, name, true); !f)
        problems += "forced remove failed too: " + f.error().message + "; ";
    }
    created_.clear();
    return problems;
  }

 private:
  bool batch() const {
    return mode_ == ShmbusMode::kDurableBatch || mode_ == ShmbusMode::kDurableSingleBatch;
  }
  bool single_producer() const {
    return mode_ == ShmbusMode::kDurableSingle || mode_ == ShmbusMode::kDurableSingleBatch;
  }
  std::string stream(int ch) const {
    static constexpr const char* kPrefix[] = {"d", "t", "c", "k", "b", "s", "sb", "dc", "ti"};  // by mode: never clash
    return kPrefix[int(mode_)] + std::to_string(run_) + "-ch" + std::to_string(ch);
  }
  ShmbusMode mode_;
  std::string ns_;
  uint64_t run_ = 0;
  std::vector<std::string> created_;  // parent only
};

}  // namespace

std::unique_ptr<Transport> make_shmbus(ShmbusMode mode) {
  return std::make_unique<ShmbusTransport>(mode);
}

}  // namespace bench
