// store.cc: SegmentStore: appending, rolling, flushing, statistics.
#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <thread>

#include "coding.h"
#include "format.h"
#include "log.h"
#include "store_impl.h"
#include "store_path.h"

namespace shmbus::persist {

using namespace detail;

const char* store_kind_name(StoreKind k) noexcept {
  return k == StoreKind::kPmem ? "pmem" : "file";
}

std::optional<StoreKind> parse_store_kind(std::string_view name) noexcept {
  for (StoreKind k : {StoreKind::kFile, StoreKind::kPmem})
    if (name == store_kind_name(k)) return k;
  return std::nullopt;
}

const char* granularity_name(PmemGranularity g) noexcept {
  switch (g) {
    case PmemGranularity::kNotPmem: return "none";
    case PmemGranularity::kByte: return "byte";
    case PmemGranularity::kCacheLine: return "cache-line";
    case PmemGranularity::kPage: return "page";
  }
  return "unknown";
}

uint32_t granularity_code(PmemGranularity g) noexcept { return static_cast<uint32_t>(g); }

PmemGranularity granularity_from_code(uint32_t code) noexcept {
  return code <= granularity_code(PmemGranularity::kPage) ? static_cast<PmemGranularity>(code)
                                                          : PmemGranularity::kNotPmem;
}

namespace {
// Stores closed while stopped (they could not cut their active segment back to its last
// synced byte): a later open in this process cuts it first, instead of finding those
// bytes in the page cache and counting them durable.  Keyed by the stream folder.
std::mutex g_unsafe_mu;
std::map<std::string, std::pair<uint64_t, uint64_t>>& unsafe_tails() {  // guarded by g_unsafe_mu
  static std::map<std::string, std::pair<uint64_t, uint64_t>> m;
  return m;
}
}  // namespace

void detail::forget_unsafe_tails_for_testing() {
  std::lock_guard g(g_unsafe_mu);
  unsafe_tails().clear();
}

uint64_t SegmentStore::Impl::now_coarse() const {
  if (opts.clock) return opts.clock();
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

std::string SegmentStore::Impl::seg_path(uint64_t first_seq) const {
  return where + "/" + segment_file_name(first_seq);
}

uint64_t SegmentStore::Impl::total_bytes() const {
  uint64_t total = 0;
  for (const auto& s : sealed) total += s.bytes;
  if (sink) total += sink->bytes_on_disk() + idx_written + idx_pending.size();
  return total;
}

// ---- open / close -----------------------------------------------------------------

static Result<void> check_options(const StoreOptions& o) {
  if (o.segment_bytes < 4096 || o.segment_bytes > (uint64_t{1} << 40))
    return make_error(Errc::kInvalidArgument, "segment_bytes must be between 4 KiB and 1 TiB");
  if (o.index_interval < 256)
    return make_error(Errc::kInvalidArgument, "index_interval must be at least 256 bytes");
  if (o.write_buffer < 4096)
    return make_error(Errc::kInvalidArgument, "write_buffer must be at least 4 KiB");
  if (o.roll_age.count() < 0 || o.flush_interval.count() < 0)
    return make_error(Errc::kInvalidArgument, "roll_age and flush_interval cannot be negative");
  return {};
}

Result<SegmentStore> SegmentStore::open(std::string_view dir_root, std::string_view ns,
                                        std::string_view stream, const StoreOptions& opts) {
  if (auto r = validate_name("namespace", ns); !r) return r.error();
  if (auto r = validate_name("stream", stream); !r) return r.error();
  if (auto r = check_options(opts); !r) return r.error();
  auto impl = std::make_unique<Impl>();
  impl->opts = opts;
  impl->ns = std::string(ns);
  impl->stream = std::string(stream);
  impl->where = std::string(dir_root) + "/" + impl->ns + "/" + impl->stream;
  impl->granularity = PmemGranularity::kNotPmem;
  impl->counters.kind = opts.kind;
  const std::string parts[] = {impl->ns, impl->stream};
  auto dir = open_dir_path(dir_root, parts, /*create=*/true, Use::kWrite);
  if (!dir) return dir.error();
  impl->dir = std::move(dir.value());
  // A check-only fsck takes the lock for a moment to see whether a writer is there, then
  // lets go (fsck.cc): a writer that meets that moment tries again for a while (bounded
  // by time, not by tries: an fsck descheduled while it holds the lock on a busy host
  // could outlast 100 tries of 1 ms), as another writer holds it for good.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  // A ForkLock: a child this process forks does not keep it (fork_lock.h).
  const int dir_fd = impl->dir.get();
  for (;;) {
    auto taken = impl->lock.try_take([dir_fd] { return open_at(dir_fd, "LOCK", OpenMode::kCreateOrOpen); },
                                     "cannot lock " + impl->where);
    if (!taken) return taken.error();
    if (taken.value()) break;
    if (std::chrono::steady_clock::now() >= give_up)
      return make_error(Errc::kBusy, "another writer has " + impl->where + " open");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  {
    std::lock_guard g(g_unsafe_mu);
    auto it = unsafe_tails().find(impl->where);
    if (it != unsafe_tails().end()) {
      const auto [first, keep] = it->second;
      const std::string name = segment_file_name(first);
      auto fd = open_at(impl->dir.get(), name, OpenMode::kReadWrite);
      Result<void> cut = fd ? Result<void>() : Result<void>(fd.error());
      if (fd && fd->valid()) {
        auto size = file_size(fd->get(), name);
        if (!size) cut = size.error();
        else if (size.value() > keep) cut = truncate_to(fd->get(), keep, name);
        if (cut) cut = detail::sync_data(fd->get(), name);
      }
      if (!cut && cut.error().code != Errc::kNotFound)
        return make_error(Errc::kIo, impl->where + ": cannot cut " + name + " back to its last synced byte " +
                                         std::to_string(keep) + " after an earlier I/O error: " +
                                         cut.error().message);
      unsafe_tails().erase(it);
    }
  }
  if (auto r = impl->recover(); !r) return r.error();
  return SegmentStore(std::move(impl));
}

SegmentStore::SegmentStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SegmentStore::SegmentStore(SegmentStore&&) noexcept = default;
SegmentStore& SegmentStore::operator=(SegmentStore&& o) noexcept {
  if (this != &o) {
    if (impl_ && !impl_->closed) (void)close();
    impl_ = std::move(o.impl_);
  }
  return *this;
}

SegmentStore::~SegmentStore() {
  if (!impl_ || impl_->closed) return;
  if (auto r = close(); !r) log_warn("closing " + impl_->where + ": " + r.error().message);
}

Result<void> SegmentStore::close() {
  if (!impl_ || impl_->closed) return make_error(Errc::kClosed, "store is closed");
  Impl& s = *impl_;
  // A stopped store tries once more to go back to its last synced record: what it
  // leaves behind is found (and trusted) by the next open.
  Result<void> result = s.usable();
  // An index that cannot be written (a full disk: a store opened there owes its active
  // index whole) does not fail the close: the records are durable and the next open
  // rebuilds the index (a review: `delete --before` on a full disk deleted, then failed).
  if (result) result = s.flush(/*index_optional=*/true);
  for (int i = 0; i < 3 && s.broken; ++i) result = s.usable();
  if (s.broken) {
    std::lock_guard g(g_unsafe_mu);
    unsafe_tails()[s.where] = {s.cut_first, s.cut_keep};
  }
  if (s.sink && !s.broken) {
    if (auto r = s.sink->close(); !r && result.ok()) result = r;
  }
  s.sink.reset();
  s.idx_fd.reset();
  s.lock.reset();  // releases the flock
  s.dir.reset();
  s.closed = true;
  return result;
}

// ---- appending ----------------------------------------------------------------------

Result<void> SegmentStore::Impl::usable() {
  if (closed) return make_error(Errc::kClosed, "store is closed");
  if (!broken) return {};
  if (auto r = cut_back(cut_first, cut_keep); !r) return make_error(Errc::kIo, broken_why);
  broken = false;
  durable.store(next_seq, std::memory_order_release);  // pairs with durable_seq()
  log_info(where + ": went back to sequence " + std::to_string(next_seq) +
           " (its last synced record) after the I/O error");
  return {};
}

bool SegmentStore::stopped() const noexcept { return impl_ && impl_->broken; }

Result<void> SegmentStore::append(uint64_t seq, uint64_t ts_ns, uint32_t type, Bytes payload) {
  if (!impl_) return make_error(Errc::kClosed, "store is closed");
  if (auto u = impl_->usable(); !u) return u;
  if (seq == UINT64_MAX)
    return make_error(Errc::kInvalidArgument, "sequence 2^64-1 cannot be stored");
  return impl_->append_frame(FrameKind::kData, seq, seq + 1, ts_ns, type, payload.data(),
                             payload.size());
}

Result<void> SegmentStore::append_batch(std::span<const Record> recs) {
  if (!impl_) return make_error(Errc::kClosed, "store is closed");
  for (size_t i = 1; i < recs.size(); ++i)
    if (recs[i].seq != recs[i - 1].seq + 1 || recs[i].seq == 0)
      return make_error(Errc::kInvalidArgument,
                        "append_batch: sequence " + std::to_string(recs[i].seq) + " follows " +
                            std::to_string(recs[i - 1].seq) + " (records must be consecutive)");
  Impl& s = *impl_;
  size_t i = 0;
  while (i < recs.size()) {
    // A run of small records for one batch frame: into a version 2 segment only (a new
    // store's first segment, and every segment created from now on, is one).
    size_t j = i;
    if (!s.sink || s.active_version >= 2) {
      uint64_t bytes = 0;
      while (j < recs.size() && recs[j].data.size() <= kBatchRecordMax &&
             bytes + sub_record_size(recs[j].data.size()) <= kBatchPayloadMax)
        bytes += sub_record_size(recs[j++].data.size());
    }
    Result<void> r;
    if (j - i >= 2) {
      if (auto u = s.usable(); !u) return u;
      r = s.append_batch_frame(&recs[i], j - i);
      i = j;
    } else {
      r = append(recs[i].seq, recs[i].ts_ns, recs[i].type, recs[i].data);
      ++i;
    }
    if (!r) return r;
  }
  return {};
}

Result<void> SegmentStore::Impl::append_batch_frame(const Record* recs, size_t n) {
  if (recs[n - 1].seq == UINT64_MAX)
    return make_error(Errc::kInvalidArgument, "sequence 2^64-1 cannot be stored");
  uint64_t size = 0, data_bytes = 0, max_ts = recs[0].ts_ns;
  for (size_t k = 0; k < n; ++k) {
    size += sub_record_size(recs[k].data.size());
    data_bytes += recs[k].data.size();
    max_ts = std::max(max_ts, recs[k].ts_ns);
  }
  batch_buf.resize(static_cast<size_t>(size));
  std::byte* out = batch_buf.data();
  for (size_t k = 0; k < n; ++k) {
    encode_sub_record(recs[k].type, recs[k].ts_ns, recs[k].data, out);
    out += sub_record_size(recs[k].data.size());
  }
  const BatchInfo info{n, max_ts, data_bytes};
  return append_frame(FrameKind::kBatch, recs[0].seq, recs[0].seq + n, recs[0].ts_ns,
                      static_cast<uint32_t>(n), batch_buf.data(), batch_buf.size(), &info);
}

Result<void> SegmentStore::append_lost(uint64_t from, uint64_t to, bool skipped) {
  if (!impl_) return make_error(Errc::kClosed, "store is closed");
  if (auto u = impl_->usable(); !u) return u;
  if (to <= from)
    return make_error(Errc::kInvalidArgument, "lost range [" + std::to_string(from) + ", " +
                                                  std::to_string(to) + ") is empty");
  std::byte payload[kLostPayloadSize];
  put_u64(payload, to);
  return impl_->append_frame(FrameKind::kLost, from, to, impl_->now(), skipped ? kLostSkipped : kLostRecords,
                             payload, sizeof payload);
}

Result<void> SegmentStore::Impl::append_frame(FrameKind kind, uint64_t seq, uint64_t end_seq,
                                              uint64_t ts_ns, uint32_t type, const std::byte* data,
                                              size_t size, const BatchInfo* batch) {
  const Bytes payload(data, size);
  if ((!fresh || fresh_at != kAnySeq) && seq != next_seq) {
    if (seq < next_seq)
      return make_error(Errc::kInvalidArgument,
                        "sequence " + std::to_string(seq) + " is already stored in " + where +
                            " (next is " + std::to_string(next_seq) + ")");
    return make_error(Errc::kInvalidArgument,
                      "sequence " + std::to_string(seq) + " leaves a gap in " + where +
                          " (next is " + std::to_string(next_seq) +
                          "): record the gap with append_lost() first");
  }
  if (payload.size() > kMaxPayload)
    return make_error(Errc::kTooLarge, "record of " + std::to_string(payload.size()) +
                                           " bytes exceeds the 1 GiB limit of a segment record");
  const uint64_t fsize = frame_size(payload.size());
  const uint64_t now_ns = now_coarse();
  if (fresh && sink && active.first_seq != seq) {
    // A new store whose first append failed, retried with another sequence: the empty
    // segment is named after the old one.
    if (auto r = discard_empty_active(); !r) return r;
  }
  if (sink && active.end_seq > active.first_seq) {
    const bool by_size = sink->end() + fsize > opts.segment_bytes;
    const bool by_age = opts.roll_age.count() > 0 && now_ns >= active_created_ns &&
                        now_ns - active_created_ns >= static_cast<uint64_t>(opts.roll_age.count());
    if (by_size || by_age) {
      if (auto r = roll(); !r) return r;
    }
  } else if (sink && sink->end() + fsize > sink->capacity()) {
    if (auto r = discard_empty_active(); !r) return r;  // pre-sized too small for this one
  }
  if (!sink) {
    if (auto r = create_segment(fresh ? seq : next_seq, kSegmentHeaderSize + fsize); !r) return r;
  }

  FrameHeader fh;
  fh.length = static_cast<uint32_t>(payload.size());
  fh.kind = kind;
  fh.seq = seq;
  fh.ts_ns = ts_ns;
  fh.type = type;
  const uint64_t offset = sink->end();
  auto slot = sink->reserve(fsize);
  if (!slot) return slot.error();
  if (std::byte* out = slot.value()) {
    // Built where it is written: the payload copied first, then the CRC read from the
    // copy (in this core's cache), the padding zeroed.  At 64 B a record the store
    // alone took ~4% less time (bench/README.md, "The frame built in the write
    // buffer").
    std::byte* body = out + kFrameHeaderSize;
    if (size) std::memcpy(body, data, size);
    std::memset(body + size, 0, fsize - kFrameHeaderSize - size);
    encode_frame_header(fh, Bytes(body, size), out);
    sink->append_reserved(fsize);
  } else {
    std::byte head[kFrameHeaderSize];
    encode_frame_header(fh, payload, head);
    static constexpr std::byte kZeros[8] = {};
    const Bytes parts[] = {Bytes(head, sizeof head), payload,
                           Bytes(kZeros, fsize - kFrameHeaderSize - payload.size())};
    if (auto r = sink->append(parts); !r) return r;
  }
  if (opts.durability == Durability::kSync) {
    if (auto r = settle(); !r) return r;  // (the append stays: the caller writes it again)
    if (auto r = sync_data(); !r) {
      if (sink && sink->sync_failed()) return rewind(r.error());
      (void)sink->rollback(offset);
      return r;
    }
  }

  // The record is stored: bookkeeping.
  IndexEntry e;
  const uint64_t records = batch ? batch->records : kind == FrameKind::kData ? 1 : 0;
  if (builder.add(offset, seq, end_seq, ts_ns, batch ? batch->max_ts : ts_ns, records, &e)) {
    const size_t at = idx_pending.size();
    idx_pending.resize(at + kIndexEntrySize);
    encode_index_entry(e, idx_pending.data() + at);
  }
  active.end_seq = end_seq;
  active.first_ts = builder.first_ts();
  active.max_ts = builder.max_ts();
  active.records = builder.count();
  if (fresh) {
    durable.store(seq, std::memory_order_release);  // pairs with durable_seq()
    fresh = false;
    fresh_at = kAnySeq;
  }
  next_seq = end_seq;
  if (kind == FrameKind::kData) {
    ++counters.records_appended;
    counters.bytes_appended += payload.size();
  } else if (batch) {
    counters.records_appended += batch->records;
    counters.bytes_appended += batch->data_bytes;
  } else if (type == kLostSkipped) {
    counters.skipped_marked += end_seq - seq;
  } else {
    counters.lost_marked += end_seq - seq;
  }
  if (opts.durability == Durability::kSync) {
    durable.store(next_seq, std::memory_order_release);  // pairs with durable_seq()
    ++counters.flushes;
  }
  if (first_pending_ns == 0) first_pending_ns = now_ns ? now_ns : 1;
  if (now_ns >= first_pending_ns &&
      now_ns - first_pending_ns >= static_cast<uint64_t>(opts.flush_interval.count())) {
    // The record is stored unless the flush's sync failed and sent the store back to its
    // last synced record, this one with the rest: then the caller writes it again.  Any
    // other failure is kept for flush()/stats().
    if (auto r = flush(); !r) {
      counters.last_error = r.error().message;
      if (next_seq <= seq) return r;
    }
  }
  return {};
}

Result<void> SegmentStore::Impl::create_segment(uint64_t first_seq, uint64_t min_size) {
  const std::string name = segment_file_name(first_seq);
  const uint64_t created_ns = now();
  std::byte head[kSegmentHeaderSize];
  encode_new_segment_header(first_seq, created_ns, ns, stream, head);
  auto s = opts.kind == StoreKind::kPmem
               ? open_pmem_sink(dir.get(), name, true, 0, std::max(opts.segment_bytes, min_size),
                                opts.write_buffer)
               : open_file_sink(dir.get(), name, true, 0, opts.write_buffer);
  if (!s) return s.error();
  const Bytes parts[] = {Bytes(head, sizeof head)};
  auto idx = open_at(dir.get(), index_file_name(first_seq), OpenMode::kCreateTruncate);
  Result<void> r = idx ? s.value()->append(parts) : Result<void>(idx.error());
  if (!r) {
    s.value().reset();
    (void)remove_file(dir.get(), name, false);
    (void)remove_file(dir.get(), index_file_name(first_seq), false);
    return r;
  }
  sink = std::move(s.value());
  granularity = sink->granularity();
  idx_fd = std::move(idx.value());
  idx_written = 0;
  idx_pending.assign(kIndexHeaderSize, std::byte{0});
  encode_index_header(IndexHeader{opts.index_interval, first_seq, created_ns},
                      idx_pending.data());
  builder = IndexBuilder(opts.index_interval);
  active = SegmentInfo{first_seq, first_seq, 0, 0, 0, 0};
  active_created_ns = created_ns;
  active_version = kFormatVersion;  // (encode_new_segment_header writes it)
  dir_dirty = true;
  // The coarse clock's, as append_frame() compares it with (the precise one runs ahead).
  if (first_pending_ns == 0) {
    const uint64_t now_ns = now_coarse();
    first_pending_ns = now_ns ? now_ns : 1;
  }
  return {};
}

Result<void> SegmentStore::Impl::roll() {
  if (auto r = flush(); !r) return r;
  if (auto r = sink->seal(); !r) return rewind(r.error());  // its bytes are in doubt
  // The seal entry lets readers and the next open skip a scan; if it cannot be
  // written the index is simply rebuilt from the segment later.
  std::byte e[kIndexEntrySize];
  encode_index_entry(builder.seal_entry(), e);
  if (auto r = pwrite_all(idx_fd.get(), e, idx_written, index_file_name(active.first_seq)); r) {
    idx_written += kIndexEntrySize;
    (void)detail::sync_data(idx_fd.get(), "index");
  }
  active.bytes = sink->bytes_on_disk() + idx_written;
  sealed.push_back(active);
  sink.reset();
  idx_fd.reset();
  active = SegmentInfo{};
  return {};
}

Result<void> SegmentStore::Impl::discard_empty_active() {
  if (auto r = settle(); !r) return r;
  const uint64_t first = active.first_seq;
  sink.reset();
  idx_fd.reset();
  idx_pending.clear();
  if (auto r = remove_file(dir.get(), segment_file_name(first), false); !r) return r;
  return remove_file(dir.get(), index_file_name(first), false);
}

// ---- durability ---------------------------------------------------------------------

Result<void> SegmentStore::Impl::sync_data() {
  if (auto r = sink->sync(); !r) return r;
  if (dir_dirty) {
    if (auto r = detail::sync_all(dir.get(), "directory " + where); !r) return r;
    dir_dirty = false;
  }
  return {};
}

// Writes the pending index entries, at most the first `limit` bytes of them (those of
// frames already synced: readers trust an indexed frame).
Result<void> SegmentStore::Impl::write_pending_index(size_t limit) {
  limit = std::min(limit, idx_pending.size());
  if (limit == 0 || !idx_fd.valid()) return {};
  size_t written = 0;
  auto r = pwrite_all(idx_fd.get(), Bytes(idx_pending.data(), limit), idx_written,
                      index_file_name(active.first_seq), &written);
  idx_written += written;
  idx_pending.erase(idx_pending.begin(), idx_pending.begin() + static_cast<ptrdiff_t>(written));
  return r;
}

Error SegmentStore::Impl::rewind(Error e) {
  flushing = false;  // a sync that ran covered nothing the store still counts on
  ++counters.io_errors;
  log_error(where + ": " + e.message);
  if (!sink) return e;
  const uint64_t first = active.first_seq;
  const uint64_t keep = sink->synced_end();
  sink.reset();
  idx_fd.reset();
  idx_pending.clear();
  if (auto r = cut_back(first, keep); !r) {
    broken = true;
    cut_first = first;
    cut_keep = keep;
    broken_why = "the store in " + where + " stopped after an I/O error (" + e.message +
                 ") and cannot go back to its last synced record yet (" + r.error().message +
                 "); every call tries again";
    log_error(broken_why);
    return make_error(e.code, broken_why);
  }
  durable.store(next_seq, std::memory_order_release);  // pairs with durable_seq()
  e.message += "; the store went back to sequence " + std::to_string(next_seq) +
               " (its last synced record) to write what follows again";
  log_error(where + ": went back to sequence " + std::to_string(next_seq) +
               " after a failed sync");
  return e;
}

Result<void> SegmentStore::Impl::cut_back(uint64_t first_seq, uint64_t keep) {
  const std::string name = segment_file_name(first_seq);
  sink.reset();
  idx_fd.reset();
  idx_pending.clear();
  if (keep < kSegmentHeaderSize) {
    // Not even the header of this segment was synced: it goes.
    if (auto r = remove_file(dir.get(), name, opts.secure_delete); !r) return r;
    if (auto r = remove_file(dir.get(), index_file_name(first_seq), false); !r) return r;
    if (auto r = detail::sync_all(dir.get(), "directory " + where); !r) return r;
    dir_dirty = false;
    active = SegmentInfo{};
    builder = IndexBuilder(opts.index_interval);
    if (sealed.empty()) {
      // Nothing left (retention may have deleted every sealed segment): the next record
      // starts a segment again, but the store stays where it was, at this segment's first
      // sequence (it said 0, and durable_seq() went back to 0, though records up to here
      // had been stored: found by a review).  The next append is at that sequence
      // (fresh_at).
      fresh = true;
      fresh_at = first_seq;
      next_seq = first_seq;
    } else {
      next_seq = sealed.back().end_seq;
    }
    return {};
  }
  {
    auto fd = open_at(dir.get(), name, OpenMode::kReadWrite);
    if (!fd) return fd.error();
    auto size = file_size(fd->get(), name);
    if (!size) return size.error();
    if (size.value() > keep) {
      if (opts.secure_delete) {
        if (auto r = overwrite_zeros(fd->get(), keep, size.value(), name); !r) return r;
      }
      if (auto r = truncate_to(fd->get(), keep, name); !r) return r;
    }
    if (auto r = detail::sync_data(fd->get(), name); !r) return r;
  }
  if (auto r = recover_active(first_seq); !r) return r;
  if (auto r = detail::sync_all(dir.get(), "directory " + where); !r) return r;
  dir_dirty = false;
  return {};
}

Result<void> SegmentStore::Impl::flush(bool index_optional) {
  if (auto r = settle(); !r) return r;
  if (sink) {
    if (auto r = sync_data(); !r) return sink && sink->sync_failed() ? rewind(r.error()) : r;
    if (durable.load(std::memory_order_relaxed) != next_seq) {  // relaxed: only we store it
      durable.store(next_seq, std::memory_order_release);     // pairs with durable_seq()
      ++counters.flushes;
    }
    if (auto r = write_pending_index(); !r) {
      if (!index_optional) return r;
      log_warn(where + ": " + r.error().message + ": the index is rebuilt at the next open");
    }
  }
  first_pending_ns = 0;
  counters.last_error.clear();
  return {};
}

// Starts the sync of everything appended so far on the worker thread; the writer
// appends on.  The directory (a new segment's entry) is synced here, before, as flush()
// does.  The sync counts (durable, index entries) only in flush_finish().
Result<void> SegmentStore::Impl::flush_start() {
  if (flushing || !sink) return {};  // one at a time; no sink: everything is durable
  if (dir_dirty) {
    if (auto r = detail::sync_all(dir.get(), "directory " + where); !r) return r;
    dir_dirty = false;
  }
  if (auto r = sink->sync_start(&syncer); !r) return r;
  flushing = true;
  flush_target = next_seq;
  flush_index_bytes = idx_pending.size();
  return {};
}

Result<bool> SegmentStore::Impl::flush_finish(std::chrono::nanoseconds wait) {
  if (!flushing) return true;
  auto r = sink->sync_finish(wait);
  if (!r) return false;
  flushing = false;
  if (!*r) return sink->sync_failed() ? rewind(r->error()) : r->error();
  // The records below flush_target were all in the file when its fdatasync (or the
  // pmem persist) started, and it returned success: durable now.
  if (durable.load(std::memory_order_relaxed) < flush_target) {  // relaxed: only we store it
    durable.store(flush_target, std::memory_order_release);      // pairs with durable_seq()
    ++counters.flushes;
  }
  auto w = write_pending_index(flush_index_bytes);
  flush_index_bytes = 0;
  if (!w) return w.error();
  if (next_seq == flush_target) first_pending_ns = 0;
  counters.last_error.clear();
  return true;
}

Result<void> SegmentStore::Impl::settle() {
  while (flushing) {
    auto r = flush_finish(std::chrono::seconds(1));
    if (!r) return r.error();
  }
  return {};
}

Result<void> SegmentStore::flush_start() {
  if (!impl_) return make_error(Errc::kClosed, "store is closed");
  if (auto u = impl_->usable(); !u) return u;
  auto r = impl_->flush_start();
  if (!r) impl_->counters.last_error = r.error().message;
  return r;
}

Result<bool> SegmentStore::flush_finish(std::chrono::nanoseconds wait) {
  if (!impl_) return make_error(Errc::kClosed, "store is closed");
  auto r = impl_->flush_finish(wait);
  if (!r) impl_->counters.last_error = r.error().message;
  return r;
}

bool SegmentStore::flush_running() const noexcept { return impl_ && impl_->flushing; }

Result<void> SegmentStore::flush() {
  if (!impl_) return make_error(Errc::kClosed, "store is closed");
  if (auto u = impl_->usable(); !u) return u;
  auto r = impl_->flush();
  if (!r) impl_->counters.last_error = r.error().message;
  return r;
}

Result<void> SegmentStore::tick() {
  if (!impl_) return make_error(Errc::kClosed, "store is closed");
  if (auto u = impl_->usable(); !u) return u;
  Impl& s = *impl_;
  if (s.first_pending_ns == 0) return {};
  const uint64_t now = s.now();
  if (now < s.first_pending_ns ||
      now - s.first_pending_ns < static_cast<uint64_t>(s.opts.flush_interval.count()))
    return {};
  return flush();
}

uint64_t SegmentStore::next_seq() const noexcept { return impl_ ? impl_->next_seq : 0; }
bool SegmentStore::takes_any_sequence() const noexcept {
  return impl_ && impl_->fresh && impl_->fresh_at == Impl::kAnySeq;
}

uint64_t SegmentStore::durable_seq() const noexcept {
  return impl_ ? impl_->durable.load(std::memory_order_acquire) : 0;  // pairs with the writer
}

StoreStats SegmentStore::stats() const {
  StoreStats st;
  if (!impl_) return st;
  const Impl& s = *impl_;
  st = s.counters;
  st.kind = s.opts.kind;
  st.granularity = s.granularity;
  st.bytes_on_disk = s.total_bytes();
  st.segments = s.sealed.size() + (s.sink ? 1 : 0);
  uint64_t first = s.next_seq;
  if (!s.sealed.empty()) first = s.sealed.front().first_seq;
  else if (s.sink) first = s.active.first_seq;
  st.end_seq = s.next_seq;
  st.oldest_seq = std::min(std::max(first, s.wm.deleted_below), st.end_seq);
  st.newest_seq = st.end_seq > st.oldest_seq ? st.end_seq - 1 : 0;
  st.durable_seq = s.durable.load(std::memory_order_relaxed);  // relaxed: writer thread
  st.deleted_below = s.wm.deleted_below;
  return st;
}

}  // namespace shmbus::persist
