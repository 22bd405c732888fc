// Baselines through the kernel: a pipe and a Unix-domain stream socket per channel,
// created before the fork and inherited. Blocking write()/read() of whole records
// (the usual way to use them); the pipe is enlarged to 1 MiB with F_SETPIPE_SZ.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "transport.h"

namespace bench {
namespace {

class FdSender final : public Sender {
 public:
  explicit FdSender(int fd) : fd_(fd) {}
  bool send(View rec) override {
    const std::byte* p = rec.data();
    size_t left = rec.size();
    while (left > 0) {
      const ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        error_ = std::string("write: ") + std::strerror(errno);
        return false;
      }
      p += n;
      left -= size_t(n);
    }
    return true;
  }

 private:
  int fd_;
};

class FdReceiver final : public Receiver {
 public:
  FdReceiver(int fd, size_t record_size) : fd_(fd), buf_(record_size) {}
  RecvStatus recv(View* out) override {
    size_t got = 0;
    while (got < buf_.size()) {
      const ssize_t n = ::read(fd_, buf_.data() + got, buf_.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        error_ = n == 0 ? "end of file" : std::string("read: ") + std::strerror(errno);
        return RecvStatus::kError;
      }
      got += size_t(n);
    }
    *out = View(buf_.data(), buf_.size());
    return RecvStatus::kOk;
  }

 private:
  int fd_;
  std::vector<std::byte> buf_;
};

// fds_[2c] is channel c's writing end, fds_[2c+1] its reading end.
class FdTransport : public Transport {
 public:
  ~FdTransport() override { close_all(); }
  bool prepare(const ChannelSpec& spec, std::string* err) override {
    close_all();
    record_size_ = spec.record_size;
    for (int c = 0; c < spec.channels; ++c) {
      int fds[2];
      if (!make_channel(fds, err)) return false;
      fds_.push_back(fds[0]);
      fds_.push_back(fds[1]);
    }
    return true;
  }
  std::unique_ptr<Sender> open_sender(int ch, std::string*) override {
    return std::make_unique<FdSender>(fds_[2 * size_t(ch)]);
  }
  std::unique_ptr<Receiver> open_receiver(int ch, std::string*) override {
    return std::make_unique<FdReceiver>(fds_[2 * size_t(ch) + 1], record_size_);
  }
  std::string cleanup() override {
    close_all();
    return {};
  }

 protected:
  virtual bool make_channel(int fds[2], std::string* err) = 0;

 private:
  void close_all() {
    for (int fd : fds_) ::close(fd);
    fds_.clear();
  }
  std::vector<int> fds_;
  size_t record_size_ = 0;
};

class PipeTransport final : public FdTransport {
 public:
  std::string name() const override { return "pipe"; }

 protected:
  bool make_channel(int fds[2], std::string* err) override {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
      *err = std::string("pipe2: ") + std::strerror(errno);
      return false;
    }
    ::fcntl(p[1], F_SETPIPE_SZ, 1 << 20);  // best effort: the default is 64 KiB
    fds[0] = p[1];
    fds[1] = p[0];
    return true;
  }
};

class UnixSocketTransport final : public FdTransport {
 public:
  std::string name() const override { return "Unix socket (stream)"; }

 protected:
  bool make_channel(int fds[2], std::string* err) override {
    int s[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) != 0) {
      *err = std::string("socketpair: ") + std::strerror(errno);
      return false;
    }
    ::shutdown(s[0], SHUT_RD);
    ::shutdown(s[1], SHUT_WR);
    fds[0] = s[0];
    fds[1] = s[1];
    return true;
  }
};

}  // namespace

std::unique_ptr<Transport> make_pipe() { return std::make_unique<PipeTransport>(); }
std::unique_ptr<Transport> make_unix_socket() {
  return std::make_unique<UnixSocketTransport>();
}

}  // namespace bench
