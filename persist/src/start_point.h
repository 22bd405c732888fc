// start_point.h: where a reader that starts at `earliest` or at a time begins on a
// persisted stream: in the store, or in the ring.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "shmbus/consumer.h"

namespace shmbus::persist::detail {

// The sequence that `where` (earliest, or a time) finds in the store of NS/STREAM under
// `root`; nullopt when the store has nothing there or cannot be read (or `where` is
// neither).  The reader begins in the store only when it lies below the ring's oldest
// record: the store's first records may be newer than that, as retention deletes by the
// store's size or age, not the ring's.
std::optional<uint64_t> store_start_seq(const std::string& root, std::string_view ns,
                                        std::string_view stream, StartFrom where);

}  // namespace shmbus::persist::detail
