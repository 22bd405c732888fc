// test_format.cc: CRC32C, segment headers, frames, names, index entries: encode,
// decode, and every way a damaged byte is caught.
#include <cstring>
#include <optional>
#include <random>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "coding.h"
#include "crc32c.h"
#include "format.h"
#include "index.h"
#include "store_path.h"
#include "test_util.h"
#include "watermark.h"

namespace shmbus::persist::test {
namespace {

using namespace detail;

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  std::vector<uint8_t> buf(32, 0);
  EXPECT_EQ(crc32c(buf.data(), buf.size()), 0x8A9136AAu);  // RFC 3720 B.4
  std::fill(buf.begin(), buf.end(), 0xFF);
  EXPECT_EQ(crc32c(buf.data(), buf.size()), 0x62A8AB43u);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(crc32c(buf.data(), buf.size()), 0x46DD794Eu);
  EXPECT_EQ(crc32c(nullptr, 0), 0u);
}

TEST(Crc32c, TableAndSse42AgreeAndExtend) {
  std::mt19937_64 rng(42);
  std::vector<uint8_t> buf(4096 + 16);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  for (size_t start : {0, 1, 3, 7, 8}) {
    for (size_t n : {0, 1, 7, 8, 9, 63, 64, 65, 1000, 4096}) {
      const uint8_t* p = buf.data() + start;
      const uint32_t t = crc32c_extend_table(0, p, n);
      if (crc32c_has_sse42()) {
        EXPECT_EQ(t, crc32c_extend_sse42(0, p, n)) << start << " " << n;
      }
      EXPECT_EQ(t, crc32c(p, n));
      const size_t half = n / 3;
      EXPECT_EQ(t, crc32c_extend(crc32c(p, half), p + half, n - half));
    }
  }
}

// The store's CRC (ISA-L from 256 bytes, one crc32 chain below) and ISA-L alone against
// the table for every length 0..4096, from random starting offsets and random incoming
// states: ISA-L's own convention (no pre/post inversion) must not leak through.
TEST(Crc32c, StoreAndIsalMatchTableEveryLength) {
  std::mt19937_64 rng(7);
  std::vector<uint8_t> buf(4096 + 64);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  EXPECT_EQ(crc32c_extend_isal(0, "123456789", 9), 0xE3069283u);
  std::vector<uint8_t> big(3000, 0);
  EXPECT_EQ(crc32c(big.data(), big.size()), crc32c_extend_table(0, big.data(), big.size()));
  for (size_t n = 0; n <= 4096; ++n) {
    const size_t start = rng() % 64;
    const auto seed = static_cast<uint32_t>(rng());
    const uint8_t* p = buf.data() + start;
    const uint32_t want = crc32c_extend_table(seed, p, n);
    ASSERT_EQ(want, crc32c_extend(seed, p, n)) << "length " << n << " offset " << start;
    ASSERT_EQ(want, crc32c_extend_isal(seed, p, n)) << "length " << n << " offset " << start;
    const size_t cut = n ? rng() % n : 0;
    ASSERT_EQ(want, crc32c_extend(crc32c_extend(seed, p, cut), p + cut, n - cut)) << n;
  }
}

#if defined(__x86_64__)
// Which state components hold something other than their initial values (XGETBV with
// ECX=1), or nullopt where the CPU cannot tell.
std::optional<uint64_t> xinuse() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE)) return std::nullopt;
  if (__get_cpuid_max(0, nullptr) < 0xD) return std::nullopt;
  __cpuid_count(0xD, 1, a, b, c, d);
  if (!(a & (1u << 2))) return std::nullopt;  // XGETBV with ECX=1 not supported
  uint32_t lo, hi;
  asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(1));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

// ISA-L's AVX-512 crc32_iscsi returns with the vector registers' upper halves in use, and
// every legacy-SSE instruction after it paid for that: crc32c_extend_isal clears them
// (1 KiB replay 3.7 -> 6.6 GB/s).  State components 2 (YMM upper halves) and 6 (ZMM upper
// halves) must be back in their initial state when it returns.
TEST(Crc32c, IsalLeavesTheUpperHalvesOfTheVectorRegistersClean) {
  std::vector<uint8_t> buf(4096, 0x5a);
  for (size_t n : {size_t{256}, size_t{1024}, size_t{4096}}) {
    (void)crc32c_extend_isal(0, buf.data(), n);
    const auto in_use = xinuse();
    if (!in_use) GTEST_SKIP() << "this CPU does not report which register state is in use";
    EXPECT_EQ(*in_use & ((1u << 2) | (1u << 6)), 0u) << "after " << n << " bytes: XINUSE " << std::hex << *in_use;
  }
}
#endif

// Every offset (unaligned loads and stores), every byte where it belongs.
TEST(Coding, LittleEndianAtEveryOffset) {
  std::byte b[24];
  for (size_t at = 0; at < 8; ++at) {
    std::memset(b, 0xee, sizeof b);
    put_u64(b + at, 0x0102030405060708ull);
    for (int i = 0; i < 8; ++i) EXPECT_EQ(b[at + i], std::byte(8 - i)) << at;
    EXPECT_EQ(b[at + 8], std::byte{0xee});
    EXPECT_EQ(get_u64(b + at), 0x0102030405060708ull);
    put_u32(b + at + 8, 0xA1B2C3D4u);
    EXPECT_EQ(b[at + 8], std::byte{0xD4});
    EXPECT_EQ(b[at + 11], std::byte{0xA1});
    EXPECT_EQ(get_u32(b + at + 8), 0xA1B2C3D4u);
    put_u16(b + at + 12, 0xBEEF);
    EXPECT_EQ(b[at + 12], std::byte{0xEF});
    EXPECT_EQ(get_u16(b + at + 12), 0xBEEF);
    EXPECT_EQ(b[at + 14], std::byte{0xee});
  }
}

TEST(Coding, AllZeroSeesEveryByte) {
  std::byte b[48] = {};
  for (size_t n = 0; n <= 40; ++n) {
    for (size_t start = 0; start < 8; ++start) {
      EXPECT_TRUE(all_zero(b + start, n));
      for (size_t i = 0; i < n; ++i) {
        b[start + i] = std::byte{0x10};
        EXPECT_FALSE(all_zero(b + start, n)) << n << " " << start << " " << i;
        b[start + i] = std::byte{0};
      }
      b[start + n] = std::byte{1};  // just past the end: not looked at
      EXPECT_TRUE(all_zero(b + start, n));
      b[start + n] = std::byte{0};
    }
  }
}

TEST(Coding, LittleEndianByteByByte) {
  std::byte b[8];
  put_u64(b, 0x0102030405060708ull);
  EXPECT_EQ(b[0], std::byte{0x08});
  EXPECT_EQ(b[7], std::byte{0x01});
  EXPECT_EQ(get_u64(b), 0x0102030405060708ull);
  put_u32(b, 0xA1B2C3D4u);
  EXPECT_EQ(b[0], std::byte{0xD4});
  EXPECT_EQ(get_u32(b), 0xA1B2C3D4u);
  put_u16(b, 0xBEEF);
  EXPECT_EQ(get_u16(b), 0xBEEF);
}

SegmentHeader sample_header() {
  SegmentHeader h;
  h.first_seq = 1000;
  h.created_ns = 123456789;
  h.ns = "prod";
  h.stream = "orders.v2";
  return h;
}

TEST(SegmentHeaderFormat, RoundTripAndLayout) {
  std::byte buf[kSegmentHeaderSize];
  encode_segment_header(sample_header(), buf);
  EXPECT_EQ(std::memcmp(buf, "SHMBSEG", 8), 0);
  EXPECT_EQ(get_u16(buf + 8), 2);  // version 2 (batch frames)
  EXPECT_EQ(get_u16(buf + 10), 256);
  EXPECT_EQ(get_u64(buf + 16), 1000u);
  EXPECT_EQ(get_u64(buf + 24), 123456789u);
  EXPECT_EQ(static_cast<int>(buf[32]), 4);
  EXPECT_EQ(std::memcmp(buf + 33, "prod", 4), 0);
  EXPECT_EQ(static_cast<int>(buf[133]), 9);
  EXPECT_TRUE(all_zero(buf + 234, 18));
  auto h = decode_segment_header(Bytes(buf, sizeof buf), "x.seg");
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_EQ(h->first_seq, 1000u);
  EXPECT_EQ(h->created_ns, 123456789u);
  EXPECT_EQ(h->ns, "prod");
  EXPECT_EQ(h->stream, "orders.v2");
}

TEST(SegmentHeaderFormat, DamageIsAClearError) {
  std::byte good[kSegmentHeaderSize];
  encode_segment_header(sample_header(), good);
  auto decode = [](const std::byte* p, size_t n) {
    return decode_segment_header(Bytes(p, n), "f.seg");
  };
  // Truncated anywhere.
  for (size_t n : {0, 4, 8, 11, 12, 100, 255}) {
    auto h = decode(good, n);
    ASSERT_FALSE(h.ok()) << n;
    EXPECT_EQ(h.error().code, Errc::kTruncated) << n;
  }
  // Not a segment.
  std::byte bad[kSegmentHeaderSize];
  std::memcpy(bad, good, sizeof bad);
  bad[0] = std::byte{'X'};
  EXPECT_EQ(decode(bad, sizeof bad).error().code, Errc::kIncompatible);
  // Another version: refused before anything else is trusted.
  std::memcpy(bad, good, sizeof bad);
  put_u16(bad + kHdrVersion, 3);
  auto v = decode(bad, sizeof bad);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, Errc::kIncompatible);
  EXPECT_NE(v.error().message.find("version 3"), std::string::npos) << v.error().message;
  put_u16(bad + kHdrVersion, 0);
  EXPECT_EQ(decode(bad, sizeof bad).error().code, Errc::kIncompatible);
  // Version 1 (before batch frames) is read as it was written.
  SegmentHeader h1 = sample_header();
  h1.version = 1;
  encode_segment_header(h1, bad);
  auto v1 = decode(bad, sizeof bad);
  ASSERT_TRUE(v1.ok()) << v1.error().message;
  EXPECT_EQ(v1->version, 1);
  // Every other single-byte change is caught by the CRC (or a field check).
  for (size_t i = 10; i < kSegmentHeaderSize; ++i) {
    std::memcpy(bad, good, sizeof bad);
    bad[i] ^= std::byte{0x40};
    EXPECT_FALSE(decode(bad, sizeof bad).ok()) << "byte " << i;
  }
}

std::vector<std::byte> make_frame(const FrameHeader& h, const std::string& payload) {
  std::vector<std::byte> f(frame_size(payload.size()), std::byte{0});
  std::memcpy(f.data() + kFrameHeaderSize, payload.data(), payload.size());
  encode_frame_header(h, as_bytes(payload), f.data());
  return f;
}

TEST(FrameFormat, RoundTripDataAndLost) {
  for (size_t len : {0, 1, 7, 8, 9, 100, 4096}) {
    const std::string payload(len, 'q');
    FrameHeader h{static_cast<uint32_t>(len), FrameKind::kData, 77, 999, 5};
    auto f = make_frame(h, payload);
    EXPECT_EQ(f.size() % 8, 0u);
    EXPECT_EQ(f.size(), (32 + len + 7) / 8 * 8);
    FrameView v;
    ASSERT_EQ(decode_frame(f, &v), FrameStatus::kOk) << len;
    EXPECT_EQ(v.h.seq, 77u);
    EXPECT_EQ(v.h.ts_ns, 999u);
    EXPECT_EQ(v.h.type, 5u);
    EXPECT_EQ(v.end_seq, 78u);
    EXPECT_EQ(v.size, f.size());
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(v.payload.data()), v.payload.size()),
              payload);
  }
  std::string to(8, '\0');
  put_u64(reinterpret_cast<std::byte*>(to.data()), 250);
  auto f = make_frame(FrameHeader{8, FrameKind::kLost, 200, 1, 0}, to);
  FrameView v;
  ASSERT_EQ(decode_frame(f, &v), FrameStatus::kOk);
  EXPECT_EQ(v.h.kind, FrameKind::kLost);
  EXPECT_EQ(v.end_seq, 250u);
}

TEST(FrameFormat, EveryDamageIsCaught) {
  const std::string payload = "hello, segment";
  auto good = make_frame(FrameHeader{static_cast<uint32_t>(payload.size()), FrameKind::kData,
                                     5, 6, 7},
                         payload);
  FrameView v;
  EXPECT_EQ(decode_frame({}, &v), FrameStatus::kEof);
  for (size_t n = 1; n < good.size(); ++n)
    EXPECT_EQ(decode_frame(Bytes(good.data(), n), &v), FrameStatus::kShort) << n;
  std::vector<std::byte> zeros(64, std::byte{0});
  EXPECT_EQ(decode_frame(zeros, &v), FrameStatus::kZero);
  EXPECT_EQ(decode_frame(Bytes(zeros.data(), 5), &v), FrameStatus::kZero);
  // Flipping any bit of the header or payload never yields a valid frame.
  for (size_t i = 0; i < kFrameHeaderSize + payload.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      auto bad = good;
      bad[i] ^= static_cast<std::byte>(1 << bit);
      EXPECT_NE(decode_frame(bad, &v), FrameStatus::kOk) << "byte " << i << " bit " << bit;
    }
  }
  auto big = good;
  put_u32(big.data(), kMaxPayload + 1);
  EXPECT_EQ(decode_frame(big, &v), FrameStatus::kBadLength);
  auto kind = good;
  put_u16(kind.data() + kFrmKind, 9);
  EXPECT_EQ(decode_frame(kind, &v), FrameStatus::kBadHeader);
  auto crc = good;
  crc[kFrameHeaderSize] ^= std::byte{1};
  EXPECT_EQ(decode_frame(crc, &v), FrameStatus::kBadCrc);
  // A lost marker whose end is not after its start is refused even with a good CRC.
  std::string to(8, '\0');
  put_u64(reinterpret_cast<std::byte*>(to.data()), 100);
  EXPECT_EQ(decode_frame(make_frame(FrameHeader{8, FrameKind::kLost, 100, 1, 0}, to), &v),
            FrameStatus::kBadHeader);
}

// A batch frame of records {type, ts, bytes} from sequence `seq` (FORMAT.md, "Batch
// frames"); `count` overrides the record count the header gives.
struct Sub {
  uint32_t type;
  uint64_t ts;
  std::string data;
};
std::string batch_payload(const std::vector<Sub>& subs) {
  std::string p;
  for (const Sub& r : subs) {
    std::string one(sub_record_size(r.data.size()), '\0');
    encode_sub_record(r.type, r.ts, test::as_bytes(r.data), reinterpret_cast<std::byte*>(one.data()));
    p += one;
  }
  return p;
}
std::vector<std::byte> batch_frame(uint64_t seq, const std::vector<Sub>& subs,
                                   std::optional<uint32_t> count = std::nullopt,
                                   std::optional<std::string> payload = std::nullopt) {
  const std::string p = payload ? *payload : batch_payload(subs);
  return make_frame(FrameHeader{static_cast<uint32_t>(p.size()), FrameKind::kBatch, seq,
                                subs.empty() ? 0 : subs[0].ts,
                                count ? *count : static_cast<uint32_t>(subs.size())},
                    p);
}

TEST(FrameFormat, BatchFramesRoundTripAndEveryRecordIsWalked) {
  const std::vector<Sub> subs = {{1, 500, "a"}, {2, 400, ""}, {3, 900, std::string(24, 'c')},
                                 {4, 700, std::string(7, 'd')}};
  auto f = batch_frame(40, subs);
  EXPECT_EQ(f.size(), 32u + (16 + 8) + 16 + (16 + 24) + (16 + 8));
  FrameView v;
  ASSERT_EQ(decode_frame(f, &v), FrameStatus::kOk);
  EXPECT_EQ(v.h.kind, FrameKind::kBatch);
  EXPECT_EQ(v.end_seq, 44u);
  EXPECT_EQ(v.records, 4u);
  EXPECT_EQ(v.max_ts, 900u);  // the newest, not the first
  EXPECT_EQ(v.size, f.size());
  size_t at = 0;
  SubRecord r;
  for (const Sub& want : subs) {
    ASSERT_TRUE(next_sub_record(v.payload, &at, &r));
    EXPECT_EQ(r.type, want.type);
    EXPECT_EQ(r.ts_ns, want.ts);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(r.data.data()), r.data.size()), want.data);
  }
  EXPECT_FALSE(next_sub_record(v.payload, &at, &r));
  EXPECT_EQ(at, v.payload.size());
  // A data frame counts one record, a lost-range marker none.
  auto d = make_frame(FrameHeader{1, FrameKind::kData, 7, 8, 9}, "x");
  ASSERT_EQ(decode_frame(d, &v), FrameStatus::kOk);
  EXPECT_EQ(v.records, 1u);
  EXPECT_EQ(v.max_ts, 8u);
}

TEST(FrameFormat, ABatchFrameThatDoesNotAddUpIsRefusedWithAGoodCrc) {
  const std::vector<Sub> subs = {{1, 5, "abc"}, {2, 6, "defgh"}};
  const std::string p = batch_payload(subs);
  FrameView v;
  ASSERT_EQ(decode_frame(batch_frame(10, subs), &v), FrameStatus::kOk);
  // More records than the payload holds, none, or fewer (bytes left over).
  EXPECT_EQ(decode_frame(batch_frame(10, subs, 3), &v), FrameStatus::kBadHeader);
  EXPECT_EQ(decode_frame(batch_frame(10, subs, 0), &v), FrameStatus::kBadHeader);
  EXPECT_EQ(decode_frame(batch_frame(10, subs, 1), &v), FrameStatus::kBadHeader);
  EXPECT_EQ(decode_frame(batch_frame(10, subs, 1u << 30), &v), FrameStatus::kBadHeader);
  // A sub-record whose length runs past the payload.
  std::string over = p;
  put_u32(reinterpret_cast<std::byte*>(over.data()) + sub_record_size(3) + kSubLength, 1000);
  EXPECT_EQ(decode_frame(batch_frame(10, subs, std::nullopt, over), &v), FrameStatus::kBadHeader);
  // A payload that is not a whole number of sub-records.
  EXPECT_EQ(decode_frame(batch_frame(10, subs, std::nullopt, p + std::string(8, '\0')), &v),
            FrameStatus::kBadHeader);
  EXPECT_EQ(decode_frame(batch_frame(10, subs, std::nullopt, p.substr(0, p.size() - 8)), &v),
            FrameStatus::kBadHeader);
  // The header's stamp is the first record's.
  FrameHeader h{static_cast<uint32_t>(p.size()), FrameKind::kBatch, 10, 99, 2};
  EXPECT_EQ(decode_frame(make_frame(h, p), &v), FrameStatus::kBadHeader);
  // Sequences past 2^64 - 1.
  EXPECT_EQ(decode_frame(batch_frame(UINT64_MAX - 1, subs), &v), FrameStatus::kBadHeader);
  ASSERT_EQ(decode_frame(batch_frame(UINT64_MAX - 2, subs), &v), FrameStatus::kOk);
  EXPECT_EQ(v.end_seq, UINT64_MAX);
  // Any flipped bit fails the CRC or a check.
  auto good = batch_frame(10, subs);
  for (size_t i = 0; i < good.size(); ++i)
    for (int bit = 0; bit < 8; ++bit) {
      auto bad = good;
      bad[i] ^= static_cast<std::byte>(1 << bit);
      EXPECT_NE(decode_frame(bad, &v), FrameStatus::kOk) << "byte " << i << " bit " << bit;
    }
}

TEST(FrameFormat, RandomBytesNeverCrash) {
  std::mt19937_64 rng(7);
  std::vector<std::byte> buf(256);
  int ok = 0;
  for (int i = 0; i < 20000; ++i) {
    for (auto& b : buf) b = static_cast<std::byte>(rng());
    if (i % 3 == 0) put_u32(buf.data(), static_cast<uint32_t>(rng() % 300));
    FrameView v;
    ok += decode_frame(Bytes(buf.data(), rng() % buf.size()), &v) == FrameStatus::kOk;
    (void)decode_segment_header(Bytes(buf.data(), rng() % buf.size()), "r");
  }
  EXPECT_EQ(ok, 0);
}

TEST(Names, SegmentAndIndexNames) {
  EXPECT_EQ(segment_file_name(1000), "00000000000000001000.seg");
  EXPECT_EQ(index_file_name(0), "00000000000000000000.idx");
  EXPECT_EQ(segment_file_name(UINT64_MAX), "18446744073709551615.seg");
  uint64_t s = 0;
  EXPECT_TRUE(parse_numbered_name("00000000000000001000.seg", ".seg", &s));
  EXPECT_EQ(s, 1000u);
  EXPECT_FALSE(parse_numbered_name("0000000000000001000.seg", ".seg", &s));
  EXPECT_FALSE(parse_numbered_name("00000000000000001000.idx", ".seg", &s));
  EXPECT_FALSE(parse_numbered_name("0000000000000000100a.seg", ".seg", &s));
  EXPECT_FALSE(parse_numbered_name("99999999999999999999.seg", ".seg", &s));
  EXPECT_FALSE(parse_numbered_name("00000000000000001000.seg.corrupt", ".seg", &s));
}

TEST(IndexFormat, BuilderRuleAndRoundTrip) {
  IndexBuilder b(100);
  std::vector<IndexEntry> entries;
  IndexEntry e;
  // Records of 40 bytes at 256, 296, ...: entries at the first and whenever >= 100 bytes on.
  uint64_t ts[] = {50, 40, 70, 60, 80, 90, 10};
  for (int i = 0; i < 7; ++i)
    if (b.add(256 + 40 * i, 10 + i, 11 + i, ts[i], ts[i], 1, &e)) entries.push_back(e);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].offset, 256u);
  EXPECT_EQ(entries[1].offset, 376u);
  EXPECT_EQ(entries[2].offset, 496u);
  EXPECT_EQ(entries[1].max_ts, 70u);  // running maximum, not the record's own
  EXPECT_EQ(entries[1].count, 4u);
  IndexEntry seal = b.seal_entry();
  EXPECT_EQ(seal.flags, kEntrySeal);
  EXPECT_EQ(seal.seq, 16u);
  EXPECT_EQ(seal.max_ts, 90u);
  EXPECT_EQ(seal.count, 7u);
  EXPECT_EQ(floor_by_seq(entries, 9), nullptr);
  EXPECT_EQ(floor_by_seq(entries, 13)->seq, 13u);
  EXPECT_EQ(floor_by_seq(entries, 15)->seq, 13u);
  EXPECT_EQ(last_older_than(entries, 50), nullptr);
  EXPECT_EQ(last_older_than(entries, 71)->seq, 13u);

  TempDir t;
  auto dir = open_dir_path(t.path(), {}, false, Use::kRead);
  ASSERT_TRUE(dir.ok());
  entries.push_back(seal);
  ASSERT_TRUE(write_index(dir->get(), IndexHeader{100, 10, 5}, entries).ok());
  auto back = read_index(dir->get(), 10, 1 << 20);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(back->sealed);
  EXPECT_EQ(back->entries, entries);
  // A damaged entry ends the valid prefix.
  const std::string path = t.path() + "/" + index_file_name(10);
  auto bytes = read_file(path);
  bytes[kIndexHeaderSize + kIndexEntrySize + 3] ^= 1;
  write_file(path, bytes);
  back = read_index(dir->get(), 10, 1 << 20);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->entries.size(), 1u);
  EXPECT_FALSE(back->sealed);
  // A damaged header is an error.
  bytes[20] ^= 1;
  write_file(path, bytes);
  EXPECT_EQ(read_index(dir->get(), 10, 1 << 20).error().code, Errc::kCorrupt);
}

// The watermark file, version 2 (FORMAT.md): 1024 bytes, slots at 0 and 512, each
// {magic, u16 2, u16 64, u32 0, u64 generation, u64 deleted_below, u64 set_ns, zeros,
// u32 crc of 0..59}; raises alternate between the slots; a torn slot falls back.
TEST(WatermarkFormat, TwoSlotsInPlace) {
  TempDir t;
  auto dir = open_dir_path(t.path(), {}, false, Use::kRead);
  ASSERT_TRUE(dir.ok());
  ASSERT_TRUE(write_watermark(dir->get(), Watermark{10, 111}).ok());
  const std::string path = t.path() + "/watermark";
  auto b = read_file(path);
  ASSERT_EQ(b.size(), 1024u);
  auto slot = [&](size_t at) { return reinterpret_cast<const std::byte*>(b.data() + at); };
  EXPECT_EQ(std::memcmp(slot(0), "SHMBWMK", 8), 0);
  EXPECT_EQ(get_u16(slot(0) + 8), 2u);
  EXPECT_EQ(get_u16(slot(0) + 10), 64u);
  EXPECT_EQ(get_u64(slot(0) + 16), 1u);
  EXPECT_EQ(get_u64(slot(0) + 24), 10u);
  EXPECT_EQ(get_u64(slot(0) + 32), 111u);
  EXPECT_EQ(get_u32(slot(0) + 60), crc32c(slot(0), 60));
  EXPECT_EQ(get_u64(slot(512) + 16), 0u);  // the other slot is empty
  ASSERT_TRUE(write_watermark(dir->get(), Watermark{20, 222}).ok());
  b = read_file(path);
  EXPECT_EQ(get_u64(slot(512) + 16), 2u);
  EXPECT_EQ(get_u64(slot(512) + 24), 20u);
  EXPECT_EQ(get_u64(slot(0) + 24), 10u);  // the previous value stays in the other slot
  ASSERT_TRUE(write_watermark(dir->get(), Watermark{30, 333}).ok());
  b = read_file(path);
  EXPECT_EQ(get_u64(slot(0) + 16), 3u);
  EXPECT_EQ(read_watermark(dir->get())->deleted_below, 30u);
  // A torn write of the newest slot: the other one is read.
  b[20] ^= 1;
  write_file(path, b);
  EXPECT_EQ(read_watermark(dir->get())->deleted_below, 20u);
  b[512 + 20] ^= 1;
  write_file(path, b);
  auto bad = read_watermark(dir->get());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::kCorrupt);
}

}  // namespace
}  // namespace shmbus::persist::test
