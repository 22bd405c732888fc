// marker.cc: segments that hold only a lost-range marker (see marker.h).
#include "marker.h"

#include <cstring>
#include <string>

#include "coding.h"
#include "format.h"
#include "fs.h"
#include "index.h"
#include "scan.h"
#include "shmbus/names.h"
#include "shmbus/persist/store.h"

namespace shmbus::persist::detail {
namespace {

constexpr uint32_t kDefaultInterval = StoreOptions{}.index_interval;
constexpr uint64_t kMarkerFrameSize = frame_size(kLostPayloadSize);

}  // namespace

void encode_lost_marker(uint64_t from, uint64_t to, uint32_t reason, uint64_t ts_ns, std::byte* frame) {
  std::memset(frame, 0, kMarkerFrameSize);
  put_u64(frame + kFrameHeaderSize, to);
  FrameHeader h;
  h.length = kLostPayloadSize;
  h.kind = FrameKind::kLost;
  h.seq = from;
  h.ts_ns = ts_ns;
  h.type = reason;
  encode_frame_header(h, Bytes(frame + kFrameHeaderSize, kLostPayloadSize), frame);
}

Result<void> prepare_marker_segment(int dir, uint64_t first, uint64_t known, uint64_t to, uint32_t reason,
                                    uint64_t ts_ns, std::string_view ns, std::string_view stream) {
  const std::string tmp = segment_tmp_file_name(first);
  if (auto r = remove_file(dir, tmp, false); !r && r.error().code != Errc::kNotFound) return r;
  auto fd = open_at(dir, tmp, OpenMode::kCreateExclusive);
  if (!fd) return fd.error();
  std::byte bytes[kSegmentHeaderSize + 2 * kMarkerFrameSize] = {};
  encode_new_segment_header(first, now_ns(), ns, stream, bytes);
  size_t n = kSegmentHeaderSize;
  const uint64_t k = reason == kLostEndUnknown && to - first >= 2 ? std::min(known, to - 1) : first;
  if (k > first) {
    encode_lost_marker(first, k, reason, ts_ns, bytes + n);
    n += kMarkerFrameSize;
  }
  encode_lost_marker(k, to, reason, ts_ns, bytes + n);
  n += kMarkerFrameSize;
  if (auto r = pwrite_all(fd->get(), Bytes(bytes, n), 0, tmp); !r) return r;
  return sync_all(fd->get(), tmp);
}

Result<void> install_marker_segment(int dir, uint64_t first) {
  return rename_file(dir, segment_tmp_file_name(first), segment_file_name(first));
}

Result<void> index_marker_segment(int dir, uint64_t first) {
  auto f = SegmentFile::open(dir, first);
  if (!f) return f.error();
  auto scan = scan_segment(f.value(), first, kDefaultInterval);
  if (!scan) return scan.error();
  std::vector<IndexEntry> entries = scan->entries;
  entries.push_back(scan->builder.seal_entry());
  return write_index(dir, IndexHeader{kDefaultInterval, first, scan->header.created_ns}, entries);
}

Result<std::optional<EndUnknown>> end_unknown_marker(int dir, uint64_t first, std::string_view ns,
                                                     std::string_view stream) {
  const std::optional<EndUnknown> none;
  auto f = SegmentFile::open(dir, first);
  if (!f) return f.error();
  const uint64_t size = f->size();
  if (size != kSegmentHeaderSize + kMarkerFrameSize && size != kSegmentHeaderSize + 2 * kMarkerFrameSize)
    return none;
  auto hdr = f->read_header();
  if (!hdr || hdr->first_seq != first || hdr->ns != ns || hdr->stream != stream) return none;
  EndUnknown out{first, first};
  for (uint64_t off = kSegmentHeaderSize; off < size; off += kMarkerFrameSize) {
    FrameView fv;
    auto st = f->read_frame(off, &fv);
    if (!st) return st.error();
    if (st.value() != FrameStatus::kOk || fv.h.kind != FrameKind::kLost || fv.h.type != kLostEndUnknown ||
        fv.h.seq != out.to)
      return none;
    if (off > kSegmentHeaderSize) out.known = fv.h.seq;
    out.to = fv.end_seq;
  }
  return std::optional<EndUnknown>(out);
}

}  // namespace shmbus::persist::detail
