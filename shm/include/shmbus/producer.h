// shmbus/producer.h: publishing to a stream: copy, batch, zero-copy claim/commit, and
// waiting for durability on a persisted stream.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "shmbus/result.h"
#include "shmbus/stream.h"

namespace shmbus {

enum class FullPolicy : uint8_t { kWait, kFail };

struct ProducerOptions {
  WaitStrategy wait = WaitStrategy::kBlock;  // how a full ring is waited on (stream.h)
  FullPolicy when_full = FullPolicy::kWait;
  std::chrono::nanoseconds full_timeout = std::chrono::seconds(10);
};

enum class PubStatus : uint8_t {
  kOk,
  kTooLarge,    // payload larger than max_record
  kFull,        // no room (policy kFail, or the wait timed out)
  kAbandoned,   // Claim::abort(): the claim's header no longer held its pending tag (only a
                // forged header can, while its producer lives).  Builds before 2026-12-02
                // also refused a multi-producer claim whose header held a gap for it.
  kClosed,
  kTimeout,     // wait_durable: not durable in time (is a persister running?)
  kCorrupt,     // the stream's cursors do not add up, or its object shrank under the
                // mapping: its shared memory was damaged (remove and recreate it)
  kNotPersisted,  // wait_durable: the record will never be durable: the persister
                  // recorded it as lost (a let-go stream whose persister was away)
};

struct [[nodiscard]] PubResult {
  PubStatus status;
  uint64_t seq;      // first sequence assigned (valid when kOk)
  bool ok() const noexcept { return status == PubStatus::kOk; }
};

class Claim;

class Producer {
 public:
  // On a single-producer stream (StreamOptions::single_producer) open fails with kBusy
  // while another producer of it lives (in any process, this one too).  A child of
  // fork() gets kClosed from its parent's producer and from the claims it inherited
  // (every stream): it opens a producer of its own.
  static Result<Producer> open(std::string_view ns, std::string_view name,
                               const ProducerOptions& opts = {});
  Producer(Producer&&) noexcept;
  Producer& operator=(Producer&&) noexcept;
  ~Producer();

  // Thread: one thread at a time per Producer object (make one per thread).
  PubResult publish(Bytes payload, uint32_t type = 0) noexcept;
  // The same for text, and for bytes at a pointer (inline: they only make the span).
  PubResult publish(std::string_view payload, uint32_t type = 0) noexcept {
    return publish(Bytes(reinterpret_cast<const std::byte*>(payload.data()), payload.size()), type);
  }
  PubResult publish(const void* data, size_t size, uint32_t type = 0) noexcept {
    return publish(Bytes(static_cast<const std::byte*>(data), size), type);
  }
  // publish("hi", 7) would be (data, size) by the rules above (the pointer form needs no
  // user-defined conversion) and read 7 bytes from a 3-byte literal, where a reader
  // means the text "hi" with type 7.  A char array and one integer is therefore refused
  // at compile time: write publish(std::string_view("hi"), 7) for text with a type, or
  // publish(static_cast<const void*>(buf), n) / publish(buf, n, type) for bytes.
  template <size_t N, std::integral T>
  PubResult publish(const char (&)[N], T) = delete;
  // Publishes all payloads as consecutive sequence numbers (one claim).
  PubResult publish_batch(std::span<const Bytes> payloads, uint32_t type = 0) noexcept;
  // Zero-copy: reserve `size` bytes; fill claim.data(), then commit() or abort().
  // On failure returns an invalid Claim and sets *status.
  Claim claim(size_t size, uint32_t type, PubStatus* status) noexcept;

  // Waits until the persister has made record `seq` durable (persisted streams).
  // kOk, kTimeout, kClosed, or kNotPersisted: the persister recorded `seq` as lost (it
  // is never acknowledged as durable; with more than 16 lost ranges recorded past
  // `seq` before this call looked, it cannot tell and says kNotPersisted too).
  PubStatus wait_durable(uint64_t seq, std::chrono::nanoseconds timeout) noexcept;
  // publish() then wait_durable().
  PubResult publish_durable(Bytes payload, uint32_t type, std::chrono::nanoseconds timeout) noexcept;

  uint64_t max_record() const noexcept;
  uint64_t capacity() const noexcept;
  // Whether the stream's name still refers to the stream this producer publishes into.
  // A producer keeps the ring it opened, as a writer keeps a deleted file: after `shmbus
  // rm --force` (kRemoved), or that and a create under the name (kReplaced), publish()
  // still succeeds, into a ring no new reader opens.  System calls (an fstat and an
  // lstat): for idle moments and every few thousand records, not per record (`shmbus
  // pub` asks whenever its input pauses, every 4096 records and at the end).
  NameState name_state() const noexcept;
  void close() noexcept;
  bool is_open() const noexcept { return impl_ != nullptr; }

  struct Impl;

 private:
  friend class Claim;
  explicit Producer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;  // shared with its outstanding Claims
};

// A claimed, not yet committed record. Move-only; destroying it uncommitted aborts it.
// It shares its producer's state: it stays valid when the Producer is moved, and after
// the Producer is closed or destroyed commit() aborts the record and returns kClosed.
class Claim {
 public:
  Claim() = default;
  Claim(Claim&& o) noexcept;
  Claim& operator=(Claim&& o) noexcept;
  Claim(const Claim&) = delete;
  Claim& operator=(const Claim&) = delete;
  ~Claim();

  MutableBytes data() const noexcept { return data_; }
  uint64_t seq() const noexcept { return seq_; }
  bool valid() const noexcept { return producer_ != nullptr; }
  // Thread: the claiming thread. Makes the record visible.
  [[nodiscard]] PubStatus commit() noexcept;
  // Makes the record visible with only the first `size` bytes of data() (a claim sized
  // for the largest message, filled with a smaller one).  kTooLarge (nothing done, the
  // claim stays open) when `size` exceeds data().size().  The ring bytes after them stay
  // reserved until the ring wraps (readers skip them).
  [[nodiscard]] PubStatus commit(size_t size) noexcept;
  // Turns the record into a gap that consumers skip.
  PubStatus abort() noexcept;

 private:
  friend class Producer;
  std::shared_ptr<Producer::Impl> producer_;
  uint64_t pos_ = 0;
  uint64_t seq_ = 0;
  MutableBytes data_{};
};

}  // namespace shmbus
