// watermark.cc: the "deleted below" file (see watermark.h and FORMAT.md).
#include "watermark.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "coding.h"
#include "crc32c.h"
#include "fs.h"

namespace shmbus::persist::detail {
namespace {

struct Slot {
  bool valid = false;
  bool empty = false;  // all zeros: never written
  uint64_t generation = 0;
  Watermark w;
};

Slot decode_slot(const std::byte* p) {
  Slot s;
  s.empty = std::all_of(p, p + kWatermarkSlotSize, [](std::byte b) { return b == std::byte{0}; });
  if (std::memcmp(p, kWatermarkMagic, 8) != 0 || get_u16(p + 8) != 2 ||
      get_u16(p + 10) != kWatermarkSlotSize || get_u32(p + 12) != 0 ||
      crc32c(p, kWatermarkSlotSize - 4) != get_u32(p + kWatermarkSlotSize - 4))
    return s;
  s.generation = get_u64(p + 16);
  s.w = Watermark{get_u64(p + 24), get_u64(p + 32)};
  s.valid = s.generation > 0;
  return s;
}

void encode_slot(uint64_t generation, const Watermark& w, std::byte* p) {
  std::memset(p, 0, kWatermarkSlotSize);
  std::memcpy(p, kWatermarkMagic, 8);
  put_u16(p + 8, 2);
  put_u16(p + 10, kWatermarkSlotSize);
  put_u64(p + 16, generation);
  put_u64(p + 24, w.deleted_below);
  put_u64(p + 32, w.set_ns);
  put_u32(p + kWatermarkSlotSize - 4, crc32c(p, kWatermarkSlotSize - 4));
}

const Error kDamaged{Errc::kCorrupt, "the 'watermark' file is damaged; run fsck --repair to rebuild it"};

// Reads a version 2 file: the slots (both decoded, either may be invalid).
Result<bool> read_slots(int fd, Slot out[2]) {
  std::byte buf[kWatermarkFileSize];
  auto got = pread_some(fd, buf, 0, kWatermarkName);
  if (!got) return got.error();
  if (got.value() != kWatermarkFileSize) return false;
  for (int i = 0; i < 2; ++i) out[i] = decode_slot(buf + kWatermarkSlotOffset[i]);
  return true;
}

int newest(const Slot s[2]) {
  if (s[0].valid && (!s[1].valid || s[0].generation >= s[1].generation)) return 0;
  return s[1].valid ? 1 : -1;
}

// A new version 2 file holding `w` in slot 0 (slot 1 empty), atomically replacing the
// old one.  Needs space for a new file.
Result<void> replace_watermark_file(int dir, const Watermark& w) {
  std::byte buf[kWatermarkFileSize] = {};
  encode_slot(1, w, buf + kWatermarkSlotOffset[0]);
  return replace_file(dir, kWatermarkName, kWatermarkTmpName, buf);
}

}  // namespace

Result<Watermark> read_watermark(int dir, uint16_t* version, bool* slot_damaged) {
  if (version) *version = 0;
  if (slot_damaged) *slot_damaged = false;
  auto fd = open_at(dir, kWatermarkName, OpenMode::kRead);
  if (!fd) {
    if (fd.error().code == Errc::kNotFound) return Watermark{};
    return fd.error();
  }
  auto size = file_size(fd->get(), kWatermarkName);
  if (!size) return size.error();
  if (size.value() == kWatermarkFileSize) {
    Slot s[2];
    auto ok = read_slots(fd->get(), s);
    if (!ok) return ok.error();
    const int i = ok.value() ? newest(s) : -1;
    if (i < 0) return kDamaged;
    if (version) *version = 2;
    // A new file holds generation 1 in slot 0 and zeros in slot 1; every update writes
    // the other slot (odd generations in slot 0, even in 1).  So an empty (zeroed) slot
    // is "never written" only beside slot 0 at generation 1: anywhere else it is damage
    // too (a zeroed sector: a review).
    const bool never_written = s[1 - i].empty && i == 0 && s[0].generation == 1;
    if (slot_damaged) *slot_damaged = !s[1 - i].valid && !never_written;
    return s[i].w;
  }
  // Version 1: one 40-byte record.
  std::byte buf[kWatermarkSize];
  auto got = pread_some(fd->get(), buf, 0, kWatermarkName);
  if (!got) return got.error();
  if (size.value() != kWatermarkSize || got.value() != kWatermarkSize ||
      std::memcmp(buf, kWatermarkMagic, 8) != 0)
    return kDamaged;
  // A version 2 file cut to version 1's size is damage, not another version.
  if (get_u16(buf + 8) == 2) return kDamaged;
  if (get_u16(buf + 8) != 1)
    return make_error(Errc::kIncompatible, "the 'watermark' file has format version " +
                                               std::to_string(get_u16(buf + 8)) +
                                               "; this build reads versions 1 and 2");
  if (get_u16(buf + 10) != kWatermarkSize || crc32c(buf, 32) != get_u32(buf + 32)) return kDamaged;
  if (version) *version = 1;
  return Watermark{get_u64(buf + 16), get_u64(buf + 24)};
}

Result<void> write_watermark(int dir, const Watermark& w) {
  {
    auto fd = open_at(dir, kWatermarkName, OpenMode::kReadWrite);
    if (fd) {
      auto size = file_size(fd->get(), kWatermarkName);
      if (!size) return size.error();
      Slot s[2];
      if (size.value() == kWatermarkFileSize) {
        auto ok = read_slots(fd->get(), s);
        if (!ok) return ok.error();
        const int cur = ok.value() ? newest(s) : -1;
        if (cur >= 0) {
          // In place, into the slot not holding the current value: a torn write there
          // leaves the current one readable.  No new space is needed.
          const int other = 1 - cur;
          std::byte slot[kWatermarkSlotSize];
          encode_slot(s[cur].generation + 1, w, slot);
          if (auto r = pwrite_all(fd->get(), slot, kWatermarkSlotOffset[other], kWatermarkName); !r)
            return r;
          return sync_data(fd->get(), kWatermarkName);
        }
      }
    } else if (fd.error().code != Errc::kNotFound) {
      return fd.error();
    }
  }
  return replace_watermark_file(dir, w);
}

Result<void> ensure_watermark_file(int dir, const Watermark& w) {
  uint16_t version = 0;
  auto cur = read_watermark(dir, &version);
  if (!cur) return cur.error();
  if (version == 2) return {};
  return replace_watermark_file(dir, w);
}

}  // namespace shmbus::persist::detail
