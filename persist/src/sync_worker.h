// sync_worker.h: one background thread that runs a store's syncs (fdatasync, or the pmem
// persist), so that the writer frames and writes the next records while the previous
// ones reach the disk.  At most one job at a time; the writer starts it, appends on, and
// collects its result later (SegmentSink::sync_start / sync_finish).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "shmbus/result.h"

namespace shmbus::persist::detail {

class SyncWorker {
 public:
  SyncWorker() = default;
  SyncWorker(const SyncWorker&) = delete;
  SyncWorker& operator=(const SyncWorker&) = delete;
  ~SyncWorker();  // waits for a running job, then ends the thread

  // Thread: the owner's.  Runs `job` on the worker thread (started at the first call).
  // Precondition: no job is running or uncollected (busy() is false).
  void start(std::function<Result<void>()> job);
  // Thread: the owner's.  A job was started and its result not collected yet.
  bool busy() const noexcept { return busy_; }
  // Thread: the owner's.  The running job's result once it is over, waiting at most
  // `wait` for it (nullopt: still running).  After a result, busy() is false.
  std::optional<Result<void>> collect(std::chrono::nanoseconds wait);

 private:
  void loop();

  std::thread thread_;
  bool busy_ = false;  // owner thread only

  // ---- guarded by mu_ ----
  std::mutex mu_;
  std::condition_variable cv_;  // a job arrived, a result is ready, or stopping
  std::function<Result<void>()> job_;
  std::optional<Result<void>> result_;
  bool stop_ = false;
};

}  // namespace shmbus::persist::detail
