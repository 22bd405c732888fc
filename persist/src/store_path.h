// store_path.h: trust checks for the directories and files of a store.  A store
// directory is used only when it belongs to the caller and nobody else can write it;
// the data root may also belong to root and be a sticky shared directory (/tmp).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "shmbus/result.h"

namespace shmbus::persist::detail {

enum class Use : uint8_t {
  kWrite,  // the caller will write or remove: owned by the caller, no group/other write
  kRead,   // the caller only reads: no other-write, no group-write unless the caller owns it
};

// `fd` is an open directory (or file) at `path` (for messages).  kPermission when it
// fails the rules above; `data_root` relaxes them for the data directory itself.
Result<void> check_trusted(int fd, const std::string& path, Use use, bool data_root = false);

// ROOT when `store_dir` is ROOT/NS/STREAM (as a stream header names it), else nullopt.
std::optional<std::string> store_root_of(const std::string& store_dir, std::string_view ns,
                                         std::string_view stream);
// Two paths name the same directory: equal strings, or the same inode.
bool same_dir(const std::string& a, const std::string& b);

// A store folder (`dir`, of stream ns/stream) that is there but hidden from the caller
// (lstat: EACCES or EPERM) is another user's, not absent: only its owner may `what`
// (delete from it, detach it, persist the stream elsewhere).  (Its persister applies the
// ring's deletion watermark to it only on a ring no other user can write, or as far as a
// request in the folder asks: watermark.h.  This refusal stays the first line.)
// kPermission then; success when the folder can be looked at or does not exist.
Result<void> refuse_hidden_store(const std::string& dir, std::string_view ns, std::string_view stream,
                                 std::string_view what);

}  // namespace shmbus::persist::detail
