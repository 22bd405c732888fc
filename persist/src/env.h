// env.h: the I/O seam of persist/.  Every file-system call that persist/ makes (through
// fs.cc) goes to the process's current Env, so that tests can put a fault-injecting one
// in its place (tests/persist/fault_env.h: fail a numbered call with EIO or ENOSPC,
// "crash" there, then "lose power").  In the spirit of LevelDB's Env.
//
// The calls mirror the system calls: they return what the system call returns and
// leave errno set.  Not behind the seam: the bytes a pmem store copies into its
// mapping and the persist (cache flush / msync) of them, and flock().
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>

namespace shmbus::persist::detail {

class Env {
 public:
  virtual ~Env() = default;
  virtual int openat(int dir, const char* name, int flags, mode_t mode) = 0;
  virtual int close(int fd) = 0;
  virtual ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) = 0;
  virtual ssize_t pread(int fd, void* buf, size_t n, off_t off) = 0;
  virtual int fdatasync(int fd) = 0;
  virtual int fsync(int fd) = 0;
  virtual int ftruncate(int fd, off_t size) = 0;
  // posix_fallocate: returns 0 or an error number (errno is not used).
  virtual int fallocate(int fd, off_t off, off_t len) = 0;
  virtual int fstat(int fd, struct stat* st) = 0;
  virtual int mkdirat(int dir, const char* name, mode_t mode) = 0;
  virtual int renameat(int from_dir, const char* from, int to_dir, const char* to) = 0;
  // linkat without flags (the link itself, never a symlink's target).
  virtual int linkat(int from_dir, const char* from, int to_dir, const char* to) = 0;
  virtual int unlinkat(int dir, const char* name, int flags) = 0;
};

// The plain system calls.
Env& real_env();
// The Env persist/ uses now (real_env() unless a test installed another).
Env& env();
// Thread: call only while no store, reader or fsck runs.  Returns the previous one.
Env* set_env_for_testing(Env* e);

}  // namespace shmbus::persist::detail
