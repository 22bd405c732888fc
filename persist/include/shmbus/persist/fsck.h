// shmbus/persist/fsck.h: checking (and repairing) the segments of a data root or of
// one stream folder.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shmbus/result.h"

namespace shmbus::persist {

struct FsckIssue {
  std::string path;     // NS/STREAM/FILE, relative to the checked directory
  uint64_t offset = 0;  // where in the file
  uint64_t bytes = 0;   // bytes affected (dropped when repaired)
  std::string problem;
  bool repaired = false;
  bool repairable = true;  // false: --repair cannot fix it (a report says so, not "run with --repair")
};

// A stream whose writer (a persister) was running during the check: its active segment
// was read up to its last complete record, and its tail (being written) not judged.
struct FsckLive {
  std::string stream;     // NS/STREAM
  uint64_t end_seq = 0;   // one past the last record read (a segment whose header is not
                          // written yet: its first sequence; 0 when its header is damaged)
  uint64_t bytes = 0;     // of the active segment, read up to there
};

struct FsckReport {
  uint64_t streams = 0;
  uint64_t segments = 0;
  uint64_t records = 0;  // valid data records
  uint64_t bytes = 0;    // segment bytes checked
  std::vector<FsckIssue> issues;
  // Files fsck --repair moved aside (NS/STREAM/NNNN.seg.corrupt[.N]): kept as evidence,
  // never read; `rm --data` removes them.  Listed, not counted as issues.
  std::vector<std::string> quarantined;
  std::vector<FsckLive> live;  // streams being written during the check
  bool clean() const noexcept;  // no issue left unrepaired
};

// Checks every segment (header, every frame, sequence continuity between segments),
// every index (against one rebuilt from its segment) and the watermark file of each
// stream under `dir`: a data root (DIR/NS/STREAM/...) or one stream folder.  With
// `repair`: a torn tail is truncated, a damage inside a sealed segment is cut there
// and replaced by a lost-range marker up to the next segment, a damaged segment header
// whose first frame is intact is rebuilt (from the frame, the file name and the folder),
// unreadable segments are renamed NAME.seg.corrupt (or .corrupt.N: an earlier one is
// never replaced), indexes rewritten, a bad watermark rebuilt from the segments, and the
// directory synced.  A second repair finds nothing to do.  Repair takes each stream's
// writer lock (kBusy if a writer is running).
Result<FsckReport> fsck(std::string_view dir, bool repair);
// The same, of one namespace's stores only (empty: all): `dir` is a data root, whose
// NS folder is checked (kNotFound when it has none: the message names the namespaces
// there), or one store folder, which must lie in a folder named NS (kInvalidArgument
// otherwise).  The namespace's name is checked as every name is (kInvalidArgument).
Result<FsckReport> fsck(std::string_view dir, bool repair, std::string_view only_ns);

}  // namespace shmbus::persist
