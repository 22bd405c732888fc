// Baseline: the simplest correct single-producer single-consumer ring in shared memory.
// Fixed slots sized to the record (64 B records: 64 B slots), head and tail on their own
// 128-byte lines, each side keeping a process-local cached copy of the other's index.
// It is the floor a general-purpose stream (variable records, many producers, many
// consumers) is compared against.  Its variant with `header_bytes` = 32 sizes each slot
// to the record + 32 bytes, rounded up to 32 (64 B records: 96-byte slots, lying across
// cache lines as shmbus's records do): shmbus's bytes of ring per record, none of its
// header's work, so that the two rows show what the record format's size costs.
#include <atomic>
#include <cstring>
#include <new>
#include <string>

#include "shared_region.h"
#include "spin.h"
#include "transport.h"

namespace bench {
namespace {

struct RingHeader {
  // Written by the consumer only: slots below it are free.
  alignas(128) std::atomic<uint64_t> head{0};
  // Written by the producer only: slots below it are filled.
  alignas(128) std::atomic<uint64_t> tail{0};
};
static_assert(sizeof(RingHeader) == 256);
static_assert(std::atomic<uint64_t>::is_always_lock_free);

struct RingView {
  RingHeader* header;
  std::byte* slots;
  uint64_t nslots;   // power of two
  size_t slot_size;  // multiple of 64, or of 32 with header bytes
  size_t record_size;
  std::byte* slot(uint64_t pos) const { return slots + (pos & (nslots - 1)) * slot_size; }
};

// `batch` > 1: the sender publishes `tail` once per `batch` records (and at flush()), the
// receiver releases `head` once per `batch` records (and before it waits): the same ring
// with its index traffic amortized, the bound of what batching can buy (bench/README.md).
class SpscSender final : public Sender {
 public:
  SpscSender(RingView r, uint32_t batch) : r_(r), batch_(batch) {}
  bool send(View rec) override {
    if (rec.size() > r_.slot_size) {
      error_ = "record larger than the slot";
      return false;
    }
    if (tail_ - head_cache_ >= r_.nslots) {
      flush();  // (the receiver may wait for these)
      while (tail_ - head_cache_ >= r_.nslots)
        // acquire: pairs with the consumer's release of `head`; the slot is free to reuse.
        head_cache_ = r_.header->head.load(std::memory_order_acquire);
    }
    std::memcpy(r_.slot(tail_), rec.data(), rec.size());
    ++tail_;
    if (++staged_ >= batch_) flush();
    return true;
  }
  bool flush() override {
    // release: pairs with the consumer's acquire of `tail`; publishes the slots' bytes.
    if (staged_) r_.header->tail.store(tail_, std::memory_order_release);
    staged_ = 0;
    return true;
  }

 private:
  RingView r_;
  uint32_t batch_;
  uint32_t staged_ = 0;
  uint64_t tail_ = 0;
  uint64_t head_cache_ = 0;
};

class SpscReceiver final : public Receiver {
 public:
  SpscReceiver(RingView r, uint32_t batch) : r_(r), batch_(batch) {}
  RecvStatus recv(View* out) override {
    if (holding_) {
      ++head_;
      holding_ = false;
      // release: pairs with the producer's acquire of `head`; we are done with the slots.
      if (++unreleased_ >= batch_ || head_ == tail_cache_) {
        r_.header->head.store(head_, std::memory_order_release);
        unreleased_ = 0;
      }
    }
    if (head_ == tail_cache_ && !spin_until([&] {
          // acquire: pairs with the producer's release of `tail`.
          tail_cache_ = r_.header->tail.load(std::memory_order_acquire);
          return head_ != tail_cache_;
        }))
      return RecvStatus::kAgain;
    *out = View(r_.slot(head_), r_.record_size);
    holding_ = true;
    return RecvStatus::kOk;
  }

 private:
  RingView r_;
  uint32_t batch_;
  uint32_t unreleased_ = 0;
  uint64_t head_ = 0;
  uint64_t tail_cache_ = 0;
  bool holding_ = false;
};

class SpscRing final : public RegionTransport<RingHeader> {
 public:
  SpscRing(uint32_t batch, uint32_t header_bytes) : batch_(batch), header_bytes_(header_bytes) {}
  std::string name() const override {
    if (header_bytes_)
      return "SPSC ring (fixed slots of record + " + std::to_string(header_bytes_) +
             " B: shmbus's bytes per record)" +
             (batch_ > 1 ? ", index per " + std::to_string(batch_) + " records" : "");
    return batch_ > 1 ? "SPSC ring (fixed slots), index per " + std::to_string(batch_) + " records"
                      : "SPSC ring (fixed slots)";
  }

  bool prepare(const ChannelSpec& spec, std::string* err) override {
    slot_size_ = header_bytes_ ? (spec.record_size + header_bytes_ + 31) & ~size_t(31)
                               : (spec.record_size + 63) & ~size_t(63);
    nslots_ = slots_in(ring_bytes(spec), slot_size_);
    record_size_ = spec.record_size;
    return map_channels(spec.channels, nslots_ * slot_size_, false, err);
  }
  std::unique_ptr<Sender> open_sender(int ch, std::string*) override {
    return std::make_unique<SpscSender>(view(ch), batch_);
  }
  std::unique_ptr<Receiver> open_receiver(int ch, std::string*) override {
    return std::make_unique<SpscReceiver>(view(ch), batch_);
  }

 private:
  RingView view(int ch) const { return RingView{header(ch), data(ch), nslots_, slot_size_, record_size_}; }
  uint32_t batch_;
  uint32_t header_bytes_;
  size_t slot_size_ = 0, record_size_ = 0;
  uint64_t nslots_ = 0;
};

}  // namespace

std::unique_ptr<Transport> make_spsc_ring(uint32_t batch, uint32_t header_bytes) {
  return std::make_unique<SpscRing>(batch, header_bytes);
}

}  // namespace bench
