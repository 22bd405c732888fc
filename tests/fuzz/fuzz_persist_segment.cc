// fuzz_persist_segment: a segment file (persist/FORMAT.md) of arbitrary bytes.
//
// The bytes go through every reader of segment files: decode_segment_header() and
// decode_frame() on the buffer (frame after frame, as recovery walks them), and a full
// scan_segment() through SegmentFile's pread window over a memfd holding the same bytes.
// Beyond "no crash, no read outside the bytes" (ASan): a scan never claims more than the
// file holds, its frames are consecutive and at least a frame header each, and the index
// entries it builds go forwards.  Then the bytes as the only segment of a stream's store,
// read through SegmentReader as `tail` and replay read a store (its damage handling: the
// repairs, the step over a damaged frame): its entries go forwards, no record is larger
// than the file, and it comes to an end.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "format.h"
#include "fs.h"
#include "scan.h"
#include "shmbus/names.h"
#include "shmbus/persist/reader.h"

namespace {

using namespace shmbus::persist::detail;

[[noreturn]] void broken(const char* why) {
  std::fprintf(stderr, "fuzz_persist_segment: %s\n", why);
  std::abort();
}

// A store root of this process, removed at exit (never freed: the exit handler reads it
// after the statics are gone).
const std::string* g_root = nullptr;
const std::string& work_root() {
  if (!g_root) {
    std::string tmpl = (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
    tmpl += "/shmbus-fuzz-segment-XXXXXX";
    if (!mkdtemp(tmpl.data())) std::abort();
    g_root = new std::string(tmpl);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(*g_root, ec);
    });
  }
  return *g_root;
}

// The bytes as the one segment of NS/STREAM (named after the header, when it names a
// valid stream and first sequence, so that the reader gets past the header's checks),
// read from the earliest entry to the end.
void read_as_store(const uint8_t* data, size_t size, const SegmentHeader* hdr) {
  const bool named = hdr && shmbus::validate_name("namespace", hdr->ns) &&
                     shmbus::validate_name("stream", hdr->stream);
  const std::string ns = named ? hdr->ns : "ns", stream = named ? hdr->stream : "st";
  const std::string dir = work_root() + "/" + ns + "/" + stream;
  std::error_code ec;
  for (const auto& old : std::filesystem::directory_iterator(work_root(), ec))
    std::filesystem::remove_all(old.path(), ec);  // the last input's namespace, whatever it was
  std::filesystem::create_directories(dir);
  ::chmod((work_root() + "/" + ns).c_str(), 0700);
  ::chmod(dir.c_str(), 0700);
  const std::string seg = dir + "/" + segment_file_name(hdr ? hdr->first_seq : 0);
  const int fd = ::open(seg.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) std::abort();
  if (size && write(fd, data, size) != static_cast<ssize_t>(size)) std::abort();
  close(fd);
  auto r = shmbus::persist::SegmentReader::open(work_root(), ns, stream);
  if (!r) return;
  uint64_t last_end = 0;
  // Every entry covers a sequence at least, every record a frame of the file: more
  // entries than the file has bytes means the reader does not come to an end.
  for (uint64_t n = 0;; ++n) {
    if (n > size + 16) broken("reader: more entries than the file can hold");
    auto e = r->next();
    if (!e || e->kind == shmbus::persist::EntryKind::kEnd) break;
    if (e->end_seq <= e->seq) broken("reader: an entry of no sequence");
    if (n > 0 && e->seq < last_end) broken("reader: an entry went back in sequence");
    last_end = e->end_seq;
    if (e->kind == shmbus::persist::EntryKind::kRecord && e->data.size() > size)
      broken("reader: a record larger than the file");
  }
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
  read_as_store(data, size, hdr ? &hdr.value() : nullptr);
  return 0;
}
