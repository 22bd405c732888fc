// lock.h: one `bridge out` per stream and topic on this host.
//
// Two bridges of one stream into one topic would each send what Kafka does not hold yet,
// and every such record would land twice.  A bridge that is stalled (SIGSTOP, a frozen
// container, a long page-in) is not dead, so no liveness timeout can tell them apart:
// the kernel can.  The running bridge holds an OFD write lock on
// /dev/shm/shmbus-bridge-out.HASH.lock (HASH: 64-bit FNV-1a of namespace, stream and
// topic); the lock goes with the process, however it ends, in any PID namespace that
// shares /dev/shm.  The file (0600, the caller's, never followed through a symlink)
// names the stream, the topic and the holder's pid, for the refusal's message.
#pragma once

#include <string>

#include "shmbus/result.h"

namespace shmbus::kafka::detail {

// "WHAT PATH: strerror(errno)", for the errors of the bridge's files in /dev/shm.
std::string sys_error(const std::string& what, const std::string& path);

class OutLock {
 public:
  // kBusy if another process holds it (the message names its pid); kPermission if the
  // file is not the caller's regular file.
  static Result<OutLock> acquire(const std::string& ns, const std::string& stream, const std::string& topic);

  OutLock(OutLock&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
  OutLock& operator=(OutLock&&) = delete;
  OutLock(const OutLock&) = delete;
  ~OutLock();  // removes the file, then lets the lock go

  static std::string path_for(const std::string& ns, const std::string& stream, const std::string& topic);

 private:
  OutLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::string path_;
};

}  // namespace shmbus::kafka::detail
