// watermark.h: the per-stream "deleted below SEQ" file (named `watermark`).
//
// Records below the watermark are never served, even while a segment that also
// holds newer records still has their bytes.  Retention raises it too, before deleting
// segments.
//
// Version 2 (FORMAT.md) is a preallocated 1024-byte file with two CRC-protected slots
// rewritten in place, alternately: raising it needs no new disk space (deletion must
// work on a full disk), and a torn write damages only the slot being written, so the
// other still holds the previous value.  Version 1 (a 40-byte file replaced through
// `watermark.tmp` + rename) is still read; the writer converts it at open.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "shmbus/result.h"

namespace shmbus::persist::detail {

inline constexpr char kWatermarkName[] = "watermark";
inline constexpr char kWatermarkTmpName[] = "watermark.tmp";
inline constexpr char kWatermarkMagic[8] = {'S', 'H', 'M', 'B', 'W', 'M', 'K', '\0'};
inline constexpr uint32_t kWatermarkSize = 40;        // version 1: the whole file
inline constexpr uint32_t kWatermarkFileSize = 1024;  // version 2: the whole file
inline constexpr uint32_t kWatermarkSlotSize = 64;    // version 2: one slot
inline constexpr uint32_t kWatermarkSlotOffset[2] = {0, 512};  // in different sectors

struct Watermark {
  uint64_t deleted_below = 0;  // records with seq < this are deleted
  uint64_t set_ns = 0;         // when it was last raised
};

// A missing file is {0, 0}.  A damaged one (no valid slot) is kCorrupt (fsck --repair
// rewrites it).  *version (if given) gets 0 (missing), 1 or 2.  *damaged_slot (if given):
// -1, or the index (0, 1: at kWatermarkSlotOffset[]) of a version 2 file's other slot
// when it is not valid (zeros included, but in a file an earlier build made).  The value
// read is then the valid slot's, which is right after a torn write of an update never
// acknowledged, but after later damage of an acknowledged one it is an older value: the
// records that update deleted would be served again (fsck reports it).
Result<Watermark> read_watermark(int dir, uint16_t* version = nullptr, int* damaged_slot = nullptr);
// Version 2 in place when the file is a valid version 2 file (the older slot is
// overwritten, then synced); else a new version 2 file through watermark.tmp, synced,
// renamed over `watermark`, then the directory synced.  Returns once durable.
Result<void> write_watermark(int dir, const Watermark& w);
// How long a reader trusts the watermark it last read while it reads inside a segment
// (it is re-read at every listing of the segments too).  Tests lengthen it to reach the
// edge where a deletion lands within that time.  Thread: set only while no reader runs.
uint64_t watermark_recheck_ns();
void set_watermark_recheck_ns_for_testing(uint64_t ns);

// How many of `segs` (first sequences, ascending) lie wholly below a watermark of
// `deleted_below`: each one's successor starts at or below it (never the last).  The
// segments of a deletion a crash interrupted: recovery and fsck --repair finish it.
inline size_t segments_wholly_below(const std::vector<uint64_t>& segs, uint64_t deleted_below) {
  size_t below = 0;
  while (below + 1 < segs.size() && segs[below + 1] <= deleted_below) ++below;
  return below;
}

// Makes sure the file is version 2 (holding `w`), so that later raises need no space.
Result<void> ensure_watermark_file(int dir, const Watermark& w);

// A deletion asked of the persister holding the store (`shmbus delete` while it runs): an
// empty file NNNNNNNNNNNNNNNNNNNN.delete (the sequence, 20 digits) in the stream's folder.
// Raising the ring header's watermark only wakes the persister: anyone who can write the
// ring (a group given access to it, whoever created the ring's name first) can raise it,
// so a persister whose ring others can write deletes only as far as such a file asks.
// Making one takes what deleting files takes: a folder the caller owns, that no one else
// can write (Use::kWrite).  The persister removes those its store's watermark reached.
// (File names: kDeleteRequestSuffix, delete_request_file_name() in format.h.)
//
// Creates the request (already there: fine).  Not synced: the deletion is durable in the
// watermark the persister writes; a request a crash lost is asked again by the caller.
Result<void> write_delete_request(int dir, uint64_t seq);
// The highest sequence asked by a request in `dir` that is a regular file of the caller's
// user (0: none).  Reads the directory once (bounded by its entries).
Result<uint64_t> highest_delete_request(int dir);
// Removes the requests at or below `upto` (best effort: one left is asked again, harmlessly).
void remove_delete_requests(int dir, uint64_t upto);

}  // namespace shmbus::persist::detail
