// watermark.cc: the "deleted below" file (see watermark.h and FORMAT.md).
#include "watermark.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coding.h"
#include "crc32c.h"
#include "format.h"
#include "fs.h"

namespace shmbus::persist::detail {
namespace {

struct Slot {
  bool valid = false;
  bool empty = false;  // all zeros: never written
  bool paired = false;  // byte 40 = 1: written with slot 1 beside it (see replace_watermark_file)
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
  s.valid = true;  // generation 0: a new file's slot 1, holding the file's first value
  s.paired = p[40] == std::byte{1};
  return s;
}

void encode_slot(uint64_t generation, const Watermark& w, std::byte* p, bool paired = false) {
  std::memset(p, 0, kWatermarkSlotSize);
  if (paired) p[40] = std::byte{1};
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

// A new version 2 file holding `w` in slot 0 (generation 1) and in slot 1 (generation 0),
// atomically replacing the old one.  Needs space for a new file.  Slot 1 is written too
// so that a zeroed slot is always damage: an empty slot 1 beside generation 1 also looks
// like the store's first update zeroed (review 4).
Result<void> replace_watermark_file(int dir, const Watermark& w) {
  std::byte buf[kWatermarkFileSize] = {};
  encode_slot(1, w, buf + kWatermarkSlotOffset[0], /*paired=*/true);
  encode_slot(0, w, buf + kWatermarkSlotOffset[1]);
  return replace_file(dir, kWatermarkName, kWatermarkTmpName, buf);
}

// A file an earlier build made: generation 1 in slot 0, not marked paired, and slot 1
// still zeros.  (Marked, the same bytes are slot 1 zeroed after the first update.)
bool made_by_an_earlier_build(const Slot s[2]) {
  return s[0].valid && s[0].generation == 1 && !s[0].paired && s[1].empty;
}

}  // namespace

Result<Watermark> read_watermark(int dir, uint16_t* version, int* damaged_slot) {
  if (version) *version = 0;
  if (damaged_slot) *damaged_slot = -1;
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
    // Both slots are written from the start (replace_watermark_file()), so a slot that
    // is not valid, zeros included (a zeroed sector: review 3), is damage; but for the
    // files earlier builds made (slot 1 zeros beside generation 1), which the writer's
    // next open completes (ensure_watermark_file()).
    if (damaged_slot && !s[1 - i].valid && !made_by_an_earlier_build(s)) *damaged_slot = 1 - i;
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
  if (version != 2) return replace_watermark_file(dir, w);
  // An earlier build's file: slot 1 gets generation 0 with the value (in place, no new
  // space), so that from now on a zeroed slot reads as damage.
  auto fd = open_at(dir, kWatermarkName, OpenMode::kReadWrite);
  if (!fd) return fd.error();
  Slot s[2];
  auto ok = read_slots(fd->get(), s);
  if (!ok) return ok.error();
  if (!ok.value() || !made_by_an_earlier_build(s)) return {};
  // Slot 1 first (the same value, generation 0), synced, then slot 0 marked paired: a
  // write torn in either leaves the other holding the value.
  std::byte slot[kWatermarkSlotSize];
  encode_slot(0, s[0].w, slot);
  if (auto r = pwrite_all(fd->get(), slot, kWatermarkSlotOffset[1], kWatermarkName); !r) return r;
  if (auto r = sync_data(fd->get(), kWatermarkName); !r) return r;
  encode_slot(1, s[0].w, slot, /*paired=*/true);
  if (auto r = pwrite_all(fd->get(), slot, kWatermarkSlotOffset[0], kWatermarkName); !r) return r;
  return sync_data(fd->get(), kWatermarkName);
}

Result<void> write_delete_request(int dir, uint64_t seq) {
  auto fd = open_at(dir, delete_request_file_name(seq), OpenMode::kCreateExclusive);
  if (!fd && fd.error().code != Errc::kExists) return fd.error();
  return {};
}

Result<uint64_t> highest_delete_request(int dir) {
  auto names = list_dir(dir);
  if (!names) return names.error();
  uint64_t best = 0;
  for (const auto& n : names.value()) {
    uint64_t seq;
    if (!parse_numbered_name(n, kDeleteRequestSuffix, &seq) || seq <= best) continue;
    // Only the folder's owner can make one (the store's folder is no one else's to write),
    // but a file of another user or not a file is never taken as a request.
    struct stat st;
    if (::fstatat(dir, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
        st.st_uid == ::geteuid())
      best = seq;
  }
  return best;
}

void remove_delete_requests(int dir, uint64_t upto) {
  auto names = list_dir(dir);
  if (!names) return;
  for (const auto& n : names.value()) {
    uint64_t seq;
    if (parse_numbered_name(n, kDeleteRequestSuffix, &seq) && seq <= upto)
      (void)remove_file(dir, n, /*secure=*/false);
  }
}

}  // namespace shmbus::persist::detail
