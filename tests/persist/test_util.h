// test_util.h: helpers shared by the persist tests.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "shmbus/persist.h"
#include "../common/scratch.h"

namespace shmbus::persist::test {

// A fresh directory under /tmp, removed with everything in it at the end.
using TempDir = shmbus::test::TempDir;
using shmbus::test::as_bytes;

// A clock the tests move by hand (StoreOptions::clock).
inline std::atomic<uint64_t> g_fake_now{1'000'000'000};
inline uint64_t fake_clock() { return g_fake_now.load(); }


inline std::string payload_for(uint64_t seq, size_t size = 0) {
  std::string s = "record-" + std::to_string(seq) + "-";
  if (size == 0) size = 20 + seq % 50;
  while (s.size() < size) s += static_cast<char>('a' + (s.size() + seq) % 26);
  s.resize(size);
  return s;
}

inline std::vector<char> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline void write_file(const std::string& path, const std::vector<char>& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

inline uint64_t size_of(const std::string& path) { return std::filesystem::file_size(path); }

inline std::vector<std::string> files_with_suffix(const std::string& dir, const std::string& suf) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n.size() >= suf.size() && n.compare(n.size() - suf.size(), suf.size(), suf) == 0)
      out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// An entry with its payload copied out of the reader.
struct Got {
  EntryKind kind;
  uint64_t seq, end_seq, ts_ns;
  uint32_t type;
  std::string data;
  uint64_t dropped;
  std::string detail;
};

inline Got copy(const Entry& e) {
  return Got{e.kind, e.seq, e.end_seq, e.ts_ns, e.type,
             std::string(reinterpret_cast<const char*>(e.data.data()), e.data.size()),
             e.dropped_bytes, e.detail};
}

// Everything next() returns until kEnd (or an error, which fails the test).
inline std::vector<Got> drain(SegmentReader& r, size_t limit = 1'000'000) {
  std::vector<Got> out;
  for (size_t i = 0; i < limit; ++i) {
    auto e = r.next();
    EXPECT_TRUE(e.ok()) << (e.ok() ? "" : e.error().message);
    if (!e.ok() || e->kind == EntryKind::kEnd) break;
    out.push_back(copy(e.value()));
  }
  return out;
}

inline std::vector<Got> read_all(const std::string& root, const std::string& ns = "ns",
                                 const std::string& st = "st") {
  auto r = SegmentReader::open(root, ns, st);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  if (!r.ok()) return {};
  return drain(r.value());
}

// Options for small, quick tests: tiny segments, pinned clock.
inline StoreOptions small_options(StoreKind kind = StoreKind::kFile) {
  StoreOptions o;
  o.kind = kind;
  o.segment_bytes = 16 << 10;
  o.index_interval = 1 << 10;
  o.write_buffer = 4 << 10;
  o.roll_age = std::chrono::nanoseconds(0);
  o.clock = &fake_clock;
  return o;
}

// Appends record `q` as fill() does.
inline Result<void> append_one(SegmentStore& s, uint64_t q, size_t size = 0) {
  return s.append(q, 1000 * q, static_cast<uint32_t>(q % 7), as_bytes(payload_for(q, size)));
}

// Appends records [from, to) with ts = 1000 * seq and the usual payloads; flushes.
inline void fill(SegmentStore& s, uint64_t from, uint64_t to, size_t size = 0) {
  for (uint64_t q = from; q < to; ++q) {
    auto r = append_one(s, q, size);
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  auto f = s.flush();
  ASSERT_TRUE(f.ok()) << f.error().message;
}

// The store ns/`stream` under `root`: records [0, 100) of 100 bytes in 4 KiB segments
// (28 records each: sealed segments 0, 28, 56 and the active 84), closed.
inline void make_small_segments(const std::string& root, const std::string& stream = "st") {
  auto o = small_options();
  o.segment_bytes = 4096;
  auto s = SegmentStore::open(root, "ns", stream, o);
  ASSERT_TRUE(s.ok()) << s.error().message;
  fill(*s, 0, 100, 100);
}

// Checks that `got` holds exactly the records [from, to) written by fill().
inline void expect_records(const std::vector<Got>& got, uint64_t from, uint64_t to,
                           size_t size = 0) {
  ASSERT_EQ(got.size(), to - from);
  for (uint64_t q = from; q < to; ++q) {
    const Got& g = got[q - from];
    ASSERT_EQ(g.kind, EntryKind::kRecord) << "at seq " << q << ": " << g.detail;
    ASSERT_EQ(g.seq, q);
    ASSERT_EQ(g.ts_ns, 1000 * q);
    ASSERT_EQ(g.type, q % 7);
    ASSERT_EQ(g.data, payload_for(q, size));
  }
}

}  // namespace shmbus::persist::test
