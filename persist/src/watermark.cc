// watermark.cc: the "deleted below" file (see watermark.h and FORMAT.md).
#include "watermark.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "coding.h"
#include "crc32c.h"
#include "fs.h"

namespace shmbus::persist::detail {

Result<Watermark> read_watermark(int dir) {
  auto fd = open_at(dir, kWatermarkName, OpenMode::kRead);
  if (!fd) {
    if (fd.error().code == Errc::kNotFound) return Watermark{};
    return fd.error();
  }
  std::byte buf[kWatermarkSize];
  auto got = pread_some(fd->get(), buf, 0, kWatermarkName);
  if (!got) return got.error();
  if (got.value() != kWatermarkSize || std::memcmp(buf, kWatermarkMagic, 8) != 0 ||
      get_u16(buf + 8) != 1 || get_u16(buf + 10) != kWatermarkSize ||
      crc32c(buf, 32) != get_u32(buf + 32))
    return make_error(Errc::kCorrupt,
                      "the 'watermark' file is damaged; run fsck --repair to rebuild it");
  return Watermark{get_u64(buf + 16), get_u64(buf + 24)};
}

Result<void> write_watermark(int dir, const Watermark& w) {
  std::byte buf[kWatermarkSize] = {};
  std::memcpy(buf, kWatermarkMagic, 8);
  put_u16(buf + 8, 1);
  put_u16(buf + 10, kWatermarkSize);
  put_u64(buf + 16, w.deleted_below);
  put_u64(buf + 24, w.set_ns);
  put_u32(buf + 32, crc32c(buf, 32));
  {
    auto fd = open_at(dir, kWatermarkTmpName, OpenMode::kCreateTruncate);
    if (!fd) return fd.error();
    if (auto r = pwrite_all(fd->get(), buf, 0, kWatermarkTmpName); !r) {
      (void)remove_file(dir, kWatermarkTmpName, false);
      return r;
    }
    if (auto r = sync_data(fd->get(), kWatermarkTmpName); !r) return r;
  }
  if (auto r = rename_file(dir, kWatermarkTmpName, kWatermarkName); !r) return r;
  return sync_all(dir, "stream directory");
}

}  // namespace shmbus::persist::detail
