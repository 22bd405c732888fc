// settings.h: the persistence settings a persister ran with, kept beside the store
// (file `settings`), so that a stream re-created over its store (after a reboot) gets
// them back before a persister starts again.  64 bytes, little-endian, CRC32C;
// persist/FORMAT.md describes them.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "shmbus/result.h"
#include "shmbus/shmbus.h"

namespace shmbus::persist::detail {

inline constexpr char kSettingsName[] = "settings";
inline constexpr char kSettingsTmpName[] = "settings.tmp";
inline constexpr uint32_t kSettingsSize = 64;

// Written as settings.tmp, synced, renamed over `settings`, directory synced.
Result<void> write_settings(int dir, const PersistSettings& s);
// nullopt when the file is missing or damaged (a hint only: a persister rewrites it).
std::optional<PersistSettings> read_settings(int dir);
// Whether the settings beside the store ROOT/NS/STREAM ask for secure_delete: false when
// there is no such store, or its file is missing or damaged (*damaged, if given: the file
// exists but cannot be read, so the answer is not known).
bool store_recorded_secure(std::string_view root, std::string_view ns, std::string_view stream,
                           bool* damaged = nullptr);

}  // namespace shmbus::persist::detail
