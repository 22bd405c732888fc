// Baseline: the least a ring of variable-size records can do, in shmbus's record format.
// Each record is a 32-byte header (a commit word and the size) followed by its payload,
// padded to 32 bytes, one after the other in a byte ring (64 B records: 96 bytes, two
// cache lines, as in shmbus); the producer writes the size and the payload, then stores
// the commit word (release); the reader spins on the commit word of the next record,
// then reads the payload behind it; a consumer index on its own line gives the room
// back. No sequence numbers, no claim cursor, no sleepers, no validation: one producer,
// one consumer, and every record's header trusted.  Against the SPSC ring (fixed slots
// sized to the record, the reader spinning on a separate index) it shows what the
// format costs (a header read before the payload, records across cache lines and
// pages); against shmbus, what shmbus does beyond it.  Stamped, the producer also reads
// the TSC for every record and writes it into the header (shmbus stamps every record with
// a wall-clock time extrapolated from one TSC read): what that read alone costs.
#include <x86intrin.h>

#include <atomic>
#include <cstring>
#include <new>
#include <string>

#include "shared_region.h"
#include "spin.h"
#include "transport.h"

namespace bench {
namespace {

constexpr uint64_t kHeaderBytes = 32;
constexpr uint64_t kPadBit = uint64_t{1} << 63;  // a commit word with it: skip to the ring start

// The record header, at a 32-byte aligned offset of the ring.
struct RecordHead {
  // release by the producer after the size and the payload; acquire by the reader.
  // Position + 1 of the record (positions only grow: never a stale lap's value), with
  // kPadBit for the pad that fills the ring's end.
  std::atomic<uint64_t> commit;
  uint64_t size;  // plain: published by the release of `commit`
  uint64_t tsc;   // stamped: the TSC when the record was written (plain, as `size`)
  uint64_t unused;
};
static_assert(sizeof(RecordHead) == kHeaderBytes);
static_assert(std::atomic<uint64_t>::is_always_lock_free);

struct RingHeader {
  // Written by the consumer only: every byte below it is free (release; the producer
  // acquires it before it writes over them).
  alignas(128) std::atomic<uint64_t> head{0};
};
static_assert(sizeof(RingHeader) == 128);

struct RingView {
  RingHeader* header;
  std::byte* data;
  uint64_t cap;  // power of two, multiple of 32
  RecordHead* at(uint64_t pos) const { return reinterpret_cast<RecordHead*>(data + (pos & (cap - 1))); }
};

uint64_t span_of(size_t size) { return kHeaderBytes + ((uint64_t(size) + 31) & ~uint64_t{31}); }

class HeaderRingSender final : public Sender {
 public:
  HeaderRingSender(RingView r, bool stamped) : r_(r), stamped_(stamped) {}
  bool send(View rec) override {
    const uint64_t span = span_of(rec.size());
    if (span > r_.cap / 2) {
      error_ = "record larger than half the ring";
      return false;
    }
    const uint64_t to_end = r_.cap - (pos_ & (r_.cap - 1));
    const uint64_t pad = span <= to_end ? 0 : to_end;
    while (pos_ + pad + span - head_cache_ > r_.cap)
      // acquire: pairs with the consumer's release of `head`; the bytes are free.
      head_cache_ = r_.header->head.load(std::memory_order_acquire);
    if (pad) {
      // release: the reader skips to the ring's start (nothing else to publish).
      r_.at(pos_)->commit.store((pos_ + 1) | kPadBit, std::memory_order_release);
      pos_ += pad;
    }
    RecordHead* h = r_.at(pos_);
    h->size = rec.size();
    if (stamped_) h->tsc = __rdtsc();
    std::memcpy(reinterpret_cast<std::byte*>(h) + kHeaderBytes, rec.data(), rec.size());
    // release: the size and the payload above are visible to whoever acquires it.
    h->commit.store(pos_ + 1, std::memory_order_release);
    pos_ += span;
    return true;
  }

 private:
  RingView r_;
  bool stamped_;
  uint64_t pos_ = 0;
  uint64_t head_cache_ = 0;
};

class HeaderRingReceiver final : public Receiver {
 public:
  explicit HeaderRingReceiver(RingView r) : r_(r) {}
  RecvStatus recv(View* out) override {
    if (held_) {
      pos_ += held_;
      held_ = 0;
      // release: pairs with the producer's acquire of `head`; we are done with the bytes.
      r_.header->head.store(pos_, std::memory_order_release);
    }
    for (;;) {
      RecordHead* h = r_.at(pos_);
      uint64_t c = 0;
      if (!spin_until([&] {
            // acquire: pairs with the producer's release of `commit`.
            c = h->commit.load(std::memory_order_acquire);
            return (c & ~kPadBit) == pos_ + 1;
          }))
        return RecvStatus::kAgain;
      if (c & kPadBit) {
        pos_ += r_.cap - (pos_ & (r_.cap - 1));
        continue;
      }
      const uint64_t size = h->size;
      if (span_of(size) > r_.cap / 2) {
        error_ = "record header damaged";
        return RecvStatus::kError;
      }
      *out = View(reinterpret_cast<const std::byte*>(h) + kHeaderBytes, size);
      held_ = span_of(size);
      return RecvStatus::kOk;
    }
  }

 private:
  RingView r_;
  uint64_t pos_ = 0;
  uint64_t held_ = 0;  // span of the record handed out last (released at the next recv)
};

class HeaderRing final : public RegionTransport<RingHeader> {
 public:
  explicit HeaderRing(bool stamped) : stamped_(stamped) {}
  std::string name() const override {
    return stamped_ ? "header ring, stamped (a TSC read per record)"
                    : "header ring (32 B header beside the payload)";
  }

  bool prepare(const ChannelSpec& spec, std::string* err) override {
    // The bytes of shmbus's rings in the same cells.
    cap_ = ring_bytes(spec);
    // Populated up front, as shmbus's open does (no page fault in the first lap).
    return map_channels(spec.channels, cap_, true, err);
  }
  std::unique_ptr<Sender> open_sender(int ch, std::string*) override {
    return std::make_unique<HeaderRingSender>(view(ch), stamped_);
  }
  std::unique_ptr<Receiver> open_receiver(int ch, std::string*) override {
    return std::make_unique<HeaderRingReceiver>(view(ch));
  }

 private:
  RingView view(int ch) const { return RingView{header(ch), data(ch), cap_}; }
  bool stamped_;
  uint64_t cap_ = 0;
};

}  // namespace

std::unique_ptr<Transport> make_header_ring(bool stamped) {
  return std::make_unique<HeaderRing>(stamped);
}

}  // namespace bench
