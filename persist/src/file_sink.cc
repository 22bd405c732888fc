// file_sink.cc: the segment sink of the file store (buffered pwrite + fdatasync); also
// the pmem store's on a file without DAX (pre-sized: see open_pmem_sink).
#include <algorithm>
#include <cstring>
#include <vector>

#include "fs.h"
#include "sink.h"

namespace shmbus::persist::detail {
namespace {

class FileSink final : public SegmentSink {
 public:
  // `presized`: the file is pre-allocated to that size (zeros after the frames), kept
  // so until seal() trims it; 0: the file ends at its last frame.
  FileSink(UniqueFd fd, std::string name, uint64_t valid_end, uint32_t buffer_bytes,
           uint64_t presized = 0)
      : fd_(std::move(fd)),
        name_(std::move(name)),
        buf_(buffer_bytes),
        file_end_(valid_end),
        synced_end_(valid_end),
        presized_(presized) {
    end_ = valid_end;
  }

  // The fd must stay open while the worker syncs it.
  ~FileSink() override { (void)settle(); }

  uint64_t capacity() const noexcept override { return presized_ ? presized_ : UINT64_MAX; }

  Result<void> append(std::span<const Bytes> parts) override {
    const uint64_t total = total_size(parts);
    if (sealed_) return make_error(Errc::kClosed, "segment " + name_ + " is sealed");
    if (presized_ && end_ + total > presized_)
      return make_error(Errc::kFull, "segment " + name_ + " has no room for the record");
    if (auto r = clean_tail(); !r) return r;
    if (buf_len_ + total > buf_.size()) {
      if (auto r = write_buffer(); !r) return r;
    }
    if (total > buf_.size()) {  // larger than the buffer: straight to the file
      uint64_t off = file_end_;
      for (const auto& p : parts) {
        if (auto r = pwrite_all(fd_.get(), p, off, "segment " + name_); !r) {
          dirty_tail_ = true;
          (void)clean_tail();
          return r;
        }
        off += p.size();
      }
      file_end_ += total;
      end_ += total;
      unsynced_ = true;
      return {};
    }
    for (const auto& p : parts) {
      if (!p.empty()) std::memcpy(buf_.data() + buf_len_, p.data(), p.size());
      buf_len_ += p.size();
    }
    end_ += total;
    return {};
  }

  Result<std::byte*> reserve(size_t n) override {
    if (sealed_) return make_error(Errc::kClosed, "segment " + name_ + " is sealed");
    if (presized_ && end_ + n > presized_)
      return make_error(Errc::kFull, "segment " + name_ + " has no room for the record");
    if (n > buf_.size()) return static_cast<std::byte*>(nullptr);
    if (auto r = clean_tail(); !r) return r.error();
    if (buf_len_ + n > buf_.size()) {
      if (auto r = write_buffer(); !r) return r.error();
    }
    return buf_.data() + buf_len_;
  }
  void append_reserved(size_t n) override {
    buf_len_ += n;
    end_ += n;
  }

  Result<void> rollback(uint64_t end) override {
    if (auto r = settle(); !r) return r;
    if (end >= file_end_) {
      buf_len_ = static_cast<size_t>(end - file_end_);
    } else {
      if (auto r = cut(end); !r) return r;
      file_end_ = end;
      synced_end_ = std::min(synced_end_, end);
      buf_len_ = 0;
    }
    end_ = end;
    return {};
  }

  Result<void> sync() override {
    if (auto r = settle(); !r) return r;
    if (auto r = clean_tail(); !r) return r;
    if (auto r = write_buffer(); !r) return r;
    sync_failed_ = false;
    if (!unsynced_) return {};
    if (auto r = sync_data(fd_.get(), "segment " + name_); !r) {
      sync_failed_ = true;
      return r;
    }
    unsynced_ = false;
    synced_end_ = file_end_;
    return {};
  }
  uint64_t synced_end() const noexcept override { return synced_end_; }

  Result<void> sync_start(SyncWorker* worker) override {
    if (auto r = settle(); !r) return r;
    if (auto r = clean_tail(); !r) return r;
    if (auto r = write_buffer(); !r) return r;
    sync_failed_ = false;
    if (!unsynced_) return {};
    // fdatasync makes durable what was written before it was called: the bytes up to
    // file_end_ now.  Writes after this point are not counted until the next sync.
    unsynced_ = false;
    sync_target_ = file_end_;
    worker_ = worker;
    worker->start([fd = fd_.get(), what = "segment " + name_] { return sync_data(fd, what); });
    return {};
  }

  Result<void> seal() override {
    if (auto r = sync(); !r) return r;
    if (!presized_ || sealed_) return {};
    if (auto r = truncate_to(fd_.get(), end_, "segment " + name_); !r) return r;
    sealed_ = true;
    return sync_all(fd_.get(), "segment " + name_);
  }
  Result<void> close() override { return sync(); }
  uint64_t bytes_on_disk() const noexcept override {
    return presized_ && !sealed_ ? presized_ : end_;
  }
  PmemGranularity granularity() const noexcept override {
    return presized_ ? PmemGranularity::kPage : PmemGranularity::kNotPmem;
  }
  const std::string& name() const noexcept override { return name_; }

 private:
  // After a failed write the file may hold part of a frame past file_end_: cut it off
  // before anything else is written, so a later, shorter frame cannot leave stale
  // bytes behind it.
  void sync_done(const Result<void>& r) override {
    if (r) {
      synced_end_ = std::max(synced_end_, sync_target_);
    } else {
      sync_failed_ = true;
      unsynced_ = true;
    }
  }

  Result<void> clean_tail() {
    if (!dirty_tail_) return {};
    if (auto r = cut(file_end_); !r) return r;
    dirty_tail_ = false;
    return {};
  }

  // Drops the file's bytes from `off` on (a pre-sized file gets its zeros back).
  Result<void> cut(uint64_t off) {
    if (auto r = truncate_to(fd_.get(), off, "segment " + name_); !r) return r;
    if (presized_) return allocate(fd_.get(), presized_, "segment " + name_);
    return {};
  }

  Result<void> write_buffer() {
    if (buf_len_ == 0) return {};
    if (auto r = pwrite_all(fd_.get(), {buf_.data(), buf_len_}, file_end_, "segment " + name_);
        !r) {
      dirty_tail_ = true;
      (void)clean_tail();
      return r;
    }
    file_end_ += buf_len_;
    buf_len_ = 0;
    unsynced_ = true;
    return {};
  }

  UniqueFd fd_;
  std::string name_;
  std::vector<std::byte> buf_;
  size_t buf_len_ = 0;
  uint64_t file_end_ = 0;  // bytes of [0, end_) already in the file
  uint64_t synced_end_ = 0;  // bytes of the file made durable by the last sync
  uint64_t sync_target_ = 0;  // file_end_ when the running background sync started
  uint64_t presized_ = 0;  // see the constructor
  bool sealed_ = false;
  bool dirty_tail_ = false;
  bool unsynced_ = false;
};

}  // namespace

Result<std::unique_ptr<SegmentSink>> make_presized_file_sink(UniqueFd fd, const std::string& name,
                                                             uint64_t valid_end, uint32_t buffer_bytes,
                                                             uint64_t size) {
  return std::unique_ptr<SegmentSink>(
      new FileSink(std::move(fd), name, valid_end, buffer_bytes, size));
}

Result<std::unique_ptr<SegmentSink>> open_file_sink(int dir, const std::string& name, bool create,
                                                    uint64_t valid_end, uint32_t buffer_bytes) {
  auto fd = open_at(dir, name, create ? OpenMode::kCreateExclusive : OpenMode::kReadWrite);
  if (!fd) return fd.error();
  return std::unique_ptr<SegmentSink>(
      new FileSink(std::move(fd.value()), name, create ? 0 : valid_end, buffer_bytes));
}

}  // namespace shmbus::persist::detail
