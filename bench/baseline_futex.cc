// Baseline: the raw futex hand-off between two processes, the floor of a blocking wake-up.
// One record slot per channel in an anonymous shared mapping and one 32-bit word that
// says whether the slot is full.  The sender copies the record, sets the word and always
// calls FUTEX_WAKE; the receiver never spins: when the slot is empty it sleeps in
// FUTEX_WAIT at once.  In a ping-pong both sides sleep on every leg (one-way = RTT/2 is
// one futex wake-up); paced records spaced wider than any spin window measure the same
// wake-up from a send stamp, as the shmbus kBlock consumer's rows do.
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <new>

#include "clock.h"
#include "shared_region.h"
#include "transport.h"

namespace bench {
namespace {

struct alignas(128) Mailbox {
  // 1: the slot holds a record the receiver has not released.  Written by both sides;
  // seq_cst so that the sender's store and the receiver's futex check are totally ordered
  // (the kernel re-checks the word under its own lock, so no wake-up is lost).
  std::atomic<uint32_t> full{0};
};
static_assert(sizeof(Mailbox) == 128);
static_assert(std::atomic<uint32_t>::is_always_lock_free);

long futex(std::atomic<uint32_t>* word, int op, uint32_t val, const timespec* ts) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), op, val, ts, nullptr, 0);
}

struct Channel {
  Mailbox* box;
  std::byte* slot;
  size_t size;
};

class FutexSender final : public Sender {
 public:
  explicit FutexSender(Channel c) : c_(c) {}
  bool send(View rec) override {
    if (rec.size() != c_.size) {
      error_ = "record size differs from the slot";
      return false;
    }
    // The receiver releases the slot before it waits again: spin (it is short), bounded.
    const uint64_t deadline = mono_ns() + 10'000'000'000ull;
    for (uint32_t i = 1; c_.box->full.load(std::memory_order_acquire) != 0; ++i)
      if ((i & 0xffff) == 0 && mono_ns() > deadline) {
        error_ = "receiver never released the slot";
        return false;
      }
    std::memcpy(c_.slot, rec.data(), rec.size());
    // seq_cst (release part): publishes the slot's bytes to the receiver's acquire load.
    c_.box->full.store(1, std::memory_order_seq_cst);
    futex(&c_.box->full, FUTEX_WAKE, INT_MAX, nullptr);  // always: the raw floor
    return true;
  }

 private:
  Channel c_;
};

class FutexReceiver final : public Receiver {
 public:
  explicit FutexReceiver(Channel c) : c_(c) {}
  RecvStatus recv(View* out) override {
    if (holding_) {
      // release: the sender's acquire load sees the slot free only after we read it.
      c_.box->full.store(0, std::memory_order_release);
      holding_ = false;
    }
    // acquire: pairs with the sender's store of 1; the slot's bytes follow.
    while (c_.box->full.load(std::memory_order_acquire) == 0) {
      const timespec ts{0, 100'000'000};
      if (futex(&c_.box->full, FUTEX_WAIT, 0, &ts) != 0 && errno == ETIMEDOUT)
        return RecvStatus::kAgain;
    }
    *out = View(c_.slot, c_.size);
    holding_ = true;
    return RecvStatus::kOk;
  }

 private:
  Channel c_;
  bool holding_ = false;
};

class FutexTransport final : public RegionTransport<Mailbox> {
 public:
  std::string name() const override { return "raw futex (2 processes, always FUTEX_WAKE)"; }

  bool prepare(const ChannelSpec& spec, std::string* err) override {
    record_size_ = spec.record_size;
    return map_channels(spec.channels, (spec.record_size + 127) / 128 * 128, false, err);
  }
  std::unique_ptr<Sender> open_sender(int ch, std::string*) override {
    return std::make_unique<FutexSender>(channel(ch));
  }
  std::unique_ptr<Receiver> open_receiver(int ch, std::string*) override {
    return std::make_unique<FutexReceiver>(channel(ch));
  }

 private:
  Channel channel(int c) const { return Channel{header(c), data(c), record_size_}; }
  size_t record_size_ = 0;
};

}  // namespace

std::unique_ptr<Transport> make_futex() { return std::make_unique<FutexTransport>(); }

}  // namespace bench
