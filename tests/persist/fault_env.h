// fault_env.h: a fault-injecting Env for persist/ (see persist/src/env.h).
//
// It passes every call to the real file system, counts the calls that can change
// something (probe points: openat, pwrite, fdatasync, fsync, ftruncate, fallocate,
// mkdirat, renameat, linkat, unlinkat), and at a chosen call can
//   - fail it (and the next count-1 probe calls) with EIO or ENOSPC; a failed
//     fdatasync/fsync also forgets the file's unsynced bytes for good, as Linux does
//     (its pages are marked clean: a later sync returns 0 without writing them);
//   - "crash": that call and every call after it fail with EIO (close still closes).
// lose_power() then makes the tree under the root look as a power loss would leave it:
// each file holds only the bytes covered by a completed sync, and each directory only
// the entries it had at its last completed fsync (files created, renamed or removed
// since are undone; a never-synced file comes back empty).  Afterwards everything
// counts as durable again and no fault is armed.
//
// Not modelled: bytes stored through a pmem mapping (the pmem store) and flock().
// Thread: any (one mutex).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "env.h"

namespace shmbus::persist::test {

class FaultEnv final : public detail::Env {
 public:
  enum class Fault { kNone, kEio, kEnospc, kCrash };
  static const char* fault_name(Fault f);

  // Tracks everything under `root` (a directory); its present state counts as durable.
  explicit FaultEnv(std::string root);
  // Installs itself as persist/'s Env for its lifetime.
  void install();
  void uninstall();
  ~FaultEnv() override;

  // The probe call number `at` (1-based, counted from construction or the last
  // lose_power()) and `count - 1` after it get `f`.
  void arm(Fault f, uint64_t at, uint64_t count = 1);
  // A full file system: creating a file or directory, writing past a file's end and
  // allocating fail with ENOSPC; overwriting bytes a file already has works.
  void set_disk_full(bool full);
  // The next `count` data syncs (fdatasync/fsync of a regular file) fail with `f`.
  void fail_next_syncs(Fault f, uint64_t count = 1);
  // The next `count` ftruncate calls fail with EIO.
  void fail_next_truncates(uint64_t count = 1);
  uint64_t probe_calls() const;
  bool crashed() const;
  uint64_t faults_injected() const;
  // Stops all I/O now, as a crash would.
  void crash();
  // The crashed process is gone and another starts: I/O works again and the page cache
  // (everything written, synced or not) is still there.
  void revive();
  void lose_power();

  int openat(int dir, const char* name, int flags, mode_t mode) override;
  int close(int fd) override;
  ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) override;
  ssize_t pread(int fd, void* buf, size_t n, off_t off) override;
  int fdatasync(int fd) override;
  int fsync(int fd) override;
  int ftruncate(int fd, off_t size) override;
  int fallocate(int fd, off_t off, off_t len) override;
  int fstat(int fd, struct stat* st) override;
  int mkdirat(int dir, const char* name, mode_t mode) override;
  int renameat(int from_dir, const char* from, int to_dir, const char* to) override;
  int linkat(int from_dir, const char* from, int to_dir, const char* to) override;
  int unlinkat(int dir, const char* name, int flags) override;

 private:
  struct DirEntry {
    uint64_t id = 0;  // the file's identity (an inode number can be reused)
    bool is_dir = false;
    bool operator==(const DirEntry&) const = default;
  };
  using DirSnap = std::map<std::string, DirEntry>;

  // Returns the error number to fail this probe call with, or 0.  Under mu_.
  int probe();
  int sync_locked(int fd, bool is_fsync);
  void baseline_locked();
  void walk_locked(const std::string& path);
  DirSnap list_locked(const std::string& path);
  void reconcile_locked(const std::string& path);
  void note_dirty_locked(int fd, uint64_t off, uint64_t len);
  uint64_t id_for_locked(uint64_t ino);
  void forget_if_last_link_locked(int dir, const char* name);
  std::string fd_path(int fd);

  std::string root_;
  mutable std::mutex mu_;
  detail::Env* prev_ = nullptr;
  bool installed_ = false;
  // ---- guarded by mu_ ----
  uint64_t calls_ = 0;
  Fault fault_ = Fault::kNone;
  uint64_t fault_at_ = 0, fault_count_ = 0;
  uint64_t injected_ = 0;
  bool disk_full_ = false;
  Fault sync_fault_ = Fault::kNone;
  uint64_t sync_fault_count_ = 0;
  uint64_t truncate_faults_ = 0;
  bool crashed_ = false;
  std::map<uint64_t, uint64_t> ids_;         // inode of a live file -> its identity
  uint64_t next_id_ = 0;
  std::map<uint64_t, std::string> durable_;  // identity -> its durable bytes
  std::map<uint64_t, std::vector<std::pair<uint64_t, uint64_t>>> dirty_;  // identity -> [off, end)
  std::map<std::string, DirSnap> dirs_;      // directory path -> its durable entries
};

// An Env that passes every call to the real file system, installed for its lifetime:
// a test overrides the calls it watches or hooks.
class ForwardingEnv : public detail::Env {
 public:
  ForwardingEnv() : prev_(detail::set_env_for_testing(this)) {}
  ~ForwardingEnv() override { detail::set_env_for_testing(prev_); }
  ForwardingEnv(const ForwardingEnv&) = delete;
  ForwardingEnv& operator=(const ForwardingEnv&) = delete;
  int openat(int d, const char* n, int f, mode_t m) override { return real().openat(d, n, f, m); }
  int close(int fd) override { return real().close(fd); }
  ssize_t pwrite(int fd, const void* b, size_t n, off_t o) override { return real().pwrite(fd, b, n, o); }
  ssize_t pread(int fd, void* b, size_t n, off_t o) override { return real().pread(fd, b, n, o); }
  int fdatasync(int fd) override { return real().fdatasync(fd); }
  int fsync(int fd) override { return real().fsync(fd); }
  int ftruncate(int fd, off_t size) override { return real().ftruncate(fd, size); }
  int fallocate(int fd, off_t o, off_t len) override { return real().fallocate(fd, o, len); }
  int fstat(int fd, struct stat* st) override { return real().fstat(fd, st); }
  int mkdirat(int d, const char* n, mode_t m) override { return real().mkdirat(d, n, m); }
  int renameat(int a, const char* f, int b, const char* t) override { return real().renameat(a, f, b, t); }
  int linkat(int a, const char* f, int b, const char* t) override { return real().linkat(a, f, b, t); }
  int unlinkat(int d, const char* n, int f) override { return real().unlinkat(d, n, f); }

 protected:
  static detail::Env& real() { return detail::real_env(); }

 private:
  detail::Env* prev_;
};

// Installs a FaultEnv for a scope.
class ScopedFaultEnv {
 public:
  explicit ScopedFaultEnv(std::string root) : env_(std::move(root)) { env_.install(); }
  ~ScopedFaultEnv() { env_.uninstall(); }
  FaultEnv* operator->() { return &env_; }
  FaultEnv& get() { return env_; }

 private:
  FaultEnv env_;
};

}  // namespace shmbus::persist::test
