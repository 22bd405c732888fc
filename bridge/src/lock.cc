// lock.cc: see lock.h.
#include "lock.h"
#include "shmbus/detail/descriptors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace shmbus::kafka::detail {
namespace {

uint64_t fnv1a(const std::string& s, uint64_t h) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// The pid written by the holder, or "" if the file holds none.
std::string holder_pid(int fd) {
  char buf[512];
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return "";
  buf[n] = 0;
  const char* p = std::strstr(buf, "\npid ");
  if (!p) return "";
  p += 5;
  std::string pid;
  while (*p >= '0' && *p <= '9' && pid.size() < 10) pid += *p++;
  return pid;
}

}  // namespace

std::string OutLock::path_for(const std::string& ns, const std::string& stream, const std::string& topic) {
  uint64_t h = 0xcbf29ce484222325ULL;
  h = fnv1a(ns, h);
  h = fnv1a(std::string(1, '\0'), h);
  h = fnv1a(stream, h);
  h = fnv1a(std::string(1, '\0'), h);
  h = fnv1a(topic, h);
  char name[64];
  std::snprintf(name, sizeof name, "/dev/shm/shmbus-bridge-out.%016llx.lock", static_cast<unsigned long long>(h));
  return name;
}

Result<OutLock> OutLock::acquire(const std::string& ns, const std::string& stream, const std::string& topic) {
  const std::string path = path_for(ns, stream, topic);
  const std::string who = "bridge out of " + ns + "/" + stream + " to topic '" + topic + "'";
  // Bounded: a retry happens only when the holder removed the file between our open and
  // our lock (it was ending).
  for (int attempt = 0; attempt < 16; ++attempt) {
    const int fd = shmbus::detail::above_stdio(
        ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600));
    if (fd < 0) return make_error(errno == ELOOP ? Errc::kPermission : Errc::kIo, sys_error("cannot open the lock file", path));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) {
      ::close(fd);
      return make_error(Errc::kPermission, "the lock file " + path + " of the " + who +
                                               " is not a regular file of yours (uid " + std::to_string(st.st_uid) +
                                               "): remove it if no such bridge runs");
    }
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (::fcntl(fd, F_OFD_SETLK, &fl) != 0) {
      const int e = errno;
      if (e == EAGAIN || e == EACCES) {
        const std::string pid = holder_pid(fd);
        ::close(fd);
        return make_error(Errc::kBusy, "a " + who + " is already running" +
                                           (pid.empty() ? std::string() : " (pid " + pid + ")") +
                                           ": one at a time, or records would reach Kafka twice");
      }
      ::close(fd);
      errno = e;
      return make_error(Errc::kIo, sys_error("cannot lock", path));
    }
    // The file we locked must still be the one at the path (a holder that ended removed
    // it after our open: lock the new one instead).
    struct stat now {};
    if (::lstat(path.c_str(), &now) != 0 || now.st_ino != st.st_ino || now.st_dev != st.st_dev) {
      ::close(fd);
      continue;
    }
    const std::string text = "shmbus-bridge-out-lock 1\nns " + ns + "\nstream " + stream + "\ntopic " + topic +
                              "\npid " + std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
      const int e = errno;
      (void)::unlink(path.c_str());
      ::close(fd);
      errno = e;
      return make_error(Errc::kIo, sys_error("cannot write the lock file", path));
    }
    return OutLock(fd, path);
  }
  return make_error(Errc::kBusy, "the lock file " + path + " of the " + who + " keeps being replaced");
}

OutLock::~OutLock() {
  if (fd_ < 0) return;
  // Removed while still held: whoever opened it meanwhile finds it gone after locking
  // and opens the path again.
  (void)::unlink(path_.c_str());
  ::close(fd_);
}

std::string sys_error(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

}  // namespace shmbus::kafka::detail
