// fork_lock.cc: ForkLock (see fork_lock.h).
#include "fork_lock.h"

#include <pthread.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <new>
#include <vector>

#include "env.h"

namespace shmbus::persist::detail {
namespace {
// Both never destroyed: a store destroyed at exit after these statics would otherwise
// unlist itself from a destroyed vector (a review).
std::mutex& fork_mu() {
  static auto* mu = new std::mutex;
  return *mu;
}
// The held locks, guarded by fork_mu().
std::vector<ForkLock*>& held_locks() {
  static auto* v = new std::vector<ForkLock*>;
  return *v;
}
void fork_prepare() {
  fork_mu().lock();
  (void)held_locks();  // constructed before the fork, never in the child's handler
}
void fork_parent() { fork_mu().unlock(); }
}  // namespace

Result<bool> ForkLock::try_take(const std::function<Result<UniqueFd>()>& open, const std::string& what) {
  std::lock_guard g(fork_mu());
  if (fd_ >= 0) return make_error(Errc::kInvalidArgument, "lock already held");
  held_locks().reserve(held_locks().size() + 1);  // (push_back below cannot throw then)
  auto fd = open();
  if (!fd) return fd.error();
  if (::flock(fd->get(), LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    if (e == EWOULDBLOCK) return false;  // fd closes here, under the mutex
    return errno_error(e, what);
  }
  fd_ = fd->release();
  held_locks().push_back(this);
  return true;
}

void ForkLock::reset() noexcept {
  std::lock_guard g(fork_mu());
  if (fd_ < 0) return;
  auto& v = held_locks();
  v.erase(std::remove(v.begin(), v.end(), this), v.end());
  env().close(fd_);  // releases the flock (no child holds the description)
  fd_ = -1;
}

void ForkLock::after_fork_in_child() noexcept {
  // Only async-signal-safe calls here: close(), and stores.
  for (ForkLock* l : held_locks()) {
    if (l->fd_ >= 0) ::close(l->fd_);
    l->fd_ = -1;
  }
  held_locks().clear();  // keeps its capacity: no allocation here
  fork_mu().unlock();    // the forking thread locked it in fork_prepare()
}

namespace {
[[maybe_unused]] const int g_atfork =
    pthread_atfork(fork_prepare, fork_parent, &ForkLock::after_fork_in_child);
}  // namespace

}  // namespace shmbus::persist::detail
