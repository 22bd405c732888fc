// pmem_sink.cc: the segment sink of the pmem store (PMDK libpmem2).
//
// The file is allocated in full up front (posix_fallocate: a full disk shows up here,
// never as SIGBUS on a store into the mapping) and mapped with a required store
// granularity of PAGE, which every file satisfies; the granularity libpmem2 reports
// tells whether persisting is a cache flush (DAX) or msync.
#include <fcntl.h>
#include <libpmem2.h>

#include <algorithm>

#include "fs.h"
#include "log.h"
#include "sink.h"

namespace shmbus::persist::detail {
namespace {

PmemGranularity from_pmem2(pmem2_granularity g) {
  switch (g) {
    case PMEM2_GRANULARITY_BYTE: return PmemGranularity::kByte;
    case PMEM2_GRANULARITY_CACHE_LINE: return PmemGranularity::kCacheLine;
    case PMEM2_GRANULARITY_PAGE: return PmemGranularity::kPage;
  }
  return PmemGranularity::kPage;
}

Error pmem2_error(int rc, const std::string& what) {
  // libpmem2 returns -errno, or its own codes at PMEM2_E_UNKNOWN and below.
  const int e = rc < 0 && rc > PMEM2_E_UNKNOWN ? -rc : EIO;
  Error err = errno_error(e, what);
  err.message += std::string(" [libpmem2: ") + pmem2_errormsg() + "]";
  return err;
}

class PmemSink final : public SegmentSink {
 public:
  PmemSink(UniqueFd fd, std::string name) : fd_(std::move(fd)), name_(std::move(name)) {}
  ~PmemSink() override {
    (void)settle();  // the worker may be persisting the mapping
    unmap();
  }

  Result<void> map(uint64_t valid_end) {
    pmem2_config* cfg = nullptr;
    pmem2_source* src = nullptr;
    int rc = pmem2_config_new(&cfg);
    if (rc == 0) rc = pmem2_config_set_required_store_granularity(cfg, PMEM2_GRANULARITY_PAGE);
    if (rc == 0) rc = pmem2_source_from_fd(&src, fd_.get());
    if (rc == 0) rc = pmem2_map_new(&map_, cfg, src);
    if (src) pmem2_source_delete(&src);
    if (cfg) pmem2_config_delete(&cfg);
    if (rc != 0) {
      map_ = nullptr;
      return pmem2_error(rc, "cannot map segment " + name_);
    }
    base_ = static_cast<std::byte*>(pmem2_map_get_address(map_));
    size_ = pmem2_map_get_size(map_);
    memcpy_ = pmem2_get_memcpy_fn(map_);
    memset_ = pmem2_get_memset_fn(map_);
    persist_ = pmem2_get_persist_fn(map_);
    granularity_ = from_pmem2(pmem2_map_get_store_granularity(map_));
    end_ = persisted_ = dirty_hi_ = valid_end;
    return {};
  }

  uint64_t capacity() const noexcept override { return map_ ? size_ : 0; }

  Result<void> append(std::span<const Bytes> parts) override {
    const uint64_t total = total_size(parts);
    if (!map_) return make_error(Errc::kClosed, "segment " + name_ + " is sealed");
    if (end_ + total > size_)
      return make_error(Errc::kFull, "segment " + name_ + " has no room for the record");
    for (const auto& p : parts) {
      memcpy_(base_ + end_, p.data(), p.size(), PMEM2_F_MEM_NOFLUSH);
      end_ += p.size();
    }
    dirty_hi_ = std::max(dirty_hi_, end_);
    return {};
  }

  Result<void> rollback(uint64_t end) override {
    if (auto r = settle(); !r) return r;
    if (!map_) return make_error(Errc::kClosed, "segment " + name_ + " is sealed");
    memset_(base_ + end, 0, end_ - end, PMEM2_F_MEM_NOFLUSH);
    end_ = end;
    persisted_ = std::min(persisted_, end);
    return {};
  }

  Result<void> sync() override {
    if (auto r = settle(); !r) return r;
    sync_failed_ = false;
    if (!map_) return {};
    const uint64_t hi = std::max(end_, dirty_hi_);
    if (hi > persisted_) {
      persist_(base_ + persisted_, hi - persisted_);
      // Without DAX the persist is msync, whose errors libpmem2 does not return: an
      // fdatasync after it reports a failed writeback of the mapping's pages.
      if (granularity_ == PmemGranularity::kPage) {
        if (auto r = sync_data(fd_.get(), "segment " + name_); !r) {
          dirty_hi_ = end_;
          sync_failed_ = true;
          return r;
        }
      }
    }
    persisted_ = dirty_hi_ = end_;
    return {};
  }
  uint64_t synced_end() const noexcept override { return persisted_; }

  Result<void> sync_start(SyncWorker* worker) override {
    if (auto r = settle(); !r) return r;
    sync_failed_ = false;
    if (!map_) return {};
    const uint64_t from = persisted_, hi = std::max(end_, dirty_hi_);
    if (hi <= from) return {};
    // The worker persists [from, hi) while appends copy in after end_ (other bytes;
    // a page they share is simply written back once more at the next sync).
    sync_target_ = end_;
    worker_ = worker;
    worker->start([this, from, hi]() -> Result<void> {
      persist_(base_ + from, hi - from);
      if (granularity_ == PmemGranularity::kPage) return sync_data(fd_.get(), "segment " + name_);
      return {};
    });
    return {};
  }

  Result<void> seal() override {
    if (auto r = sync(); !r) return r;
    unmap();
    if (auto r = truncate_to(fd_.get(), end_, "segment " + name_); !r) return r;
    sealed_ = true;
    return sync_all(fd_.get(), "segment " + name_);
  }

  Result<void> close() override {
    auto r = sync();
    unmap();
    return r;
  }

  uint64_t bytes_on_disk() const noexcept override { return sealed_ ? end_ : size_; }
  PmemGranularity granularity() const noexcept override { return granularity_; }
  const std::string& name() const noexcept override { return name_; }
  int fd() const noexcept { return fd_.get(); }
  // Unmaps and hands the file over (before any append).
  UniqueFd release() {
    unmap();
    return std::move(fd_);
  }

 private:
  void sync_done(const Result<void>& r) override {
    if (r) {
      persisted_ = std::max(persisted_, sync_target_);
    } else {
      dirty_hi_ = std::max(dirty_hi_, end_);
      sync_failed_ = true;
    }
  }

  void unmap() {
    if (map_) pmem2_map_delete(&map_);
    map_ = nullptr;
  }

  UniqueFd fd_;
  std::string name_;
  pmem2_map* map_ = nullptr;
  std::byte* base_ = nullptr;
  uint64_t size_ = 0;
  pmem2_memcpy_fn memcpy_ = nullptr;
  pmem2_memset_fn memset_ = nullptr;
  pmem2_persist_fn persist_ = nullptr;
  PmemGranularity granularity_ = PmemGranularity::kPage;
  uint64_t persisted_ = 0;  // [0, persisted_) is durable
  uint64_t sync_target_ = 0;  // end_ when the running background sync started
  uint64_t dirty_hi_ = 0;   // highest byte written since the last persist
  bool sealed_ = false;
};

}  // namespace

Result<std::unique_ptr<SegmentSink>> open_pmem_sink(int dir, const std::string& name, bool create,
                                                    uint64_t valid_end, uint64_t size,
                                                    uint32_t buffer_bytes) {
  auto fd = open_at(dir, name, create ? OpenMode::kCreateExclusive : OpenMode::kReadWrite);
  if (!fd) return fd.error();
  auto fail = [&](Error e) -> Result<std::unique_ptr<SegmentSink>> {
    if (create) (void)remove_file(dir, name, false);
    return e;
  };
  // The mapping length must be a multiple of the source's alignment (a page here).
  size_t align = 4096;
  {
    pmem2_source* src = nullptr;
    if (pmem2_source_from_fd(&src, fd->get()) == 0) {
      (void)pmem2_source_alignment(src, &align);
      pmem2_source_delete(&src);
    }
    if (align == 0) align = 4096;
  }
  size = std::max(size, valid_end);
  size = (size + align - 1) / align * align;
  if (auto a = allocate(fd->get(), size, "segment " + name); !a) {
    auto r = fail(a.error());
    if (!create) (void)truncate_to(fd->get(), valid_end, name);  // undo a partial extension
    // An existing segment on a full disk: the store must still open (retention and
    // `delete` make room through it), so the segment goes on with plain writes, the same
    // bytes a FileSink writes; they fail with ENOSPC until there is room.  The next
    // segment is pre-sized again (test Durability.APmemStoreOpensOnAFullDisk).
    if (!create && a.error().code == Errc::kNoSpace) {
      fd->reset();
      log_warn("segment " + name + ": no room to pre-size it (" + a.error().message +
               "): it continues with plain writes");
      return open_file_sink(dir, name, false, valid_end, buffer_bytes);
    }
    return r;
  }
  auto sink = std::make_unique<PmemSink>(std::move(fd.value()), name);
  if (auto r = sink->map(create ? 0 : valid_end); !r) return fail(r.error());
  if (sink->granularity() == PmemGranularity::kPage)  // no DAX: see sink.h
    return make_presized_file_sink(sink->release(), name, create ? 0 : valid_end, buffer_bytes, size);
  return std::unique_ptr<SegmentSink>(std::move(sink));
}

}  // namespace shmbus::persist::detail
