// fault_env.cc: see fault_env.h.
#include "fault_env.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <filesystem>

namespace shmbus::persist::test {

namespace {
std::string file_bytes(const std::string& path) {
  std::string out;
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}
}  // namespace

const char* FaultEnv::fault_name(Fault f) {
  switch (f) {
    case Fault::kNone: return "none";
    case Fault::kEio: return "EIO";
    case Fault::kEnospc: return "ENOSPC";
    case Fault::kCrash: return "crash";
  }
  return "?";
}

FaultEnv::FaultEnv(std::string root) : root_(std::move(root)) {
  // /proc/self/fd names are canonical: so is the root.
  if (char* real = ::realpath(root_.c_str(), nullptr)) {
    root_ = real;
    std::free(real);
  }
  std::lock_guard lock(mu_);
  baseline_locked();
}

FaultEnv::~FaultEnv() { uninstall(); }

void FaultEnv::install() {
  if (installed_) return;
  prev_ = detail::set_env_for_testing(this);
  installed_ = true;
}

void FaultEnv::uninstall() {
  if (!installed_) return;
  detail::set_env_for_testing(prev_);
  installed_ = false;
}

void FaultEnv::arm(Fault f, uint64_t at, uint64_t count) {
  std::lock_guard lock(mu_);
  fault_ = f;
  fault_at_ = at;
  fault_count_ = count;
}

uint64_t FaultEnv::probe_calls() const {
  std::lock_guard lock(mu_);
  return calls_;
}

bool FaultEnv::crashed() const {
  std::lock_guard lock(mu_);
  return crashed_;
}

uint64_t FaultEnv::faults_injected() const {
  std::lock_guard lock(mu_);
  return injected_;
}

void FaultEnv::fail_next_syncs(Fault f, uint64_t count) {
  std::lock_guard lock(mu_);
  sync_fault_ = f;
  sync_fault_count_ = count;
}

void FaultEnv::fail_next_truncates(uint64_t count) {
  std::lock_guard lock(mu_);
  truncate_faults_ = count;
}

void FaultEnv::set_disk_full(bool full) {
  std::lock_guard lock(mu_);
  disk_full_ = full;
}

void FaultEnv::revive() {
  std::lock_guard lock(mu_);
  crashed_ = false;
  fault_ = Fault::kNone;
}

void FaultEnv::crash() {
  std::lock_guard lock(mu_);
  crashed_ = true;
}

int FaultEnv::probe() {
  ++calls_;
  if (crashed_) return EIO;
  if (fault_ == Fault::kNone || calls_ < fault_at_) return 0;
  if (fault_ == Fault::kCrash) {
    ++injected_;
    crashed_ = true;
    return EIO;
  }
  if (calls_ >= fault_at_ + fault_count_) return 0;
  ++injected_;
  return fault_ == Fault::kEio ? EIO : ENOSPC;
}

std::string FaultEnv::fd_path(int fd) {
  char link[64], buf[PATH_MAX];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = ::readlink(link, buf, sizeof buf - 1);
  if (n <= 0) return {};
  return std::string(buf, static_cast<size_t>(n));
}

uint64_t FaultEnv::id_for_locked(uint64_t ino) {
  auto it = ids_.find(ino);
  if (it != ids_.end()) return it->second;
  const uint64_t id = ++next_id_;
  ids_[ino] = id;
  return id;
}

void FaultEnv::forget_if_last_link_locked(int dir, const char* name) {
  struct stat st;
  if (::fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode) &&
      st.st_nlink <= 1)
    ids_.erase(static_cast<uint64_t>(st.st_ino));
}

FaultEnv::DirSnap FaultEnv::list_locked(const std::string& path) {
  DirSnap snap;
  DIR* d = ::opendir(path.c_str());
  if (!d) return snap;
  while (dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    struct stat st;
    if (::lstat((path + "/" + n).c_str(), &st) != 0) continue;
    snap[n] = DirEntry{id_for_locked(static_cast<uint64_t>(st.st_ino)), S_ISDIR(st.st_mode)};
  }
  ::closedir(d);
  return snap;
}

void FaultEnv::walk_locked(const std::string& path) {
  DirSnap snap = list_locked(path);
  for (const auto& [name, e] : snap) {
    if (e.is_dir) walk_locked(path + "/" + name);
    else durable_[e.id] = file_bytes(path + "/" + name);
  }
  dirs_[path] = std::move(snap);
}

void FaultEnv::baseline_locked() {
  ids_.clear();
  durable_.clear();
  dirty_.clear();
  dirs_.clear();
  walk_locked(root_);
}

void FaultEnv::note_dirty_locked(int fd, uint64_t off, uint64_t len) {
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || len == 0) return;
  dirty_[id_for_locked(static_cast<uint64_t>(st.st_ino))].push_back({off, off + len});
}

int FaultEnv::sync_locked(int fd, bool /*is_fsync*/) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return -1;
  const int err = probe();
  if (S_ISDIR(st.st_mode)) {
    if (err) {
      errno = err;
      return -1;
    }
    const std::string path = fd_path(fd);
    if (path.rfind(root_, 0) == 0) dirs_[path] = list_locked(path);
    return 0;
  }
  const uint64_t id = id_for_locked(static_cast<uint64_t>(st.st_ino));
  auto ranges = std::move(dirty_[id]);
  dirty_.erase(id);
  int fail = err;
  if (!fail && sync_fault_count_ > 0 && sync_fault_ != Fault::kNone) {
    --sync_fault_count_;
    ++injected_;
    fail = sync_fault_ == Fault::kEnospc ? ENOSPC : EIO;
    if (sync_fault_ == Fault::kCrash) crashed_ = true;
  }
  if (fail) {
    errno = fail;
    return -1;
  }
  if (false) {
    // As Linux does after a failed writeback: the pages are clean now, their bytes are
    // not on the disk, and no later sync will write them.
    errno = err;
    return -1;
  }
  std::string& img = durable_[id];
  const auto size = static_cast<uint64_t>(st.st_size);
  img.resize(size, '\0');
  for (auto [from, to] : ranges) {
    if (from >= size) continue;
    to = std::min(to, size);
    ssize_t n = ::pread(fd, img.data() + from, to - from, static_cast<off_t>(from));
    (void)n;
  }
  return 0;
}

void FaultEnv::reconcile_locked(const std::string& path) {
  const auto it = dirs_.find(path);
  const DirSnap want = it == dirs_.end() ? DirSnap{} : it->second;
  const DirSnap have = list_locked(path);
  for (const auto& [name, e] : have) {
    auto w = want.find(name);
    if (w == want.end() || w->second.is_dir != e.is_dir || (!e.is_dir && w->second.id != e.id)) {
      std::error_code ec;
      std::filesystem::remove_all(path + "/" + name, ec);
    }
  }
  for (const auto& [name, e] : want) {
    const std::string p = path + "/" + name;
    if (e.is_dir) {
      (void)::mkdir(p.c_str(), 0700);
      reconcile_locked(p);
      continue;
    }
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) continue;
    const auto d = durable_.find(e.id);
    if (d != durable_.end() && !d->second.empty()) {
      ssize_t n = ::pwrite(fd, d->second.data(), d->second.size(), 0);
      (void)n;
    }
    ::close(fd);
  }
}

void FaultEnv::lose_power() {
  std::lock_guard lock(mu_);
  reconcile_locked(root_);
  baseline_locked();
  crashed_ = false;
  fault_ = Fault::kNone;
  calls_ = 0;
}

// ---- the calls ------------------------------------------------------------------------

int FaultEnv::openat(int dir, const char* name, int flags, mode_t mode) {
  std::lock_guard lock(mu_);
  if (const int err = probe()) {
    errno = err;
    return -1;
  }
  if (disk_full_ && (flags & O_CREAT)) {
    struct stat st;
    if (::fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      errno = ENOSPC;
      return -1;
    }
  }
  if (flags & O_TRUNC) {
    struct stat st;
    if (::fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
      dirty_[id_for_locked(static_cast<uint64_t>(st.st_ino))].push_back(
          {0, static_cast<uint64_t>(st.st_size)});
  }
  return ::openat(dir, name, flags, mode);
}

int FaultEnv::close(int fd) { return ::close(fd); }

ssize_t FaultEnv::pwrite(int fd, const void* buf, size_t n, off_t off) {
  std::lock_guard lock(mu_);
  if (const int err = probe()) {
    errno = err;
    return -1;
  }
  if (disk_full_) {
    struct stat st;
    if (::fstat(fd, &st) == 0 && static_cast<uint64_t>(off) + n > static_cast<uint64_t>(st.st_size)) {
      errno = ENOSPC;
      return -1;
    }
  }
  ssize_t w = ::pwrite(fd, buf, n, off);
  if (w > 0) note_dirty_locked(fd, static_cast<uint64_t>(off), static_cast<uint64_t>(w));
  return w;
}

ssize_t FaultEnv::pread(int fd, void* buf, size_t n, off_t off) {
  std::lock_guard lock(mu_);
  if (crashed_) {
    errno = EIO;
    return -1;
  }
  return ::pread(fd, buf, n, off);
}

int FaultEnv::fdatasync(int fd) {
  std::lock_guard lock(mu_);
  return sync_locked(fd, false);
}

int FaultEnv::fsync(int fd) {
  std::lock_guard lock(mu_);
  return sync_locked(fd, true);
}

int FaultEnv::ftruncate(int fd, off_t size) {
  std::lock_guard lock(mu_);
  if (const int err = probe()) {
    errno = err;
    return -1;
  }
  if (truncate_faults_ > 0) {
    --truncate_faults_;
    ++injected_;
    errno = EIO;
    return -1;
  }
  struct stat st;
  const bool have = ::fstat(fd, &st) == 0;
  const int rc = ::ftruncate(fd, size);
  if (rc == 0 && have) {
    const auto a = static_cast<uint64_t>(size), b = static_cast<uint64_t>(st.st_size);
    note_dirty_locked(fd, std::min(a, b), a > b ? a - b : b - a);
  }
  return rc;
}

int FaultEnv::fallocate(int fd, off_t off, off_t len) {
  std::lock_guard lock(mu_);
  if (const int err = probe()) return err;
  if (disk_full_) return ENOSPC;
  const int rc = ::posix_fallocate(fd, off, len);
  if (rc == 0) note_dirty_locked(fd, static_cast<uint64_t>(off), static_cast<uint64_t>(len));
  return rc;
}

int FaultEnv::fstat(int fd, struct stat* st) {
  std::lock_guard lock(mu_);
  if (crashed_) {
    errno = EIO;
    return -1;
  }
  return ::fstat(fd, st);
}

int FaultEnv::mkdirat(int dir, const char* name, mode_t mode) {
  std::lock_guard lock(mu_);
  if (const int err = probe()) {
    errno = err;
    return -1;
  }
  if (disk_full_) {
    errno = ENOSPC;
    return -1;
  }
  return ::mkdirat(dir, name, mode);
}

int FaultEnv::renameat(int from_dir, const char* from, int to_dir, const char* to) {
  std::lock_guard lock(mu_);
  if (const int err = probe()) {
    errno = err;
    return -1;
  }
  forget_if_last_link_locked(to_dir, to);
  return ::renameat(from_dir, from, to_dir, to);
}

int FaultEnv::linkat(int from_dir, const char* from, int to_dir, const char* to) {
  std::lock_guard lock(mu_);
  if (const int err = probe()) {
    errno = err;
    return -1;
  }
  return ::linkat(from_dir, from, to_dir, to, 0);
}

int FaultEnv::unlinkat(int dir, const char* name, int flags) {
  std::lock_guard lock(mu_);
  if (const int err = probe()) {
    errno = err;
    return -1;
  }
  if (!(flags & AT_REMOVEDIR)) forget_if_last_link_locked(dir, name);
  return ::unlinkat(dir, name, flags);
}

}  // namespace shmbus::persist::test
