// store_path.cc: where stores live (resolve_data_dir, store_dir_for) and the trust
// checks on their directories and files (see store_path.h).
#include "store_path.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "env.h"
#include "fs.h"
#include "shmbus/shmbus.h"
#include "shmbus/store_admin.h"

namespace shmbus::persist {

namespace {

std::string user_name(uid_t uid) {
  struct passwd pw;
  struct passwd* found = nullptr;
  char buf[1024];
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found)
    return "uid " + std::to_string(uid) + " (" + found->pw_name + ")";
  return "uid " + std::to_string(uid);
}

std::string mode_text(mode_t m) {
  char b[8];
  std::snprintf(b, sizeof b, "%04o", static_cast<unsigned>(m & 07777));
  return b;
}

std::string strip_trailing_slashes(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

}  // namespace

Result<std::string> resolve_data_dir(std::string_view flag) {
  std::string dir;
  if (!flag.empty()) {
    dir = std::string(flag);
  } else if (const char* env = std::getenv("SHMBUS_DATA_DIR"); env && *env) {
    dir = env;
  } else if (const char* home = std::getenv("HOME"); home && home[0] == '/') {
    dir = std::string(home) + "/.local/share/shmbus";
  } else if (::geteuid() == 0) {
    dir = "/var/lib/shmbus";  // services running as root often have no HOME
  } else {
    return make_error(Errc::kInvalidArgument,
                      "no data directory: HOME is not set; pass --data-dir or set SHMBUS_DATA_DIR");
  }
  if (dir.find('\0') != std::string::npos)
    return make_error(Errc::kInvalidArgument, "data directory contains a NUL byte");
  if (dir[0] != '/') {
    char cwd[4096];
    if (!::getcwd(cwd, sizeof cwd))
      return make_error(Errc::kIo, std::string("cannot resolve the data directory: ") + std::strerror(errno));
    dir = std::string(cwd) + "/" + dir;
  }
  return strip_trailing_slashes(std::move(dir));
}

Result<std::string> store_dir_for(std::string_view data_dir, std::string_view ns,
                                  std::string_view stream) {
  if (auto r = validate_name("namespace", ns); !r) return r.error();
  if (auto r = validate_name("stream", stream); !r) return r.error();
  if (data_dir.empty()) return make_error(Errc::kInvalidArgument, "data directory is empty");
  return strip_trailing_slashes(std::string(data_dir)) + "/" + std::string(ns) + "/" +
         std::string(stream);
}

namespace detail {

Result<void> check_trusted(int fd, const std::string& path, Use use, bool data_root) {
  struct stat st;
  if (env().fstat(fd, &st) != 0) return errno_error(errno, "cannot stat '" + path + "'");
  const uid_t me = ::geteuid();
  const bool mine = st.st_uid == me;
  const bool shared_write = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
  const char* what = S_ISDIR(st.st_mode) ? "directory" : "file";
  auto refuse = [&](const std::string& why) {
    return make_error(Errc::kPermission, "refusing the store " + std::string(what) + " '" + path +
                                             "': " + why);
  };
  if (data_root) {
    // The data directory itself: the caller's or root's (e.g. /var/lib); a directory
    // others may write must be sticky (/tmp), so nobody can replace what we create in it.
    if (!mine && st.st_uid != 0) return refuse("it belongs to " + user_name(st.st_uid) + ", not to you");
    if (shared_write && !(st.st_mode & S_ISVTX))
      return refuse("group or others may write it (mode " + mode_text(st.st_mode) + ")");
    return {};
  }
  if (use == Use::kWrite) {
    if (!mine) return refuse("it belongs to " + user_name(st.st_uid) + ", not to you");
    if (shared_write)
      return refuse("group or others may write it (mode " + mode_text(st.st_mode) + ")");
    return {};
  }
  if ((st.st_mode & S_IWOTH) || (!mine && (st.st_mode & S_IWGRP)))
    return refuse("it is writable by users other than its owner (mode " + mode_text(st.st_mode) + ")");
  return {};
}

std::optional<std::string> store_root_of(const std::string& store_dir, std::string_view ns,
                                         std::string_view stream) {
  std::string suffix = "/";  // (appended: g++ 12's -Wrestrict misfires on "/" + string)
  suffix += ns;
  suffix += '/';
  suffix += stream;
  if (store_dir.size() <= suffix.size() ||
      store_dir.compare(store_dir.size() - suffix.size(), suffix.size(), suffix) != 0)
    return std::nullopt;
  return store_dir.substr(0, store_dir.size() - suffix.size());
}

bool same_dir(const std::string& a, const std::string& b) {
  if (a == b) return true;
  struct stat sa, sb;
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && S_ISDIR(sa.st_mode) &&
         sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

Result<void> refuse_hidden_store(const std::string& dir, std::string_view ns, std::string_view stream,
                                 std::string_view what) {
  struct stat st;
  if (::lstat(dir.c_str(), &st) == 0 || (errno != EACCES && errno != EPERM)) return {};
  const int e = errno;
  return errno_error(e, "cannot look at the store " + dir + " of stream " + std::string(ns) + "/" +
                            std::string(stream) + " (only its owner may " + std::string(what) + ")");
}

}  // namespace detail
}  // namespace shmbus::persist
