// sync_worker.cc: see sync_worker.h.
#include "sync_worker.h"

namespace shmbus::persist::detail {

SyncWorker::~SyncWorker() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stop_ = true;  // the loop finishes a running job first (the fd it syncs stays open)
  }
  cv_.notify_all();
  thread_.join();
}

void SyncWorker::start(std::function<Result<void>()> job) {
  {
    std::lock_guard lock(mu_);
    job_ = std::move(job);
    result_.reset();
  }
  busy_ = true;
  if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
  cv_.notify_all();
}

std::optional<Result<void>> SyncWorker::collect(std::chrono::nanoseconds wait) {
  if (!busy_) return std::nullopt;
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, wait, [this] { return result_.has_value(); })) return std::nullopt;
  std::optional<Result<void>> r = std::move(result_);
  result_.reset();
  busy_ = false;
  return r;
}

void SyncWorker::loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    // Bounded waits (a lost notification costs at most this long, never a hang).
    cv_.wait_for(lock, std::chrono::milliseconds(100), [this] { return stop_ || job_ != nullptr; });
    if (job_) {
      auto job = std::move(job_);
      job_ = nullptr;
      lock.unlock();
      Result<void> r = job();  // the sync itself, outside the lock
      lock.lock();
      result_ = std::move(r);
      cv_.notify_all();
      continue;
    }
    if (stop_) return;
  }
}

}  // namespace shmbus::persist::detail
