// Baseline: ZeroMQ PAIR sockets over ipc:// (a Unix socket plus ZeroMQ's I/O thread).
// The receiver binds, the sender connects; each child makes its own context after the
// fork. Default high-water marks (1000 messages).
#include "transport.h"

#if SHMBUS_BENCH_HAVE_ZMQ
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <cerrno>
#include <vector>

namespace bench {
namespace {

std::string endpoint(pid_t owner, int ch) {
  return "ipc:///tmp/shmbus-bench-" + std::to_string(owner) + "-zmq" + std::to_string(ch);
}

// One context and PAIR socket per opened end.
class ZmqEnd {
 public:
  ZmqEnd() : ctx_(zmq_ctx_new()), sock_(ctx_ ? zmq_socket(ctx_, ZMQ_PAIR) : nullptr) {}
  ~ZmqEnd() {
    if (sock_) zmq_close(sock_);
    if (ctx_) zmq_ctx_term(ctx_);
  }
  bool ok() const { return sock_ != nullptr; }
  void* sock() const { return sock_; }

 private:
  void* ctx_;
  void* sock_;
};

std::string zmq_error(const char* what) { return std::string(what) + ": " + zmq_strerror(errno); }

class ZmqSender final : public Sender {
 public:
  bool open(const std::string& ep, std::string* err) {
    const int linger_ms = 2000;
    if (!end_.ok() ||
        zmq_setsockopt(end_.sock(), ZMQ_LINGER, &linger_ms, sizeof linger_ms) != 0 ||
        zmq_connect(end_.sock(), ep.c_str()) != 0) {
      *err = zmq_error("zmq_connect");
      return false;
    }
    return true;
  }
  bool send(View rec) override {
    while (zmq_send(end_.sock(), rec.data(), rec.size(), 0) < 0) {
      if (errno == EINTR) continue;
      error_ = zmq_error("zmq_send");
      return false;
    }
    return true;
  }

 private:
  ZmqEnd end_;
};

class ZmqReceiver final : public Receiver {
 public:
  explicit ZmqReceiver(size_t record_size) : buf_(record_size) {}
  bool open(const std::string& ep, std::string* err) {
    const int timeout_ms = 100;
    if (!end_.ok() ||
        zmq_setsockopt(end_.sock(), ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms) != 0 ||
        zmq_bind(end_.sock(), ep.c_str()) != 0) {
      *err = zmq_error("zmq_bind");
      return false;
    }
    return true;
  }
  RecvStatus recv(View* out) override {
    const int n = zmq_recv(end_.sock(), buf_.data(), buf_.size(), 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return RecvStatus::kAgain;
      error_ = zmq_error("zmq_recv");
      return RecvStatus::kError;
    }
    *out = View(buf_.data(), std::min(size_t(n), buf_.size()));
    return RecvStatus::kOk;
  }

 private:
  ZmqEnd end_;
  std::vector<std::byte> buf_;
};

class Zmq final : public Transport {
 public:
  std::string name() const override {
    int major = 0, minor = 0, patch = 0;
    zmq_version(&major, &minor, &patch);
    return "ZeroMQ " + std::to_string(major) + "." + std::to_string(minor) + " ipc:// PAIR";
  }
  bool prepare(const ChannelSpec& spec, std::string*) override {
    owner_ = ::getpid();
    channels_ = spec.channels;
    record_size_ = spec.record_size;
    return true;
  }
  std::unique_ptr<Sender> open_sender(int ch, std::string* err) override {
    auto s = std::make_unique<ZmqSender>();
    if (!s->open(endpoint(owner_, ch), err)) return nullptr;
    return s;
  }
  std::unique_ptr<Receiver> open_receiver(int ch, std::string* err) override {
    auto r = std::make_unique<ZmqReceiver>(record_size_);
    if (!r->open(endpoint(owner_, ch), err)) return nullptr;
    return r;
  }
  std::string cleanup() override {
    for (int c = 0; c < channels_; ++c) {
      const std::string path = endpoint(owner_, c).substr(6);  // drop "ipc://"
      ::unlink(path.c_str());
    }
    return {};
  }

 private:
  pid_t owner_ = 0;
  int channels_ = 0;
  size_t record_size_ = 0;
};

}  // namespace

std::unique_ptr<Transport> make_zmq() { return std::make_unique<Zmq>(); }

}  // namespace bench

#else  // !SHMBUS_BENCH_HAVE_ZMQ

namespace bench {
std::unique_ptr<Transport> make_zmq() {
  return make_unavailable("ZeroMQ ipc://", "libzmq not found at build time (pkg-config libzmq)");
}
}  // namespace bench

#endif
