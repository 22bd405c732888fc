// fuzz_persist_index: a segment's index file (NAME.idx) and a stream's `watermark` file
// (persist/FORMAT.md) of arbitrary bytes.
//
// The input is written as both files in a directory of this process, then read back
// with read_index() and read_watermark().  Beyond "no crash": the entries read_index()
// keeps are a valid prefix (each re-encodes to exactly the bytes it came from, offsets
// go forwards, nothing follows a seal), and the index lookups return entries that keep
// their contracts.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "coding.h"
#include "format.h"
#include "index.h"
#include "watermark.h"

namespace {

using namespace shmbus::persist::detail;

[[noreturn]] void broken(const char* why) {
  std::fprintf(stderr, "fuzz_persist_index: %s\n", why);
  std::abort();
}

// A directory of this process, removed at exit.
int work_dir() {
  static std::string path;
  static int fd = [] {
    std::string tmpl = (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
    tmpl += "/shmbus-fuzz-index-XXXXXX";
    if (!mkdtemp(tmpl.data())) std::abort();
    path = tmpl;
    std::atexit([] { std::filesystem::remove_all(path); });
    return open(path.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  }();
  return fd;
}

// A new file each time: truncating one makes ext4 flush it on close (auto_da_alloc).
void write_file(int dir, const std::string& name, const uint8_t* data, size_t size) {
  unlinkat(dir, name.c_str(), 0);
  const int fd = openat(dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) std::abort();
  if (size && write(fd, data, size) != static_cast<ssize_t>(size)) std::abort();
  close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int dir = work_dir();
  // The index must carry its segment's first sequence (offset 16) to be read at all.
  uint64_t first_seq = 0;
  if (size >= 24) first_seq = get_u64(reinterpret_cast<const std::byte*>(data) + 16);
  const std::string idx = index_file_name(first_seq);
  write_file(dir, idx, data, size);
  // The segment it belongs to: as large as a 1 MiB segment (bounds what is read).
  if (auto r = read_index(dir, first_seq, uint64_t{1} << 20)) {
    const IndexFile& f = r.value();
    if (f.valid_bytes != kIndexHeaderSize + f.entries.size() * kIndexEntrySize || f.valid_bytes > size ||
        f.file_size != size)
      broken("read_index: sizes do not add up");
    std::byte enc[kIndexEntrySize];
    for (size_t i = 0; i < f.entries.size(); ++i) {
      const IndexEntry& e = f.entries[i];
      encode_index_entry(e, enc);
      if (std::memcmp(enc, data + kIndexHeaderSize + i * kIndexEntrySize, kIndexEntrySize) != 0)
        broken("read_index: an entry does not re-encode to its bytes");
      if (e.end_seq <= e.seq || e.offset < kSegmentHeaderSize) broken("read_index: kept an impossible entry");
      if (i > 0 && (e.offset < f.entries[i - 1].offset ||
                    (e.offset == f.entries[i - 1].offset && (e.flags & kEntrySeal) == 0)))
        broken("read_index: offsets go backwards");
      if (i + 1 < f.entries.size() && (e.flags & kEntrySeal)) broken("read_index: entry after a seal");
    }
    // Lookups with targets taken from the bytes.
    const uint64_t target = size >= 8 ? get_u64(reinterpret_cast<const std::byte*>(data + size - 8)) : 0;
    if (const IndexEntry* e = floor_by_seq(f.entries, target); e && e->seq > target)
      broken("floor_by_seq: entry above the target");
    if (const IndexEntry* e = last_older_than(f.entries, target); e && e->max_ts >= target)
      broken("last_older_than: entry not older than the target");
  }
  unlinkat(dir, idx.c_str(), 0);

  write_file(dir, kWatermarkName, data, size);
  if (auto w = read_watermark(dir); w && size < kWatermarkSize)
    broken("read_watermark: accepted a file shorter than a watermark");
  unlinkat(dir, kWatermarkName, 0);
  return 0;
}
