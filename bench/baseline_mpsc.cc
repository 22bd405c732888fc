// Baseline: a simple correct multi-producer single-consumer ring in shared memory, to set
// shmbus's two-producer row against.  Fixed slots of the record + a 32-byte header (64 B
// records: 96-byte slots, shmbus's bytes per record), each header holding the slot's
// commit word.  A producer checks for room against the reader's index (cached, as the
// SPSC ring's), takes a position with a CAS of the shared claim counter, writes the
// payload and stores position + 1 in the commit word; the reader waits for that value,
// reads, and gives the room back through its index.  Room is checked before the claim (as
// shmbus does), so a producer waiting for room holds no position the reader needs.
// Producers and the reader busy-spin, as shmbus's rows do.  No gaps, no dead-producer
// recovery, no validation.  With two producers sharing one core (the bench's 2-producer
// cells), a producer preempted between its claim and its commit holds the reader at its
// slot until it runs again, as in shmbus: the row with 2 producers against the row with
// 1 shows what three busy processes on two cores cost a ring that delivers in claim order.
#include <atomic>
#include <cstring>
#include <new>
#include <string>

#include "shared_region.h"
#include "spin.h"
#include "transport.h"

namespace bench {
namespace {

constexpr size_t kSlotHeader = 32;

struct SlotHead {
  // Position + 1 of the record written here (positions only grow: never a stale lap's
  // value).  Release by the producer after the size and payload; acquire by the reader.
  std::atomic<uint64_t> commit;
  uint64_t size;  // plain: published by the producer's release of `commit`
  uint64_t unused[2];
};
static_assert(sizeof(SlotHead) == kSlotHeader);
static_assert(std::atomic<uint64_t>::is_always_lock_free);

struct RingHeader {
  // The next position to claim: CAS by every producer (relaxed: the slot's commit word
  // orders the payload; the counter only hands out positions).
  alignas(128) std::atomic<uint64_t> claim{0};
  // Written by the reader only: every slot below it is free (release; a producer
  // acquires it before it claims over them).
  alignas(128) std::atomic<uint64_t> head{0};
};
static_assert(sizeof(RingHeader) == 256);

struct RingView {
  RingHeader* header;
  std::byte* slots;
  uint64_t nslots;  // power of two
  size_t slot_size;
  SlotHead* at(uint64_t pos) const {
    return reinterpret_cast<SlotHead*>(slots + (pos & (nslots - 1)) * slot_size);
  }
};

class MpscSender final : public Sender {
 public:
  explicit MpscSender(RingView r) : r_(r) {}
  bool send(View rec) override {
    if (rec.size() + kSlotHeader > r_.slot_size) {
      error_ = "record larger than the slot";
      return false;
    }
    uint64_t pos = r_.header->claim.load(std::memory_order_relaxed);
    for (;;) {
      // Signed: a `pos` read before the reader passed it (the head loaded since) is
      // behind head_cache_; the CAS below then fails and reloads it.
      while (int64_t(pos - head_cache_) >= int64_t(r_.nslots))
        // acquire: pairs with the reader's release of `head`; the slots are free.
        head_cache_ = r_.header->head.load(std::memory_order_acquire);
      // relaxed: takes the position only (a failure reloads `pos`).
      if (r_.header->claim.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) break;
    }
    SlotHead* s = r_.at(pos);
    s->size = rec.size();
    std::memcpy(reinterpret_cast<std::byte*>(s) + kSlotHeader, rec.data(), rec.size());
    // release: the size and payload are visible to the reader that acquires it.
    s->commit.store(pos + 1, std::memory_order_release);
    return true;
  }

 private:
  RingView r_;
  uint64_t head_cache_ = 0;
};

class MpscReceiver final : public Receiver {
 public:
  explicit MpscReceiver(RingView r) : r_(r) {}
  RecvStatus recv(View* out) override {
    if (holding_) {
      ++head_;
      holding_ = false;
      // release: pairs with the producers' acquire of `head`; we are done with the slot.
      r_.header->head.store(head_, std::memory_order_release);
    }
    SlotHead* s = r_.at(head_);
    // acquire: pairs with the producer's release of `commit`.
    if (!spin_until([&] { return s->commit.load(std::memory_order_acquire) == head_ + 1; }))
      return RecvStatus::kAgain;
    const uint64_t size = s->size;
    if (size + kSlotHeader > r_.slot_size) {
      error_ = "slot header damaged";
      return RecvStatus::kError;
    }
    *out = View(reinterpret_cast<const std::byte*>(s) + kSlotHeader, size);
    holding_ = true;
    return RecvStatus::kOk;
  }

 private:
  RingView r_;
  uint64_t head_ = 0;
  bool holding_ = false;
};

class MpscRing final : public RegionTransport<RingHeader> {
 public:
  std::string name() const override {
    return "MPSC ring (fixed slots of record + 32 B, CAS claim)";
  }
  bool multi_producer() const override { return true; }

  bool prepare(const ChannelSpec& spec, std::string* err) override {
    slot_size_ = (spec.record_size + kSlotHeader + 31) & ~size_t(31);
    nslots_ = slots_in(ring_bytes(spec), slot_size_);
    // Populated up front, as shmbus's open does (no page fault in the first lap); a
    // commit word of 0 matches no position + 1.
    return map_channels(spec.channels, nslots_ * slot_size_, true, err);
  }
  std::unique_ptr<Sender> open_sender(int ch, std::string*) override {
    return std::make_unique<MpscSender>(view(ch));
  }
  std::unique_ptr<Receiver> open_receiver(int ch, std::string*) override {
    return std::make_unique<MpscReceiver>(view(ch));
  }

 private:
  RingView view(int ch) const { return RingView{header(ch), data(ch), nslots_, slot_size_}; }
  size_t slot_size_ = 0;
  uint64_t nslots_ = 0;
};

}  // namespace

std::unique_ptr<Transport> make_mpsc_ring() { return std::make_unique<MpscRing>(); }

}  // namespace bench
