// make_seeds: writes the seed corpus of the fuzz targets (tests/fuzz/corpus/TARGET/).
//
//   build-fuzz/tests/fuzz/shmbus_fuzz_seeds tests/fuzz/corpus
//
// Small valid examples made with the real writers: stream objects after real API calls
// (copied from /dev/shm), segment, index and watermark files from persist's encoders,
// and the documented spellings of sizes, durations and start positions.  The committed
// corpus came from this program; rerun it only to refresh the seeds (ring seeds differ
// from run to run: every stream gets a random salt).
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "coding.h"
#include "crc32c.h"
#include "format.h"
#include "index.h"
#include "shmbus/shmbus.h"
#include "shmbus/detail/stream_control.h"
#include "watermark.h"

namespace fs = std::filesystem;
using namespace shmbus;
using namespace shmbus::persist::detail;

namespace {

std::string g_root;

void put(const std::string& target, const std::string& name, const std::vector<std::byte>& bytes) {
  fs::create_directories(g_root + "/" + target);
  std::ofstream(g_root + "/" + target + "/" + name, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}
void put_text(const std::string& target, const std::string& name, const std::string& text) {
  put(target, name, std::vector<std::byte>(reinterpret_cast<const std::byte*>(text.data()),
                                           reinterpret_cast<const std::byte*>(text.data() + text.size())));
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "make_seeds: %s failed\n", what);
    std::exit(1);
  }
}

// ---- ring_open: option byte + the object's bytes (trailing zeros dropped) -------------

const std::string kNs = "seeds" + std::to_string(getpid());

void dump_ring(const std::string& stream, const std::string& name, uint8_t options) {
  std::ifstream in("/dev/shm/" + object_name(kNs, stream), std::ios::binary);
  std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!raw.empty() && raw.back() == 0) raw.pop_back();
  std::vector<std::byte> out{std::byte{options}};
  for (char c : raw) out.push_back(static_cast<std::byte>(c));
  put("ring_open", name, out);
}

Bytes text_bytes(const std::string& s) {
  return Bytes(reinterpret_cast<const std::byte*>(s.data()), s.size());
}

void ring_seeds() {
  StreamOptions so;
  so.capacity = 4096;
  so.max_record = 1024;
  check(create_stream(kNs, "fresh", so).ok(), "create fresh");
  dump_ring("fresh", "fresh", 0x00);

  // A few records, a durable consumer that read one of them and left.
  check(create_stream(kNs, "used", so).ok(), "create used");
  {
    auto p = Producer::open(kNs, "used");
    check(p.ok(), "producer used");
    for (int i = 0; i < 3; ++i) (void)p->publish(text_bytes("record " + std::to_string(i)));
    ConsumerOptions co;
    co.group = "g";
    auto c = Consumer::open(kNs, "used", co);
    check(c.ok(), "consumer used");
    Record r;
    (void)c->poll(&r, std::chrono::milliseconds(10));
    c->commit();
  }
  dump_ring("used", "used-committed", 0x00);
  dump_ring("used", "used-latest-batch", 0x02 | 0x40);

  // Wrapped several times (no durable consumer holds producers back).
  check(create_stream(kNs, "wrapped", so).ok(), "create wrapped");
  {
    auto p = Producer::open(kNs, "wrapped");
    check(p.ok(), "producer wrapped");
    for (int i = 0; i < 300; ++i) (void)p->publish(text_bytes(std::string(40 + i % 50, 'w')));
  }
  dump_ring("wrapped", "wrapped-tail-readonly", 0x01 | 0x20);
  dump_ring("wrapped", "wrapped-seq-block-wait", 0x03 | 0x08 | 0x10 | 0x80);

  // A claim left pending (its producer "died" holding it).
  check(create_stream(kNs, "pending", so).ok(), "create pending");
  {
    auto p = Producer::open(kNs, "pending");
    check(p.ok(), "producer pending");
    (void)p->publish(text_bytes("before"));
    PubStatus st;
    Claim c = p->claim(100, 7, &st);
    check(c.valid(), "claim");
    dump_ring("pending", "pending-claim", 0x04);
    (void)c.abort();
  }

  // Aborted claims among wrapped records: the header's gap log holds their sequences.
  check(create_stream(kNs, "gaps", so).ok(), "create gaps");
  {
    auto p = Producer::open(kNs, "gaps");
    check(p.ok(), "producer gaps");
    for (int i = 0; i < 200; ++i) {
      if (i % 7 == 3) {
        PubStatus st;
        Claim c = p->claim(24, 0, &st);
        check(c.valid(), "claim gaps");
        (void)c.abort();
        continue;
      }
      (void)p->publish(text_bytes(std::string(30 + i % 40, 'g')));
    }
  }
  dump_ring("gaps", "gaps-wrapped-tail", 0x00);

  // A persisted stream: the persistence settings in the header.
  check(create_stream(kNs, "persisted", so).ok(), "create persisted");
  {
    auto c = StreamControl::open(kNs, "persisted");
    check(c.ok(), "control");
    PersistSettings ps;
    ps.store_dir = "/var/lib/shmbus/" + kNs + "/persisted";
    ps.retention_age = std::chrono::hours(1);
    check(c->set_persist(ps).ok(), "set_persist");
    c->set_durable_seq(0);
  }
  dump_ring("persisted", "persisted", 0x05);

  // A single-producer stream (layout 5, flags 0b111: plain commits, slot counters on the
  // second line), wrapped, with a group that owes a loss (a start below the oldest record,
  // closed before its first read: the slot's owed fields set).
  StreamOptions sp = so;
  sp.single_producer = true;
  check(create_stream(kNs, "single", sp).ok(), "create single");
  {
    auto p = Producer::open(kNs, "single");
    check(p.ok(), "producer single");
    for (int i = 0; i < 300; ++i) (void)p->publish(text_bytes(std::string(20 + i % 60, 's')));
    ConsumerOptions co;
    co.group = "g";  // the group fuzz_ring_open opens
    co.start = StartFrom::seq(1);
    auto c = Consumer::open(kNs, "single", co);
    check(c.ok(), "consumer single");
  }
  dump_ring("single", "single-producer-owed", 0x00);
  dump_ring("single", "single-producer-owed-seq", 0x03 | 0x08);

  for (const char* s : {"fresh", "used", "wrapped", "pending", "gaps", "persisted", "single"})
    (void)remove_stream(kNs, s, true);
}

// ---- persist: segment, index, watermark files --------------------------------------

// A segment's header (default/ticks from `first`), the file's first bytes.
std::vector<std::byte> segment_head(uint64_t first, SegmentHeader* hdr) {
  std::vector<std::byte> out(kSegmentHeaderSize);
  SegmentHeader& h = *hdr;
  h.first_seq = first;
  h.created_ns = 1764500000000000000ULL;
  h.ns = "default";
  h.stream = "ticks";
  encode_segment_header(h, out.data());
  return out;
}

std::vector<std::byte> segment(uint64_t first, int records, bool lost_frame) {
  SegmentHeader h;
  std::vector<std::byte> out = segment_head(first, &h);
  uint64_t seq = first;
  for (int i = 0; i < records; ++i) {
    std::string payload = "payload " + std::to_string(seq);
    FrameHeader fh;
    fh.length = static_cast<uint32_t>(payload.size());
    fh.seq = seq;
    fh.ts_ns = h.created_ns + static_cast<uint64_t>(i) * 1000;
    fh.type = 1;
    const size_t at = out.size();
    out.resize(at + frame_size(fh.length));
    std::memcpy(out.data() + at + kFrameHeaderSize, payload.data(), payload.size());
    encode_frame_header(fh, text_bytes(payload), out.data() + at);
    ++seq;
  }
  if (lost_frame) {
    FrameHeader fh;
    fh.kind = FrameKind::kLost;
    fh.length = kLostPayloadSize;
    fh.seq = seq;
    fh.ts_ns = h.created_ns + 99999;
    std::byte to[8];
    put_u64(to, seq + 5);
    const size_t at = out.size();
    out.resize(at + frame_size(fh.length));
    std::memcpy(out.data() + at + kFrameHeaderSize, to, sizeof to);
    encode_frame_header(fh, Bytes(to, sizeof to), out.data() + at);
  }
  return out;
}

// A segment of batch frames (format version 2): `frames` of `per_frame` records each.
std::vector<std::byte> batch_segment(uint64_t first, int frames, int per_frame) {
  SegmentHeader h;
  std::vector<std::byte> out = segment_head(first, &h);
  uint64_t seq = first;
  for (int f = 0; f < frames; ++f) {
    std::vector<std::byte> body;
    uint64_t first_ts = 0;
    for (int i = 0; i < per_frame; ++i) {
      const std::string payload = "payload " + std::to_string(seq + static_cast<uint64_t>(i));
      const uint64_t ts = h.created_ns + (seq + static_cast<uint64_t>(i)) * 1000;
      if (i == 0) first_ts = ts;
      const size_t at = body.size();
      body.resize(at + sub_record_size(payload.size()));
      encode_sub_record(1, ts, text_bytes(payload), body.data() + at);
    }
    FrameHeader fh;
    fh.kind = FrameKind::kBatch;
    fh.length = static_cast<uint32_t>(body.size());
    fh.seq = seq;
    fh.ts_ns = first_ts;
    fh.type = static_cast<uint32_t>(per_frame);
    const size_t at = out.size();
    out.resize(at + frame_size(fh.length));
    std::memcpy(out.data() + at + kFrameHeaderSize, body.data(), body.size());
    encode_frame_header(fh, Bytes(body.data(), body.size()), out.data() + at);
    seq += static_cast<uint64_t>(per_frame);
  }
  return out;
}

void persist_seeds() {
  put("persist_segment", "batch-frames", batch_segment(7, 3, 5));
  auto torn_batch = batch_segment(7, 2, 6);
  torn_batch.resize(torn_batch.size() - 20);
  put("persist_segment", "torn-batch", torn_batch);
  put("persist_segment", "header-only", segment(0, 0, false));
  put("persist_segment", "three-records", segment(0, 3, false));
  put("persist_segment", "records-then-lost", segment(1000, 4, true));
  auto torn = segment(5, 3, false);
  torn.resize(torn.size() - 10);
  put("persist_segment", "torn-tail", torn);
  auto zero_tail = segment(5, 2, false);
  zero_tail.resize(zero_tail.size() + 64);
  put("persist_segment", "zero-tail", zero_tail);

  // Indexes as the writer builds them (IndexBuilder), open and sealed.
  IndexHeader ih{256, 1000, 1764500000000000000ULL};
  IndexBuilder b(256);
  std::vector<IndexEntry> entries;
  uint64_t off = kSegmentHeaderSize;
  for (uint64_t s = 1000; s < 1020; ++s) {
    IndexEntry e;
    if (b.add(off, s, s + 1, 1764500000000000000ULL + s, 1764500000000000000ULL + s, 1, &e))
      entries.push_back(e);
    off += frame_size(100);
  }
  put("persist_index", "open-index", encode_index(ih, entries));
  auto sealed = entries;
  sealed.push_back(b.seal_entry());
  put("persist_index", "sealed-index", encode_index(ih, sealed));
  put("persist_index", "header-only-index", encode_index(IndexHeader{4096, 0, 1}, {}));

  std::vector<std::byte> wm(kWatermarkSize);
  std::memcpy(wm.data(), kWatermarkMagic, 8);
  put_u16(wm.data() + 8, 1);
  put_u16(wm.data() + 10, kWatermarkSize);
  put_u64(wm.data() + 16, 1234);
  put_u64(wm.data() + 24, 1764500000000000000ULL);
  put_u32(wm.data() + 32, crc32c(wm.data(), 32));
  put("persist_index", "watermark", wm);
}

// ---- cli_parsers: the spellings the README and --help document ---------------------

void parser_seeds() {
  const char* seeds[] = {
      "4096", "64K", "16M", "1G", "2T", "64KiB", "16MB", "500ms", "2s", "1m", "1h", "250us",
      "10ns", "1d", "earliest", "latest", "12345", "@1764500000000000000",
      "@2026-11-25T13:00:00Z", "@2026-11-25T13:00:00.123456789Z", "@2026-11-25 13:00:00",
      "0600", "0o640", "644", "ticks", "my-stream_1.v2", "00000000000000001000.seg",
      "18446744073709551615",
  };
  int i = 0;
  for (const char* s : seeds) put_text("cli_parsers", "seed-" + std::to_string(i++), s);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR (tests/fuzz/corpus)\n", argv[0]);
    return 2;
  }
  g_root = argv[1];
  ring_seeds();
  persist_seeds();
  parser_seeds();
  return 0;
}
