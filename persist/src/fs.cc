// fs.cc: file-system helpers (see fs.h).
#include "fs.h"

#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "env.h"
#include "format.h"
#include "store_path.h"

namespace shmbus::persist::detail {

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = o.release();
  }
  return *this;
}

void UniqueFd::reset() noexcept {
  if (fd_ >= 0) env().close(fd_);
  fd_ = -1;
}

Error errno_error(int err, const std::string& what) {
  const std::string sys = std::strerror(err);
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      return make_error(Errc::kNoSpace, what + ": disk full (" + sys +
                                            "); appends resume once space is freed");
    case EFBIG:
      return make_error(Errc::kNoSpace, what + ": file size limit reached (" + sys +
                                            ", RLIMIT_FSIZE?); appends resume once raised");
    case EACCES:
    case EPERM:
      return make_error(Errc::kPermission, what + ": " + sys);
    case ELOOP:
      return make_error(Errc::kPermission, what + ": is a symbolic link, which is not followed");
    case ENOTDIR:
      return make_error(Errc::kInvalidArgument, what + ": not a directory");
    case ENOENT:
      return make_error(Errc::kNotFound, what + ": " + sys);
    case EEXIST:
      return make_error(Errc::kExists, what + ": already exists");
    default:
      return make_error(Errc::kIo, what + ": " + sys);
  }
}

Result<UniqueFd> open_dir_path(std::string_view root, std::span<const std::string> parts,
                               bool create, Use use) {
  const std::string r(root);
  if (r.empty()) return make_error(Errc::kInvalidArgument, "data directory is empty");
  int mkdir_errno = 0;  // the first mkdir that failed for another reason than EEXIST
  std::string mkdir_path;
  if (create) {
    // The root and its missing parents (mkdir -p); EEXIST is fine.
    auto mk = [&](const std::string& p) {
      if (env().mkdirat(AT_FDCWD, p.c_str(), 0700) != 0 && errno != EEXIST && mkdir_errno == 0) {
        mkdir_errno = errno;
        mkdir_path = p;
      }
    };
    for (size_t at = r.find('/', 1); at != std::string::npos; at = r.find('/', at + 1)) mk(r.substr(0, at));
    mk(r);
  }
  UniqueFd dir(env().openat(AT_FDCWD, r.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0));
  if (!dir.valid()) {
    const int e = errno;
    // Missing, and mkdir -p could not make it (a user whose HOME does not exist said
    // only "No such file or directory"): the step that failed, and the way out.
    if (e == ENOENT && mkdir_errno != 0)
      return errno_error(mkdir_errno, "cannot create data directory '" + r +
                                          "' (pass --data-dir or set SHMBUS_DATA_DIR to a directory "
                                          "you can write): mkdir '" + mkdir_path + "'");
    return errno_error(e, "cannot open data directory '" + r + "'");
  }
  if (auto t = check_trusted(dir.get(), r, use, /*data_root=*/true); !t) return t.error();
  std::string path = r;
  for (const auto& part : parts) {
    path += "/" + part;
    constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int fd = env().openat(dir.get(), part.c_str(), kDirFlags, 0);
    if (fd < 0 && errno == ENOENT && create) {
      if (env().mkdirat(dir.get(), part.c_str(), 0700) != 0 && errno != EEXIST)
        return errno_error(errno, "cannot create directory '" + path + "'");
      fd = env().openat(dir.get(), part.c_str(), kDirFlags, 0);
    }
    // A directory's entry is durable only once its parent is synced.  Every open for
    // writing syncs it (not only the one that made it: that sync may have failed).
    if (fd >= 0 && create && env().fsync(dir.get()) != 0) {
      const int err = errno;
      env().close(fd);
      return errno_error(err, "cannot sync the directory holding '" + path + "'");
    }
    if (fd < 0) {
      const int err = errno;
      struct stat st;
      if (err == ENOTDIR && ::fstatat(dir.get(), part.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISLNK(st.st_mode))
        return errno_error(ELOOP, "'" + path + "'");
      return errno_error(err, "cannot open directory '" + path + "'");
    }
    dir = UniqueFd(fd);
    if (auto t = check_trusted(dir.get(), path, use); !t) return t.error();
  }
  return dir;
}

Result<UniqueFd> open_at(int dir, const std::string& name, OpenMode mode) {
  // O_NONBLOCK: opening a FIFO (or a device) planted under a segment's name must not
  // block; it has no effect on the regular files accepted below.
  int flags = O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
  switch (mode) {
    case OpenMode::kRead: flags |= O_RDONLY; break;
    case OpenMode::kReadWrite: flags |= O_RDWR; break;
    case OpenMode::kCreateExclusive: flags |= O_RDWR | O_CREAT | O_EXCL; break;
    case OpenMode::kCreateOrOpen: flags |= O_RDWR | O_CREAT; break;
    case OpenMode::kCreateTruncate: flags |= O_RDWR | O_CREAT | O_TRUNC; break;
  }
  // A FIFO opened for writing with O_NONBLOCK and no reader fails with ENXIO.
  UniqueFd fd(env().openat(dir, name.c_str(), flags, 0600));
  if (!fd.valid()) {
    if (errno == ENXIO) return make_error(Errc::kCorrupt, "'" + name + "' is not a regular file");
    return errno_error(errno, "cannot open '" + name + "'");
  }
  struct stat st;
  if (env().fstat(fd.get(), &st) != 0) return errno_error(errno, "cannot stat '" + name + "'");
  if (!S_ISREG(st.st_mode))
    return make_error(Errc::kCorrupt, "'" + name + "' is not a regular file");
  if (auto t = check_trusted(fd.get(), name, mode == OpenMode::kRead ? Use::kRead : Use::kWrite); !t)
    return t.error();
  return fd;
}

Result<void> pwrite_all(int fd, std::span<const std::byte> data, uint64_t off,
                        const std::string& what, size_t* written) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = env().pwrite(fd, data.data() + done, data.size() - done,
                         static_cast<off_t>(off + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (written) *written = done;
      return errno_error(n < 0 ? errno : ENOSPC, "cannot write " + what);
    }
    done += static_cast<size_t>(n);
  }
  if (written) *written = done;
  return {};
}

Result<size_t> pread_some(int fd, std::span<std::byte> out, uint64_t off,
                          const std::string& what) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = env().pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(off + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error(errno, "cannot read " + what);
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

Result<uint64_t> file_size(int fd, const std::string& what) {
  struct stat st;
  if (env().fstat(fd, &st) != 0) return errno_error(errno, "cannot stat " + what);
  return static_cast<uint64_t>(st.st_size);
}

Result<void> sync_data(int fd, const std::string& what) {
  if (env().fdatasync(fd) != 0) return errno_error(errno, "cannot sync " + what);
  return {};
}

Result<void> sync_all(int fd, const std::string& what) {
  if (env().fsync(fd) != 0) return errno_error(errno, "cannot sync " + what);
  return {};
}

Result<void> rewrite_bytes(int fd, uint64_t from, uint64_t to, const std::string& what) {
  std::vector<std::byte> buf(static_cast<size_t>(std::min<uint64_t>(to > from ? to - from : 0, 1 << 20)));
  for (uint64_t off = from; off < to;) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(to - off, buf.size()));
    auto got = pread_some(fd, {buf.data(), want}, off, what);
    if (!got) return got.error();
    if (got.value() == 0) break;
    if (auto r = pwrite_all(fd, {buf.data(), got.value()}, off, what); !r) return r;
    off += got.value();
  }
  return {};
}

Result<void> truncate_to(int fd, uint64_t size, const std::string& what) {
  while (env().ftruncate(fd, static_cast<off_t>(size)) != 0) {
    if (errno != EINTR) return errno_error(errno, "cannot truncate " + what);
  }
  return {};
}

Result<std::vector<std::string>> list_dir(int dir) {
  int fd = ::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_error(errno, "cannot list directory");
  DIR* d = ::fdopendir(fd);
  if (!d) {
    int e = errno;
    ::close(fd);
    return errno_error(e, "cannot list directory");
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::vector<uint64_t>> list_segments(int dir) {
  auto names = list_dir(dir);
  if (!names) return names.error();
  std::vector<uint64_t> seqs;
  for (const auto& n : names.value()) {
    uint64_t s;
    if (parse_numbered_name(n, kSegmentSuffix, &s)) seqs.push_back(s);
  }
  std::sort(seqs.begin(), seqs.end());
  return seqs;
}

Result<void> overwrite_zeros(int fd, uint64_t from, uint64_t to, const std::string& what) {
  if (to <= from) return {};
  std::vector<std::byte> zeros(static_cast<size_t>(std::min<uint64_t>(to - from, 1 << 20)));
  for (uint64_t off = from; off < to; off += zeros.size()) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), to - off));
    if (auto r = pwrite_all(fd, {zeros.data(), n}, off, what + " (overwrite)"); !r) return r;
  }
  return sync_data(fd, what);
}

Result<void> remove_file(int dir, const std::string& name, bool secure) {
  if (secure) {
    auto f = open_at(dir, name, OpenMode::kReadWrite);
    if (!f) {
      if (f.error().code == Errc::kNotFound) return {};
      return f.error();
    }
    auto size = file_size(f->get(), name);
    if (!size) return size.error();
    if (auto r = overwrite_zeros(f->get(), 0, size.value(), "'" + name + "'"); !r) return r;
  }
  if (env().unlinkat(dir, name.c_str(), 0) != 0 && errno != ENOENT)
    return errno_error(errno, "cannot delete '" + name + "'");
  return {};
}

Result<void> replace_file(int dir, const std::string& name, const std::string& tmp_name,
                          std::span<const std::byte> content, bool* renamed) {
  if (renamed) *renamed = false;
  {
    auto fd = open_at(dir, tmp_name, OpenMode::kCreateTruncate);
    if (!fd) return fd.error();
    Result<void> r = pwrite_all(fd->get(), content, 0, tmp_name);
    if (r) r = sync_data(fd->get(), tmp_name);
    if (!r) {
      (void)remove_file(dir, tmp_name, false);
      return r;
    }
  }
  if (auto r = rename_file(dir, tmp_name, name); !r) {
    (void)remove_file(dir, tmp_name, false);
    return r;
  }
  if (renamed) *renamed = true;
  return sync_all(dir, "the directory of " + name);
}

Result<void> rename_file(int dir, const std::string& from, const std::string& to) {
  if (env().renameat(dir, from.c_str(), dir, to.c_str()) != 0)
    return errno_error(errno, "cannot rename '" + from + "' to '" + to + "'");
  return {};
}

Result<void> link_file(int dir, const std::string& from, const std::string& to) {
  if (env().linkat(dir, from.c_str(), dir, to.c_str()) != 0)
    return errno_error(errno, "cannot link '" + from + "' to '" + to + "'");
  return {};
}

Result<void> allocate(int fd, uint64_t size, const std::string& what) {
  int rc;
  do {
    rc = env().fallocate(fd, 0, static_cast<off_t>(size));
  } while (rc == EINTR);
  if (rc != 0) return errno_error(rc, "cannot allocate " + std::to_string(size) + " bytes for " + what);
  return {};
}

}  // namespace shmbus::persist::detail
