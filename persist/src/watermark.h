// watermark.h: the per-stream "deleted below SEQ" file (named `watermark`).
//
// Records below the watermark are never served, even while a segment that also
// holds newer records still has their bytes.  Written to a temporary file, synced,
// renamed over the old one and the directory synced: a crash leaves the old or the
// new value, never a torn one.  Retention raises it too, before deleting segments.
#pragma once

#include <cstdint>

#include "shmbus/result.h"

namespace shmbus::persist::detail {

inline constexpr char kWatermarkName[] = "watermark";
inline constexpr char kWatermarkTmpName[] = "watermark.tmp";
inline constexpr char kWatermarkMagic[8] = {'S', 'H', 'M', 'B', 'W', 'M', 'K', '\0'};
inline constexpr uint32_t kWatermarkSize = 40;

struct Watermark {
  uint64_t deleted_below = 0;  // records with seq < this are deleted
  uint64_t set_ns = 0;         // when it was last raised
};

// A missing file is {0, 0}.  A damaged one is kCorrupt (fsck --repair rewrites it).
Result<Watermark> read_watermark(int dir);
Result<void> write_watermark(int dir, const Watermark& w);

}  // namespace shmbus::persist::detail
