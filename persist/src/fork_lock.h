// fork_lock.h: a flock() lock that a fork()ed child does not keep.
//
// flock() locks belong to the open file description, which fork() shares with the child:
// a child that outlived its parent would hold the parent's lock for as long as it lives
// (a persister killed while a multiprocessing child of its process lived kept its store
// locked against the next persister, and `rm --data` refused it: a review).  A
// ForkLock's descriptor is closed in every child at the fork (pthread_atfork, registered
// when the library is loaded): the lock stays the parent's and dies with it.  Opening the
// descriptor, locking and listing it, and unlisting and closing it, all happen under the
// mutex that the prepare handler holds across fork(), so no child ever gets the
// description unlisted (a review: opened outside it, a fork from another thread between
// the open and the flock left the child an unlisted copy that then held the lock).  (The
// ring's liveness locks do the same in shm/src/mapping.cc.)
#pragma once

#include <functional>

#include "fs.h"
#include "shmbus/result.h"

namespace shmbus::persist::detail {

class ForkLock {
 public:
  ForkLock() = default;
  ~ForkLock() { reset(); }
  ForkLock(const ForkLock&) = delete;
  ForkLock& operator=(const ForkLock&) = delete;

  // Opens the lock's file with `open` and flock(LOCK_EX | LOCK_NB)s it, both under the
  // fork mutex: true when taken; false when another holds it (the descriptor is closed
  // again, under the mutex); `open`'s error, or flock's (errno_error(errno, what)).
  // Nothing must be held already.
  Result<bool> try_take(const std::function<Result<UniqueFd>()>& open, const std::string& what);
  // Releases the lock: closes its descriptor (nothing if none is held).
  void reset() noexcept;

  // pthread_atfork's child handler (fork_lock.cc): closes every listed descriptor.
  static void after_fork_in_child() noexcept;

 private:
  int fd_ = -1;
};

}  // namespace shmbus::persist::detail
