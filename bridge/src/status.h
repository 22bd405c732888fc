// status.h: the status file a running bridge publishes for `shmbus stat` (see
// BridgeStatus in shmbus/kafka.h).  Format, one "key value" per line, at most 4 KiB:
//   shmbus-bridge-status 1          (magic and version: the first line)
//   ns NS / stream STREAM / direction out|in / name NAME / topic TOPIC / brokers LIST
//   pid PID / updated_ns NS / delivered N / in_flight N / errors N / skipped N /
//   duplicates_skipped N / lag N / restarts N / last_error TEXT (rest of the line)
// Values hold no newline (they are replaced by spaces when written).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "shmbus/kafka.h"

namespace shmbus::kafka::detail {

inline constexpr const char* kStatusMagic = "shmbus-bridge-status 1";
inline constexpr size_t kStatusMaxBytes = 4096;

// Thread: the bridge's own thread only.
class StatusWriter {
 public:
  StatusWriter(std::string ns, std::string stream, std::string direction, std::string name,
               std::string topic, std::string brokers);
  ~StatusWriter();  // removes the file
  StatusWriter(const StatusWriter&) = delete;
  StatusWriter& operator=(const StatusWriter&) = delete;

  // Writes the file if `force` or 500 ms passed since the last write.  Failures are
  // logged once and otherwise ignored (stat then shows nothing for this bridge).
  void update(const BridgeCounters& c, bool force = false);
  const std::string& path() const noexcept { return path_; }

 private:
  std::string ns_, stream_, direction_, name_, topic_, brokers_, path_;
  std::chrono::steady_clock::time_point last_{};
  bool warned_ = false;
};

// Parses one status file's text; false if it is not a valid one.
bool parse_status(const std::string& text, std::string* ns, std::string* stream, BridgeStatus* out);

}  // namespace shmbus::kafka::detail
