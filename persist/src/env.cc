// env.cc: the real Env (see env.h).
#include "env.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>

#include "shmbus/detail/descriptors.h"

namespace shmbus::persist::detail {
namespace {

class RealEnv final : public Env {
 public:
  // Never on a standard descriptor (shmbus/detail/descriptors.h): a program that closed
  // its stdout would otherwise print into a segment file.
  int openat(int dir, const char* name, int flags, mode_t mode) override {
    return shmbus::detail::above_stdio(::openat(dir, name, flags, mode));
  }
  int close(int fd) override { return ::close(fd); }
  ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) override {
    return ::pwrite(fd, buf, n, off);
  }
  ssize_t pread(int fd, void* buf, size_t n, off_t off) override {
    return ::pread(fd, buf, n, off);
  }
  int fdatasync(int fd) override { return ::fdatasync(fd); }
  int fsync(int fd) override { return ::fsync(fd); }
  int ftruncate(int fd, off_t size) override { return ::ftruncate(fd, size); }
  int fallocate(int fd, off_t off, off_t len) override { return ::posix_fallocate(fd, off, len); }
  int fstat(int fd, struct stat* st) override { return ::fstat(fd, st); }
  int mkdirat(int dir, const char* name, mode_t mode) override {
    return ::mkdirat(dir, name, mode);
  }
  int renameat(int from_dir, const char* from, int to_dir, const char* to) override {
    return ::renameat(from_dir, from, to_dir, to);
  }
  int linkat(int from_dir, const char* from, int to_dir, const char* to) override {
    return ::linkat(from_dir, from, to_dir, to, 0);
  }
  int unlinkat(int dir, const char* name, int flags) override {
    return ::unlinkat(dir, name, flags);
  }
};

RealEnv g_real;
// acquire/release: a test installs its Env before it starts the code under test (and
// the persister thread), so the pointer only needs to be seen whole.
std::atomic<Env*> g_env{&g_real};

}  // namespace

Env& real_env() { return g_real; }
Env& env() { return *g_env.load(std::memory_order_acquire); }  // pairs with the exchange below
Env* set_env_for_testing(Env* e) {
  return g_env.exchange(e ? e : &g_real, std::memory_order_acq_rel);
}

}  // namespace shmbus::persist::detail
