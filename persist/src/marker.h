// marker.h: segments that hold only a lost-range marker, which fsck --repair puts in place
// of a segment it moves aside (FORMAT.md, "Quarantine"), and which a persister's recovery
// replaces for a last one whose end was not known (recovery.cc).
//
// Each is written and synced under NNNN.seg.tmp first and then renamed over NNNN.seg, so
// that the name holds the old file or the marker's, never neither, whatever the crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "shmbus/result.h"

namespace shmbus::persist::detail {

// A lost-range marker frame [from, to) with `reason` (kLostRecords, kLostEndUnknown),
// stamped `ts_ns`: frame_size(kLostPayloadSize) bytes at `frame`.
void encode_lost_marker(uint64_t from, uint64_t to, uint32_t reason, uint64_t ts_ns, std::byte* frame);

// Writes and syncs NNNN.seg.tmp (one an interrupted repair left is replaced): a segment
// header for `first` naming ns/stream, then a lost-range marker [first, to) with `reason`
// (kLostRecords, kLostEndUnknown) stamped `ts_ns`: one frame; or, for kLostEndUnknown with
// `known` (where the segment is known to have held records up to) past `first`, two:
// [first, k) and [k, to), k = min(known, to - 1), which tell `known` to whoever withdraws
// it (end_unknown_marker).
Result<void> prepare_marker_segment(int dir, uint64_t first, uint64_t known, uint64_t to, uint32_t reason,
                                    uint64_t ts_ns, std::string_view ns, std::string_view stream);
// Renames NNNN.seg.tmp over NNNN.seg.  The caller syncs the directory.
Result<void> install_marker_segment(int dir, uint64_t first);
// Writes the index of the marker segment NNNN.seg (its entry and its seal entry).
Result<void> index_marker_segment(int dir, uint64_t first);
// The marker [first, to) of a segment that holds only the marker fsck --repair put in
// place of a last segment it moved aside (reason kLostEndUnknown, one frame or two; its
// header names ns/stream and `first`): {known, to} (known: the second frame's first
// sequence, or `first`); none for any other segment.
struct EndUnknown {
  uint64_t known = 0, to = 0;
};
Result<std::optional<EndUnknown>> end_unknown_marker(int dir, uint64_t first, std::string_view ns,
                                                     std::string_view stream);

}  // namespace shmbus::persist::detail
