// store_path.h: trust checks for the directories and files of a store.  A store
// directory is used only when it belongs to the caller and nobody else can write it;
// the data root may also belong to root and be a sticky shared directory (/tmp).
#pragma once

#include <string>

#include "shmbus/result.h"

namespace shmbus::persist::detail {

enum class Use : uint8_t {
  kWrite,  // the caller will write or remove: owned by the caller, no group/other write
  kRead,   // the caller only reads: no other-write, no group-write unless the caller owns it
};

// `fd` is an open directory (or file) at `path` (for messages).  kPermission when it
// fails the rules above; `data_root` relaxes them for the data directory itself.
Result<void> check_trusted(int fd, const std::string& path, Use use, bool data_root = false);

}  // namespace shmbus::persist::detail
