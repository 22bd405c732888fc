// fs.h: the file-system calls of persist/, in one place: directories opened without
// following symlinks, files created 0600 relative to a directory fd, whole writes,
// errno turned into an Error a user can act on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shmbus/result.h"

namespace shmbus::persist::detail {

// An owned file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }
  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  int release() noexcept {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset() noexcept;

 private:
  int fd_ = -1;
};

// ENOSPC / EFBIG / EDQUOT -> kNoSpace, EACCES / EPERM / ELOOP -> kPermission,
// ENOENT -> kNotFound, EEXIST -> kExists, others -> kIo.  `what` says what failed.
Error errno_error(int err, const std::string& what);

enum class Use : uint8_t;  // store_path.h

// Opens `root` (which may be a symlink: the caller chose it; created with its missing
// parents, 0700, when `create`), then each component below it with O_NOFOLLOW |
// O_DIRECTORY, creating missing ones 0700 when `create`.  Every directory must pass
// check_trusted() for `use` (the root with the data-root rules).
Result<UniqueFd> open_dir_path(std::string_view root, std::span<const std::string> parts,
                               bool create, Use use);

enum class OpenMode { kRead, kReadWrite, kCreateExclusive, kCreateOrOpen, kCreateTruncate };
// openat(dir, name, ... | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC), 0600 when it creates;
// anything but a regular file (a FIFO, a device, a directory) is kCorrupt, never
// waited on.  A file opened for writing must belong to the caller, one opened for
// reading must not be writable by others (check_trusted in store_path.h).
Result<UniqueFd> open_at(int dir, const std::string& name, OpenMode mode);

// pwrite until done.  *written (if given) receives the bytes that did reach the file,
// also on error.
Result<void> pwrite_all(int fd, std::span<const std::byte> data, uint64_t off,
                        const std::string& what, size_t* written = nullptr);
// pread until `out` is full or the end of the file; returns the bytes read.
Result<size_t> pread_some(int fd, std::span<std::byte> out, uint64_t off, const std::string& what);

// Reads [from, to) of the file and writes the same bytes back, 1 MiB at a time, so that
// the next sync writes them: after a failed fdatasync Linux leaves the pages it could not
// write marked clean, and a sync of a clean page writes nothing.  Stops early at the
// file's end.
Result<void> rewrite_bytes(int fd, uint64_t from, uint64_t to, const std::string& what);

Result<uint64_t> file_size(int fd, const std::string& what);
Result<void> sync_data(int fd, const std::string& what);  // fdatasync
Result<void> sync_all(int fd, const std::string& what);   // fsync (also directories)
Result<void> truncate_to(int fd, uint64_t size, const std::string& what);

// Names of the entries of a directory (not "." or "..").
Result<std::vector<std::string>> list_dir(int dir);
// First sequences of the NNNNNNNNNNNNNNNNNNNN.seg files in `dir`, ascending.
Result<std::vector<uint64_t>> list_segments(int dir);

// renameat within one directory (replaces `to`).  The caller syncs the directory.
Result<void> rename_file(int dir, const std::string& from, const std::string& to);
// linkat within one directory: `to` a second name of `from` (never replaced: kExists).
// The caller syncs the directory.
Result<void> link_file(int dir, const std::string& from, const std::string& to);
// posix_fallocate(fd, 0, size).
Result<void> allocate(int fd, uint64_t size, const std::string& what);

// Overwrites [from, to) of the file with zeros and syncs it (secure deletion).
Result<void> overwrite_zeros(int fd, uint64_t from, uint64_t to, const std::string& what);

// Unlinks `name`; with `secure`, first overwrites its bytes with zeros and syncs.
// A missing file is success.
Result<void> remove_file(int dir, const std::string& name, bool secure);
// Replaces `name` in `dir` by a file holding `content`, so that a reader, a crash or a
// power loss at any point finds the old file or the new one whole, never a mix or a
// truncated one: written to `tmp_name` (created 0600, truncated if a crash left it),
// synced, renamed over `name`, and the directory synced.  A failure before the rename
// removes `tmp_name` again and leaves the old file as it was; *renamed (if given) says
// whether the rename was done (a failure after it, of the directory's sync: the new
// file is in place but may not survive a power loss).
Result<void> replace_file(int dir, const std::string& name, const std::string& tmp_name,
                          std::span<const std::byte> content, bool* renamed = nullptr);

}  // namespace shmbus::persist::detail
