// fuzz_persist_segment: a segment file (persist/FORMAT.md) of arbitrary bytes.
//
// The bytes go through every reader of segment files: decode_segment_header() and
// decode_frame() on the buffer (frame after frame, as recovery walks them), and a full
// scan_segment() through SegmentFile's pread window over a memfd holding the same bytes.
// Beyond "no crash, no read outside the bytes" (ASan): a scan never claims more than the
// file holds, its frames are consecutive and at least a frame header each, and the index
// entries it builds go forwards.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "format.h"
#include "fs.h"
#include "scan.h"

namespace {

using namespace shmbus::persist::detail;

[[noreturn]] void broken(const char* why) {
  std::fprintf(stderr, "fuzz_persist_segment: %s\n", why);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Bytes in(reinterpret_cast<const std::byte*>(data), size);

  // In memory, as the decoders see a window.
  auto hdr = decode_segment_header(in, "fuzz.seg");
  (void)header_not_written(in.first(std::min<size_t>(size, kSegmentHeaderSize)));
  uint64_t off = kSegmentHeaderSize;
  uint64_t frames = 0;
  while (off < size) {
    FrameView fv;
    const FrameStatus st = decode_frame(in.subspan(off), &fv);
    (void)frame_status_name(st);
    if (st != FrameStatus::kOk) break;
    if (fv.size < kFrameHeaderSize || fv.size > size - off) broken("decode_frame: frame past the bytes");
    if (fv.end_seq <= fv.h.seq) broken("decode_frame: empty sequence range");
    if (fv.payload.data() < in.data() || fv.payload.data() + fv.payload.size() > in.data() + size)
      broken("decode_frame: payload outside the bytes");
    off += fv.size;
    if (++frames > size / kFrameHeaderSize) broken("decode_frame: more frames than bytes allow");
  }

  // Through the file reader, as recovery, fsck and index rebuilds do.
  const int fd = memfd_create("fuzz.seg", MFD_CLOEXEC);
  if (fd < 0) return 0;
  if (size && write(fd, data, size) != static_cast<ssize_t>(size)) {
    close(fd);
    return 0;
  }
  SegmentFile f(UniqueFd(fd), segment_file_name(hdr ? hdr->first_seq : 0), size);
  auto r = scan_segment(f, hdr ? hdr->first_seq : 0, /*index_interval=*/256);
  if (r) {
    if (r->valid_end > size || r->valid_end < kSegmentHeaderSize) broken("scan: valid_end outside the file");
    if (r->tail_nonzero_end < r->valid_end || r->tail_nonzero_end > size)
      broken("scan: tail_nonzero_end outside [valid_end, size]");
    if (r->frames * kFrameHeaderSize > size - kSegmentHeaderSize) broken("scan: too many frames");
    if (r->end_seq < r->header.first_seq) broken("scan: end_seq before first_seq");
    for (size_t i = 1; i < r->entries.size(); ++i)
      if (r->entries[i].offset <= r->entries[i - 1].offset || r->entries[i].seq < r->entries[i - 1].end_seq)
        broken("scan: index entries go backwards");
  }
  (void)f.zero_from(kSegmentHeaderSize);
  (void)f.nonzero_end(0);
  return 0;
}
