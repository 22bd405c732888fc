// shmbus/tail.h: a reader without a consumer group ("shmbus tail", Python's
// Consumer(group=None)), and the one decision of how it reads.
//
// On a persisted stream, or on one whose ring is gone (a reboot) but whose store is in
// the data directory, it is a ReplayConsumer: the store, then the live ring with no gap
// and no duplicate; overrun, it goes back to the store.  On any other stream it is a
// tailing ring consumer (a GroupConsumer without a group): overrun, it skips ahead
// (kLapped).  open_tail() decides it (with reads_through_store()); the CLI and the
// Python module call it instead of deciding themselves.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "shmbus/persister.h"

namespace shmbus::persist {

struct TailOptions {
  // kCommitted means the earliest record (of the store, when replaying), as for any
  // tailing reader.
  StartFrom start = StartFrom::earliest();
  WaitStrategy wait = WaitStrategy::kBlock;
  bool read_only = false;
  // Opening read-write is refused (kPermission: e.g. a mode 0640 stream of another
  // user): open it read-only instead (a reader without a group needs no slot).
  bool read_only_if_denied = false;
  // Where a store whose ring is gone is found: resolved as resolve_data_dir() does.
  std::string data_dir;
};

// Exactly one of the two is set.
struct Tail {
  std::optional<ReplayConsumer> replay;  // the store, then the ring
  std::optional<GroupConsumer> ring;     // the ring only (auto_commit off: nothing to commit)
  bool replaying() const noexcept { return replay.has_value(); }
};

// Opens a reader without a group on NS/STREAM.  Errors are the consumers' own (kNotFound
// when there is neither a ring nor a store).  Thread: any; may wait for a creator still
// at work, and reads the store's directory.
Result<Tail> open_tail(std::string_view ns, std::string_view stream, const TailOptions& opts = {});

}  // namespace shmbus::persist
