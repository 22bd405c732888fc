// Baseline: Eclipse iceoryx 2.0 zero-copy publish/subscribe (untyped publisher and
// subscriber). The sender loans a chunk, writes the record into it and publishes; the
// receiver takes the chunk and releases it at its next recv(). Lossless settings:
// WAIT_FOR_CONSUMER on the publisher, BLOCK_PRODUCER on the subscriber. Needs RouDi
// (started by the suite, roudi.h); each child registers its own runtime.
#include "transport.h"

#if SHMBUS_BENCH_HAVE_ICEORYX
#include <unistd.h>

#include <cstring>

#include "clock.h"
#include "iceoryx_hoofs/log/logmanager.hpp"
#include "iceoryx_posh/mepoo/chunk_header.hpp"
#include "iceoryx_posh/popo/untyped_publisher.hpp"
#include "iceoryx_posh/popo/untyped_subscriber.hpp"
#include "iceoryx_posh/runtime/posh_runtime.hpp"
#include "spin.h"

namespace bench {
namespace {

iox::capro::IdString_t id_string(const std::string& s) {
  return iox::capro::IdString_t(iox::cxx::TruncateToCapacity, s.c_str());
}

// One runtime per process, registered on first use (children only; never the parent).
void ensure_runtime() {
  static bool done = false;
  if (done) return;
  const std::string name = "shmbus-bench-" + std::to_string(::getpid());
  iox::log::LogManager::GetLogManager().SetDefaultLogLevel(iox::log::LogLevel::kWarn,
                                                        iox::log::LogLevelOutput::kHideLogLevel);
  iox::runtime::PoshRuntime::initRuntime(iox::RuntimeName_t(iox::cxx::TruncateToCapacity,
                                                            name.c_str()));
  done = true;
}

class IoxSender final : public Sender {
 public:
  IoxSender(const iox::capro::ServiceDescription& d, const iox::popo::PublisherOptions& o)
      : pub_(d, o) {}
  bool wait_for_subscriber(std::string* err) {
    const uint64_t deadline = mono_ns() + 10'000'000'000ull;
    while (!pub_.hasSubscribers()) {
      if (mono_ns() > deadline) {
        *err = "no subscriber connected within 10 s";
        return false;
      }
      ::usleep(1000);
    }
    return true;
  }
  bool send(View rec) override {
    const uint64_t deadline = mono_ns() + 10'000'000'000ull;
    for (uint32_t i = 1;; ++i) {
      auto loaned = pub_.loan(uint32_t(rec.size()));
      if (!loaned.has_error()) {
        void* chunk = loaned.value();
        std::memcpy(chunk, rec.data(), rec.size());
        pub_.publish(chunk);
        return true;
      }
      // The pool is empty while the subscriber holds its queue: wait like a full ring.
      if ((i & 0xfff) == 0 && mono_ns() > deadline) {
        error_ = "loan failed for 10 s (error " +
                 std::to_string(static_cast<int>(loaned.get_error())) + ")";
        return false;
      }
    }
  }

 private:
  iox::popo::UntypedPublisher pub_;
};

class IoxReceiver final : public Receiver {
 public:
  IoxReceiver(const iox::capro::ServiceDescription& d, const iox::popo::SubscriberOptions& o)
      : sub_(d, o) {}
  ~IoxReceiver() override { release(); }
  RecvStatus recv(View* out) override {
    release();
    bool failed = false;
    const bool got = spin_until([&] {
      auto taken = sub_.take();
      if (!taken.has_error()) {
        held_ = taken.value();
        return true;
      }
      if (taken.get_error() != iox::popo::ChunkReceiveResult::NO_CHUNK_AVAILABLE) {
        error_ = "take failed (error " + std::to_string(static_cast<int>(taken.get_error())) +
                 ")";
        failed = true;
        return true;
      }
      return false;
    });
    if (failed) return RecvStatus::kError;
    if (!got) return RecvStatus::kAgain;
    const auto* header = iox::mepoo::ChunkHeader::fromUserPayload(held_);
    *out = View(static_cast<const std::byte*>(held_), header->userPayloadSize());
    return RecvStatus::kOk;
  }

 private:
  void release() {
    if (held_) sub_.release(held_);
    held_ = nullptr;
  }
  iox::popo::UntypedSubscriber sub_;
  const void* held_ = nullptr;
};

class Iceoryx final : public Transport {
 public:
  std::string name() const override { return "iceoryx 2.0 (loan/publish)"; }
  bool prepare(const ChannelSpec& spec, std::string*) override {
    ++run_;
    owner_ = ::getpid();
    record_size_ = spec.record_size;
    return true;
  }
  std::unique_ptr<Sender> open_sender(int ch, std::string* err) override {
    ensure_runtime();
    iox::popo::PublisherOptions o;
    o.subscriberTooSlowPolicy = iox::popo::ConsumerTooSlowPolicy::WAIT_FOR_CONSUMER;
    auto s = std::make_unique<IoxSender>(service(ch), o);
    if (!s->wait_for_subscriber(err)) return nullptr;
    return s;
  }
  std::unique_ptr<Receiver> open_receiver(int ch, std::string*) override {
    ensure_runtime();
    iox::popo::SubscriberOptions o;
    // The built-in RouDi pool has 200 chunks of 128 KiB: keep a 64 KiB queue below that.
    o.queueCapacity = record_size_ > 16000 ? 64 : 256;
    o.queueFullPolicy = iox::popo::QueueFullPolicy::BLOCK_PRODUCER;
    return std::make_unique<IoxReceiver>(service(ch), o);
  }
  std::string cleanup() override { return {}; }

 private:
  // A fresh service per run, so no port of an earlier run can connect.
  iox::capro::ServiceDescription service(int ch) const {
    return iox::capro::ServiceDescription(
        id_string("shmbus-bench"),
        id_string(std::to_string(owner_) + "-" + std::to_string(run_)),
        id_string("ch" + std::to_string(ch)));
  }
  pid_t owner_ = 0;
  uint64_t run_ = 0;
  size_t record_size_ = 0;
};

}  // namespace

std::unique_ptr<Transport> make_iceoryx() { return std::make_unique<Iceoryx>(); }

}  // namespace bench

#else  // !SHMBUS_BENCH_HAVE_ICEORYX

namespace bench {
std::unique_ptr<Transport> make_iceoryx() {
  return make_unavailable("iceoryx 2.0",
                          "iceoryx_posh not found at build time (find_package CONFIG)");
}
}  // namespace bench

#endif
