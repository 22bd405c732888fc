// shmbus/detail/descriptors.h: keeping the descriptors shm/ and persist/ hold off 0, 1
// and 2.  Internal: not for users (not shipped).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace shmbus::detail {

// A descriptor the library keeps (a ring, a store's file or lock) never sits on 0, 1 or
// 2: a process that closed a standard stream would otherwise read its input from, or
// write its output into, that object (the `shmbus` command did: `tail S >&-` wrote its
// records over a ring's header; tools/main.cc now holds them itself, but a program
// linking the library may not).  Returns `fd` moved above 2 (close-on-exec; the low one
// closed), `fd` itself when it is not a standard one, or -1 with errno set.
inline int above_stdio(int fd) noexcept {
  if (fd < 0 || fd > 2) return fd;
  const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  const int e = errno;
  ::close(fd);
  errno = e;
  return moved;
}

}  // namespace shmbus::detail
