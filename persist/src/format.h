// format.h: the segment file format, shared by the writer, the reader, recovery
// and fsck.  persist/FORMAT.md describes the same bytes for humans; the offsets
// below are the single source of truth and are asserted against each other.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "shmbus/persist.h"  // kStoreFrameHeaderBytes, kStoreFrameAlign
#include "shmbus/result.h"

namespace shmbus::persist::detail {

using Bytes = std::span<const std::byte>;

// ---- segment header (256 bytes at offset 0) --------------------------------------
inline constexpr char kSegmentMagic[8] = {'S', 'H', 'M', 'B', 'S', 'E', 'G', '\0'};
// Version 2 added batch frames (FrameKind::kBatch); a version 1 segment holds none, and
// this build reads both (kMinFormatVersion..kFormatVersion).  New segments are version 2;
// the writer puts batch frames only into a version 2 segment, so that a build that reads
// version 1 only never meets one inside a file it accepts.
inline constexpr uint16_t kFormatVersion = 2;
inline constexpr uint16_t kMinFormatVersion = 1;
inline constexpr uint32_t kSegmentHeaderSize = 256;
inline constexpr uint32_t kMaxNameLen = 100;

inline constexpr size_t kHdrMagic = 0;        // 8 bytes
inline constexpr size_t kHdrVersion = 8;      // u16
inline constexpr size_t kHdrSize = 10;        // u16
inline constexpr size_t kHdrFlags = 12;       // u32, 0 in version 1
inline constexpr size_t kHdrFirstSeq = 16;    // u64
inline constexpr size_t kHdrCreatedNs = 24;   // u64
inline constexpr size_t kHdrNsLen = 32;       // u8
inline constexpr size_t kHdrNs = 33;          // 100 bytes, zero padded
inline constexpr size_t kHdrStreamLen = 133;  // u8
inline constexpr size_t kHdrStream = 134;     // 100 bytes, zero padded
inline constexpr size_t kHdrReserved = 234;   // 18 zero bytes
inline constexpr size_t kHdrCrc = 252;        // u32 over bytes [0, 252)
static_assert(kHdrNs + kMaxNameLen == kHdrStreamLen);
static_assert(kHdrStream + kMaxNameLen == kHdrReserved);
static_assert(kHdrCrc + 4 == kSegmentHeaderSize);
static_assert(kSegmentHeaderSize % 8 == 0);

struct SegmentHeader {
  uint16_t version = kFormatVersion;
  uint32_t flags = 0;
  uint64_t first_seq = 0;
  uint64_t created_ns = 0;
  std::string ns;
  std::string stream;
};

void encode_segment_header(const SegmentHeader& h, std::byte* out /*kSegmentHeaderSize*/);
// The encoded header of a new segment of NS/STREAM whose first record is `first_seq`
// (the writer's and fsck's rebuild share it).
void encode_new_segment_header(uint64_t first_seq, uint64_t created_ns, std::string_view ns,
                               std::string_view stream, std::byte* out /*kSegmentHeaderSize*/);
// `in` is the start of the file (possibly shorter than a header).  `file` names the
// file in messages.  kTruncated, kIncompatible (magic, version, flags) or kCorrupt.
Result<SegmentHeader> decode_segment_header(Bytes in, std::string_view file);

// ---- record frames ---------------------------------------------------------------
inline constexpr uint32_t kFrameHeaderSize = 32;
// The public sizing constants (shmbus/persist.h) are this layout's.
static_assert(kFrameHeaderSize == kStoreFrameHeaderBytes);
inline constexpr uint32_t kMaxPayload = 1u << 30;  // 1 GiB

inline constexpr size_t kFrmLength = 0;    // u32 payload bytes
inline constexpr size_t kFrmKind = 4;      // u16 FrameKind
inline constexpr size_t kFrmReserved = 6;  // u16 zero
inline constexpr size_t kFrmSeq = 8;       // u64
inline constexpr size_t kFrmTs = 16;       // u64 ns since the epoch
inline constexpr size_t kFrmType = 24;     // u32 (user record type)
inline constexpr size_t kFrmCrc = 28;      // u32 over bytes [0, 28) then the payload
static_assert(kFrmCrc + 4 == kFrameHeaderSize);

enum class FrameKind : uint16_t {
  kData = 1,   // one record: `seq`, payload = the record's bytes
  kLost = 2,   // sequences [seq, to) were never persisted; payload = u64 `to`
  kBatch = 3,  // records [seq, seq + type) back to back (format version 2): the payload is
               // `type` sub-records, each a kSubHeaderSize sub-header then its bytes, zeros
               // up to a multiple of 8; `ts` is the first record's stamp
};
// A batch frame's sub-record header (offsets from its start).  The sequence is implied
// (the frame's seq plus the sub-record's index); the frame's CRC covers every byte.
inline constexpr size_t kSubLength = 0;  // u32 the record's bytes
inline constexpr size_t kSubType = 4;    // u32 (user record type)
inline constexpr size_t kSubTs = 8;      // u64 ns since the epoch
inline constexpr uint32_t kSubHeaderSize = 16;
static_assert(kSubTs + 8 == kSubHeaderSize && kSubHeaderSize % 8 == 0);
// Bytes a sub-record with `payload` bytes occupies in a batch frame.
constexpr uint64_t sub_record_size(uint64_t payload) noexcept {
  return (kSubHeaderSize + payload + 7) & ~uint64_t{7};
}
// What the writer gathers into one batch frame: records of at most kBatchRecordMax bytes
// (small ones, for which a frame header of their own is a large share: at 1 KiB a batch
// saved 1.5% of the bytes and replay read 8% slower in an A/B of shmbus-persist-bench),
// up to kBatchPayloadMax bytes of sub-records (a damaged byte costs at most that frame's
// records, as it costs one record of a data frame).  A reader accepts any batch frame
// that decodes, whatever its size.
inline constexpr uint32_t kBatchRecordMax = 256;
inline constexpr uint32_t kBatchPayloadMax = 4096;
static_assert(sub_record_size(kBatchRecordMax) <= kBatchPayloadMax);
// The public sizing constants (shmbus/persist/store.h) are these.
static_assert(kBatchRecordMax == kStoreBatchRecordMax && kBatchPayloadMax == kStoreBatchFrameBytes &&
              kSubHeaderSize == kStoreBatchSubHeaderBytes);
// The fewest bytes a frame can take per sequence number it covers, lost-range markers
// aside: a data frame 32, a batch frame of n records 32 + 16 n (> 16 n).  The bound of
// the damage search (find_next_frame).
inline constexpr uint64_t kMinFrameBytesPerSeq = kSubHeaderSize;
inline constexpr uint32_t kLostPayloadSize = 8;
// A lost-range marker's `type` field says why (format version 1 wrote 0 there and never
// read it, so a reader of any version accepts either): kLostRecords, records that were
// published but never stored; kLostSkipped, numbers under which nothing was published
// (claims aborted or abandoned in the ring): no record is missing; kLostEndUnknown, the
// marker fsck --repair puts in place of a last segment it moves aside, whose end it
// cannot read: up to a bound past anything the segment can have held (a persister whose
// ring is further withdraws it: recovery.cc).  Other values read as kLostRecords.
inline constexpr uint32_t kLostRecords = 0;
inline constexpr uint32_t kLostSkipped = 1;
inline constexpr uint32_t kLostEndUnknown = 2;

struct FrameHeader {
  uint32_t length = 0;
  FrameKind kind = FrameKind::kData;
  uint64_t seq = 0;
  uint64_t ts_ns = 0;
  uint32_t type = 0;
};

// Bytes a frame with `payload` bytes occupies: header + payload, padded to 8.
constexpr uint64_t frame_size(uint64_t payload) noexcept {
  return (kFrameHeaderSize + payload + 7) & ~uint64_t{7};
}
// ... and a frame is padded to kStoreFrameAlign (shmbus/persist.h), as the layout says.
static_assert(frame_size(0) == kStoreFrameHeaderBytes);
static_assert(frame_size(1) == kStoreFrameHeaderBytes + kStoreFrameAlign);
static_assert(frame_size(kStoreFrameAlign) == kStoreFrameHeaderBytes + kStoreFrameAlign);
static_assert(frame_size(kStoreFrameAlign + 1) == kStoreFrameHeaderBytes + 2 * kStoreFrameAlign);

// Writes the 32-byte frame header (with its CRC over header fields + payload).
void encode_frame_header(const FrameHeader& h, Bytes payload, std::byte* out /*32*/);

enum class FrameStatus : uint8_t {
  kOk,
  kEof,        // no bytes at all at this offset
  kZero,       // an all-zero frame header (or zero bytes up to the end): nothing written here
  kShort,      // the file ends inside the frame
  kBadLength,  // length larger than kMaxPayload
  kBadHeader,  // unknown kind, reserved bits set, impossible lost range
  kBadCrc,     // checksum mismatch
  kBadSeq,     // valid frame, but not the sequence the segment expects here
};
const char* frame_status_name(FrameStatus s) noexcept;

struct FrameView {
  FrameHeader h;
  Bytes payload;
  uint64_t end_seq = 0;  // one past the last sequence the frame covers
  uint64_t size = 0;     // frame_size(h.length)
  uint64_t records = 0;  // records it holds: 1 (data), 0 (lost range), h.type (batch)
  uint64_t max_ts = 0;   // the newest stamp among them (h.ts_ns but for a batch)
};

// One record of a batch frame, as next_sub_record() walks them.
struct SubRecord {
  uint32_t type = 0;
  uint64_t ts_ns = 0;
  Bytes data;
};
// The sub-record at *at in the payload of a batch frame that decode_frame() accepted
// (its layout is checked there), and *at moved past it.  Never reads outside `payload`:
// false at its end or at bytes that do not hold a sub-record.
bool next_sub_record(Bytes payload, size_t* at, SubRecord* out) noexcept;
// Writes a sub-record (header, payload, zero padding) at `out`: sub_record_size() bytes.
void encode_sub_record(uint32_t type, uint64_t ts_ns, Bytes payload, std::byte* out) noexcept;

// Decodes the frame at the start of `avail` (all bytes up to the end of the file, or
// at least frame_size() of them).  Never reads outside `avail`.
FrameStatus decode_frame(Bytes avail, FrameView* out) noexcept;

// ---- file names ------------------------------------------------------------------
inline constexpr std::string_view kSegmentSuffix = ".seg";
inline constexpr std::string_view kIndexSuffix = ".idx";
std::string segment_file_name(uint64_t first_seq);  // 20 digits + ".seg"
std::string index_file_name(uint64_t first_seq);    // 20 digits + ".idx"
// An index being rewritten (write_index): 20 digits + ".idx.tmp", renamed over the
// index once synced.  One a crash left behind is removed by recovery and fsck --repair.
inline constexpr std::string_view kIndexTmpSuffix = ".idx.tmp";
std::string index_tmp_file_name(uint64_t first_seq);
// A lost-range marker's segment fsck --repair prepares before it puts it in place of a
// segment it moves aside (renamed over the segment's name once synced): 20 digits +
// ".seg.tmp".  One a crash left behind is removed by fsck --repair.
inline constexpr std::string_view kSegmentTmpSuffix = ".seg.tmp";
std::string segment_tmp_file_name(uint64_t first_seq);
// A deletion asked of a running persister (watermark.h): 20 digits + ".delete".
inline constexpr std::string_view kDeleteRequestSuffix = ".delete";
std::string delete_request_file_name(uint64_t seq);
// True (and *first_seq set) for exactly 20 digits followed by `suffix`.
bool parse_numbered_name(std::string_view name, std::string_view suffix, uint64_t* first_seq);

}  // namespace shmbus::persist::detail
