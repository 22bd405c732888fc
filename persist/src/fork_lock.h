// fork_lock.h: a flock() lock that a fork()ed child does not keep.
//
// flock() locks belong to the open file description, which fork() shares with the child:
// a child that outlived its parent would hold the parent's lock for as long as it lives
// (a persister killed while a multiprocessing child of its process lived kept its store
// locked against the next persister, and `rm --data` refused it: a review).  A
// ForkLock's descriptor is closed in every child at the fork (pthread_atfork, registered
// when the library is loaded): the lock stays the parent's and dies with it.  Taking the
// lock (flock + listing) and releasing it (unlisting + close) happen under the mutex that
// the prepare handler holds across fork(), so no child ever gets the description unlisted.
// (The ring's liveness locks do the same in shm/src/mapping.cc.)
#pragma once

#include "fs.h"

namespace shmbus::persist::detail {

class ForkLock {
 public:
  ForkLock() = default;
  ~ForkLock() { reset(); }
  ForkLock(const ForkLock&) = delete;
  ForkLock& operator=(const ForkLock&) = delete;

  // flock(LOCK_EX | LOCK_NB) on fd: true when taken (fd is then this lock's, and `fd` is
  // left empty); false when not (errno says why: EWOULDBLOCK, another holds it), and fd
  // stays the caller's.  Nothing must be held already.
  bool try_take(UniqueFd& fd) noexcept;
  // Releases the lock: closes its descriptor (nothing if none is held).
  void reset() noexcept;
  bool held() const noexcept { return fd_ >= 0; }

  // pthread_atfork's child handler (fork_lock.cc): closes every listed descriptor.
  static void after_fork_in_child() noexcept;

 private:
  int fd_ = -1;
};

}  // namespace shmbus::persist::detail
