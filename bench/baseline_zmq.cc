// Baseline: ZeroMQ PAIR sockets over ipc:// (a Unix socket plus ZeroMQ's I/O thread).
// The receiver binds, the sender connects; each child makes its own context after the
// fork. Default high-water marks (1000 messages).
//
// The end of a one-way cell: a sender that closes right after its last record relies on
// ZMQ_LINGER to deliver what it still queues, the end marker among them; a full table run
// of 2026-12-07 lost the end marker of 2 of 3 64 B throughput cells (the receiver waited
// 10 s for it), which libzmq's issue #4660 (an ipc socket closing without delivering what
// LINGER should) fits.  So in a one-way cell (a role's process opens only a sender, or
// only a receiver) the receiver, when it closes, sends its peer one empty message, and
// the sender waits up to 10 s for it before it closes.  A ping-pong's ends each open both,
// and their last round trip has delivered everything.
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

// What this process (a role's, forked for one cell) has opened.
bool g_opened_receiver = false, g_opened_sender = false;

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
    g_opened_sender = true;
    return true;
  }
  ~ZmqSender() override {
    // A one-way cell's sender: closes once the receiver said it has closed (see the top).
    if (!sent_ || g_opened_receiver) return;
    const int wait_ms = 10000;
    char bye;
    if (zmq_setsockopt(end_.sock(), ZMQ_RCVTIMEO, &wait_ms, sizeof wait_ms) == 0)
      while (zmq_recv(end_.sock(), &bye, sizeof bye, 0) < 0 && errno == EINTR) {
      }
  }
  bool send(View rec) override {
    sent_ = true;
    while (zmq_send(end_.sock(), rec.data(), rec.size(), 0) < 0) {
      if (errno == EINTR) continue;
      error_ = zmq_error("zmq_send");
      return false;
    }
    return true;
  }

 private:
  ZmqEnd end_;
  bool sent_ = false;
};

class ZmqReceiver final : public Receiver {
 public:
  explicit ZmqReceiver(size_t record_size) : buf_(record_size) {}
  ~ZmqReceiver() override {
    if (!bound_ || g_opened_sender) return;
    // The sender's signal to close (see the top); never waits, and the close below
    // gives it a second to leave.
    const int linger_ms = 1000;
    (void)zmq_setsockopt(end_.sock(), ZMQ_LINGER, &linger_ms, sizeof linger_ms);
    (void)zmq_send(end_.sock(), "", 0, ZMQ_DONTWAIT);
  }
  bool open(const std::string& ep, std::string* err) {
    const int timeout_ms = 100;
    if (!end_.ok() ||
        zmq_setsockopt(end_.sock(), ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms) != 0 ||
        zmq_bind(end_.sock(), ep.c_str()) != 0) {
      *err = zmq_error("zmq_bind");
      return false;
    }
    bound_ = true;
    g_opened_receiver = true;
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
  bool bound_ = false;
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
