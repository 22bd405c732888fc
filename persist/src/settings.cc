// settings.cc: see settings.h.
#include "settings.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cstring>

#include "coding.h"
#include "crc32c.h"
#include "env.h"
#include "fs.h"
#include "store_path.h"

namespace shmbus::persist::detail {

namespace {
constexpr char kMagic[8] = {'S', 'H', 'M', 'B', 'S', 'E', 'T', '\0'};
constexpr uint32_t kVersion = 1;
// Offsets: magic 0, version 8, flags 12, kind 16, reserved 20, flush_interval_ns 24,
// retention_age_ns 32, retention_bytes 40, segment_bytes 48, reserved 56, crc 60 (of 0..59).
constexpr uint32_t kHold = 1, kSync = 2, kSecure = 4;
}  // namespace

Result<void> write_settings(int dir, const PersistSettings& s) {
  std::byte b[kSettingsSize] = {};
  std::memcpy(b, kMagic, 8);
  put_u32(b + 8, kVersion);
  put_u32(b + 12, (s.hold_producers ? kHold : 0u) | (s.sync ? kSync : 0u) | (s.secure_delete ? kSecure : 0u));
  put_u32(b + 16, s.store_kind == StoreKind::kPmem ? 1 : 0);
  put_u64(b + 24, static_cast<uint64_t>(s.flush_interval.count()));
  put_u64(b + 32, static_cast<uint64_t>(s.retention_age.count()));
  put_u64(b + 40, s.retention_bytes);
  put_u64(b + 48, s.segment_bytes);
  put_u32(b + 60, crc32c(b, 60));
  return replace_file(dir, kSettingsName, kSettingsTmpName, {b, kSettingsSize});
}

std::optional<PersistSettings> read_settings(int dir) {
  auto fd = open_at(dir, kSettingsName, OpenMode::kRead);
  if (!fd) return std::nullopt;
  std::byte b[kSettingsSize];
  auto n = pread_some(fd->get(), {b, kSettingsSize}, 0, kSettingsName);
  if (!n || n.value() != kSettingsSize || std::memcmp(b, kMagic, 8) != 0 || get_u32(b + 8) != kVersion ||
      get_u32(b + 60) != crc32c(b, 60))
    return std::nullopt;
  PersistSettings s;
  const uint32_t flags = get_u32(b + 12);
  s.hold_producers = (flags & kHold) != 0;
  s.sync = (flags & kSync) != 0;
  s.secure_delete = (flags & kSecure) != 0;
  s.store_kind = get_u32(b + 16) == 1 ? StoreKind::kPmem : StoreKind::kFile;
  s.flush_interval = std::chrono::nanoseconds(static_cast<int64_t>(get_u64(b + 24)));
  s.retention_age = std::chrono::nanoseconds(static_cast<int64_t>(get_u64(b + 32)));
  s.retention_bytes = get_u64(b + 40);
  s.segment_bytes = get_u64(b + 48);
  return s;
}

bool store_recorded_secure(std::string_view root, std::string_view ns, std::string_view stream, bool* damaged) {
  if (damaged) *damaged = false;
  const std::string parts[] = {std::string(ns), std::string(stream)};
  auto d = open_dir_path(root, parts, /*create=*/false, Use::kRead);
  if (!d) return false;
  if (auto saved = read_settings(d->get())) return saved->secure_delete;
  struct stat st;
  if (damaged && ::fstatat(d->get(), kSettingsName, &st, AT_SYMLINK_NOFOLLOW) == 0) *damaged = true;
  return false;
}

}  // namespace shmbus::persist::detail
