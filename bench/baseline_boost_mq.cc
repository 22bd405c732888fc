// Baseline: Boost.Interprocess message_queue (a process-shared mutex and condition
// variables around a fixed-size message array). Blocking send()/receive(); the queue
// holds min(4 MiB / record, 4096) messages.
#include "transport.h"

#if SHMBUS_BENCH_HAVE_BOOST_MQ
#include <unistd.h>

#include <algorithm>
#include <boost/interprocess/ipc/message_queue.hpp>
#include <vector>

namespace bench {
namespace {

namespace bip = boost::interprocess;

// Children name the queue after the parent that created it.
std::string queue_name(pid_t owner, int ch) {
  return "shmbus-bench-" + std::to_string(owner) + "-mq" + std::to_string(ch);
}

class MqSender final : public Sender {
 public:
  explicit MqSender(const std::string& name) : q_(bip::open_only, name.c_str()) {}
  bool send(View rec) override {
    q_.send(rec.data(), rec.size(), 0);
    return true;
  }

 private:
  bip::message_queue q_;
};

class MqReceiver final : public Receiver {
 public:
  MqReceiver(const std::string& name, size_t record_size)
      : q_(bip::open_only, name.c_str()), buf_(record_size) {}
  RecvStatus recv(View* out) override {
    bip::message_queue::size_type got = 0;
    unsigned prio = 0;
    q_.receive(buf_.data(), buf_.size(), got, prio);
    *out = View(buf_.data(), got);
    return RecvStatus::kOk;
  }

 private:
  bip::message_queue q_;
  std::vector<std::byte> buf_;
};

class BoostMq final : public Transport {
 public:
  ~BoostMq() override { cleanup(); }
  std::string name() const override { return "Boost message_queue"; }
  bool prepare(const ChannelSpec& spec, std::string* err) override {
    cleanup();
    parent_pid_ = ::getpid();
    record_size_ = spec.record_size;
    const size_t depth = std::clamp<size_t>((4u << 20) / spec.record_size, 8, 4096);
    try {
      for (int c = 0; c < spec.channels; ++c) {
        bip::message_queue::remove(queue_name(parent_pid_, c).c_str());
        const std::string name = queue_name(parent_pid_, c);
        bip::message_queue q(bip::create_only, name.c_str(), depth, spec.record_size);
        ++channels_;
      }
    } catch (const std::exception& e) {
      *err = e.what();
      return false;
    }
    return true;
  }
  std::unique_ptr<Sender> open_sender(int ch, std::string* err) override {
    try {
      return std::make_unique<MqSender>(queue_name(parent_pid_, ch));
    } catch (const std::exception& e) {
      *err = e.what();
      return nullptr;
    }
  }
  std::unique_ptr<Receiver> open_receiver(int ch, std::string* err) override {
    try {
      return std::make_unique<MqReceiver>(queue_name(parent_pid_, ch), record_size_);
    } catch (const std::exception& e) {
      *err = e.what();
      return nullptr;
    }
  }
  std::string cleanup() override {
    for (int c = 0; c < channels_; ++c)
      bip::message_queue::remove(queue_name(parent_pid_, c).c_str());
    channels_ = 0;
    return {};
  }

 private:
  pid_t parent_pid_ = 0;
  int channels_ = 0;
  size_t record_size_ = 0;
};

}  // namespace

std::unique_ptr<Transport> make_boost_mq() { return std::make_unique<BoostMq>(); }

}  // namespace bench

#else  // !SHMBUS_BENCH_HAVE_BOOST_MQ

namespace bench {
std::unique_ptr<Transport> make_boost_mq() {
  return make_unavailable("Boost message_queue",
                          "boost/interprocess/ipc/message_queue.hpp not found at build time");
}
}  // namespace bench

#endif
