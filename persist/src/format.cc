// format.cc: encoding and validation of segment headers and record frames.
#include "format.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "coding.h"
#include "crc32c.h"

namespace shmbus::persist::detail {

void encode_new_segment_header(uint64_t first_seq, uint64_t created_ns, std::string_view ns,
                               std::string_view stream, std::byte* out) {
  SegmentHeader h;
  h.first_seq = first_seq;
  h.created_ns = created_ns;
  h.ns = std::string(ns);
  h.stream = std::string(stream);
  encode_segment_header(h, out);
}

void encode_segment_header(const SegmentHeader& h, std::byte* out) {
  std::memset(out, 0, kSegmentHeaderSize);
  std::memcpy(out + kHdrMagic, kSegmentMagic, sizeof kSegmentMagic);
  put_u16(out + kHdrVersion, h.version);
  put_u16(out + kHdrSize, static_cast<uint16_t>(kSegmentHeaderSize));
  put_u32(out + kHdrFlags, h.flags);
  put_u64(out + kHdrFirstSeq, h.first_seq);
  put_u64(out + kHdrCreatedNs, h.created_ns);
  const size_t ns_len = std::min<size_t>(h.ns.size(), kMaxNameLen);
  const size_t st_len = std::min<size_t>(h.stream.size(), kMaxNameLen);
  out[kHdrNsLen] = static_cast<std::byte>(ns_len);
  std::memcpy(out + kHdrNs, h.ns.data(), ns_len);
  out[kHdrStreamLen] = static_cast<std::byte>(st_len);
  std::memcpy(out + kHdrStream, h.stream.data(), st_len);
  put_u32(out + kHdrCrc, crc32c(out, kHdrCrc));
}

Result<SegmentHeader> decode_segment_header(Bytes in, std::string_view file) {
  const std::string f(file);
  if (in.size() < sizeof kSegmentMagic)
    return make_error(Errc::kTruncated, "segment " + f + " is " + std::to_string(in.size()) +
                                            " bytes, shorter than its " +
                                            std::to_string(kSegmentHeaderSize) + "-byte header");
  if (std::memcmp(in.data() + kHdrMagic, kSegmentMagic, sizeof kSegmentMagic) != 0)
    return make_error(Errc::kIncompatible,
                      "segment " + f + " is not a shmbus segment file (bad magic)");
  if (in.size() < kHdrSize + 2)
    return make_error(Errc::kTruncated, "segment " + f + " ends inside its header");
  SegmentHeader h;
  h.version = get_u16(in.data() + kHdrVersion);
  if (h.version < kMinFormatVersion || h.version > kFormatVersion)
    return make_error(Errc::kIncompatible,
                      "segment " + f + " has format version " + std::to_string(h.version) +
                          "; this build reads versions " + std::to_string(kMinFormatVersion) +
                          " to " + std::to_string(kFormatVersion));
  if (in.size() < kSegmentHeaderSize)
    return make_error(Errc::kTruncated, "segment " + f + " is " + std::to_string(in.size()) +
                                            " bytes, shorter than its " +
                                            std::to_string(kSegmentHeaderSize) + "-byte header");
  const uint16_t size = get_u16(in.data() + kHdrSize);
  if (size != kSegmentHeaderSize)
    return make_error(Errc::kCorrupt, "segment " + f + " declares a " + std::to_string(size) +
                                          "-byte header; version " + std::to_string(h.version) +
                                          " headers are 256 bytes");
  const uint32_t want = get_u32(in.data() + kHdrCrc);
  if (crc32c(in.data(), kHdrCrc) != want)
    return make_error(Errc::kCorrupt, "segment " + f + " has a damaged header (CRC mismatch)");
  h.flags = get_u32(in.data() + kHdrFlags);
  if (h.flags != 0)
    return make_error(Errc::kIncompatible, "segment " + f + " uses header flags " +
                                               std::to_string(h.flags) +
                                               " that this build does not know");
  h.first_seq = get_u64(in.data() + kHdrFirstSeq);
  h.created_ns = get_u64(in.data() + kHdrCreatedNs);
  const auto ns_len = static_cast<size_t>(in[kHdrNsLen]);
  const auto st_len = static_cast<size_t>(in[kHdrStreamLen]);
  if (ns_len == 0 || ns_len > kMaxNameLen || st_len == 0 || st_len > kMaxNameLen)
    return make_error(Errc::kCorrupt, "segment " + f + " has an invalid name length in its header");
  h.ns.assign(reinterpret_cast<const char*>(in.data() + kHdrNs), ns_len);
  h.stream.assign(reinterpret_cast<const char*>(in.data() + kHdrStream), st_len);
  return h;
}

void encode_frame_header(const FrameHeader& h, Bytes payload, std::byte* out) {
  // Length, kind and the zero reserved field as one 8-byte word (little-endian: length
  // in bytes 0-3, kind in 4-5): the CRC below reads the header back 8 bytes at a time,
  // and a load that spans several smaller stores cannot be forwarded from them (a
  // store-forwarding stall per frame).
  static_assert(kFrmKind == kFrmLength + 4 && kFrmReserved == kFrmKind + 2 && kFrmSeq == 8);
  put_u64(out + kFrmLength, uint64_t{h.length} | uint64_t{static_cast<uint16_t>(h.kind)} << 32);
  put_u64(out + kFrmSeq, h.seq);
  put_u64(out + kFrmTs, h.ts_ns);
  put_u32(out + kFrmType, h.type);
  uint32_t crc = crc32c(out, kFrmCrc);
  crc = crc32c_extend(crc, payload.data(), payload.size());
  put_u32(out + kFrmCrc, crc);
}

const char* frame_status_name(FrameStatus s) noexcept {
  switch (s) {
    case FrameStatus::kOk: return "ok";
    case FrameStatus::kEof: return "end of file";
    case FrameStatus::kZero: return "zero bytes";
    case FrameStatus::kShort: return "file ends inside the record";
    case FrameStatus::kBadLength: return "impossible record length";
    case FrameStatus::kBadHeader: return "invalid record header";
    case FrameStatus::kBadCrc: return "checksum mismatch";
    case FrameStatus::kBadSeq: return "unexpected sequence number";
  }
  return "unknown";
}

FrameStatus decode_frame(Bytes avail, FrameView* out) noexcept {
  if (avail.empty()) return FrameStatus::kEof;
  if (avail.size() < kFrameHeaderSize)
    return all_zero(avail.data(), avail.size()) ? FrameStatus::kZero : FrameStatus::kShort;
  const std::byte* p = avail.data();
  if (all_zero(p, kFrameHeaderSize)) return FrameStatus::kZero;
  FrameHeader h;
  h.length = get_u32(p + kFrmLength);
  const uint16_t kind = get_u16(p + kFrmKind);
  h.seq = get_u64(p + kFrmSeq);
  h.ts_ns = get_u64(p + kFrmTs);
  h.type = get_u32(p + kFrmType);
  if (h.length > kMaxPayload) return FrameStatus::kBadLength;
  if (get_u16(p + kFrmReserved) != 0) return FrameStatus::kBadHeader;
  if (kind != static_cast<uint16_t>(FrameKind::kData) &&
      kind != static_cast<uint16_t>(FrameKind::kLost) &&
      kind != static_cast<uint16_t>(FrameKind::kBatch))
    return FrameStatus::kBadHeader;
  h.kind = static_cast<FrameKind>(kind);
  const uint64_t size = frame_size(h.length);
  if (avail.size() < size) return FrameStatus::kShort;
  const Bytes payload = avail.subspan(kFrameHeaderSize, h.length);
  uint32_t crc = crc32c(p, kFrmCrc);
  crc = crc32c_extend(crc, payload.data(), payload.size());
  if (crc != get_u32(p + kFrmCrc)) return FrameStatus::kBadCrc;
  uint64_t end_seq = 0, records = 1, max_ts = h.ts_ns;
  if (h.kind == FrameKind::kData) {
    if (h.seq == UINT64_MAX) return FrameStatus::kBadHeader;
    end_seq = h.seq + 1;
  } else if (h.kind == FrameKind::kLost) {
    if (h.length != kLostPayloadSize) return FrameStatus::kBadHeader;
    end_seq = get_u64(payload.data());
    if (end_seq <= h.seq) return FrameStatus::kBadHeader;
    records = 0;
  } else {
    // A batch: `type` records whose sub-records fill the payload exactly (at most
    // length / 16 of them: the walk is bounded by the frame's own size), the first
    // stamped as the header says, the sequences within 2^64 - 1.
    records = h.type;
    if (records == 0 || records > h.length / kSubHeaderSize || h.seq > UINT64_MAX - records)
      return FrameStatus::kBadHeader;
    size_t at = 0;
    SubRecord r;
    for (uint64_t i = 0; i < records; ++i) {
      if (!next_sub_record(payload, &at, &r)) return FrameStatus::kBadHeader;
      if (i == 0 && r.ts_ns != h.ts_ns) return FrameStatus::kBadHeader;
      max_ts = std::max(max_ts, r.ts_ns);
    }
    if (at != payload.size()) return FrameStatus::kBadHeader;
    end_seq = h.seq + records;
  }
  out->h = h;
  out->payload = payload;
  out->end_seq = end_seq;
  out->size = size;
  out->records = records;
  out->max_ts = max_ts;
  return FrameStatus::kOk;
}

bool next_sub_record(Bytes payload, size_t* at, SubRecord* out) noexcept {
  const size_t left = payload.size() - std::min(*at, payload.size());
  if (left < kSubHeaderSize) return false;
  const std::byte* p = payload.data() + *at;
  const uint64_t len = get_u32(p + kSubLength);
  const uint64_t need = sub_record_size(len);
  if (need > left) return false;
  out->type = get_u32(p + kSubType);
  out->ts_ns = get_u64(p + kSubTs);
  out->data = Bytes(p + kSubHeaderSize, static_cast<size_t>(len));
  *at += static_cast<size_t>(need);
  return true;
}

void encode_sub_record(uint32_t type, uint64_t ts_ns, Bytes payload, std::byte* out) noexcept {
  const uint64_t n = sub_record_size(payload.size());
  put_u32(out + kSubLength, static_cast<uint32_t>(payload.size()));
  put_u32(out + kSubType, type);
  put_u64(out + kSubTs, ts_ns);
  if (!payload.empty()) std::memcpy(out + kSubHeaderSize, payload.data(), payload.size());
  std::memset(out + kSubHeaderSize + payload.size(), 0, n - kSubHeaderSize - payload.size());
}

static std::string numbered(uint64_t seq, std::string_view suffix) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(seq));
  return std::string(buf) + std::string(suffix);
}

std::string segment_file_name(uint64_t first_seq) { return numbered(first_seq, kSegmentSuffix); }
std::string delete_request_file_name(uint64_t seq) { return numbered(seq, kDeleteRequestSuffix); }
std::string index_file_name(uint64_t first_seq) { return numbered(first_seq, kIndexSuffix); }
std::string index_tmp_file_name(uint64_t first_seq) { return numbered(first_seq, kIndexTmpSuffix); }
std::string segment_tmp_file_name(uint64_t first_seq) { return numbered(first_seq, kSegmentTmpSuffix); }

bool parse_numbered_name(std::string_view name, std::string_view suffix, uint64_t* first_seq) {
  if (name.size() != 20 + suffix.size() || name.substr(20) != suffix) return false;
  for (size_t i = 0; i < 20; ++i)
    if (name[i] < '0' || name[i] > '9') return false;
  auto [p, ec] = std::from_chars(name.data(), name.data() + 20, *first_seq);
  return ec == std::errc() && p == name.data() + 20;  // rejects values above 2^64-1
}

}  // namespace shmbus::persist::detail
