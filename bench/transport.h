// bench/transport.h: the one interface every measured IPC path implements.
//
// A Transport owns a set of one-way channels. The parent calls prepare() before forking
// (create rings, queues, streams, fds) and cleanup() after the children exited; each child
// opens the ends it uses. Every sender copies the record from the caller's buffer into
// the transport (loan/claim transports copy into the loaned slot); every receiver hands
// back a view valid until its next recv(). Workloads (workloads.h) only see this.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace bench {

using View = std::span<const std::byte>;

enum class RecvStatus : uint8_t { kOk, kAgain, kError };

class Sender {
 public:
  virtual ~Sender() = default;
  // Thread: the opening process. Blocks (or spins) until the transport took the record.
  // False on error, with the reason in error().
  virtual bool send(View record) = 0;
  // Where the caller may build its next record of `size` bytes so that send() takes it
  // there without a second copy (a batching sender's batch, as an application that
  // builds its batch in place), filled with 0x5a like the caller's own buffer; empty:
  // build it anywhere (send() copies it, as every transport copies into its ring).
  virtual std::span<std::byte> place(size_t /*size*/) { return {}; }
  // Makes every record taken by send() visible (batching senders hold some back).
  virtual bool flush() { return true; }
  const std::string& error() const noexcept { return error_; }

 protected:
  std::string error_;
};

class Receiver {
 public:
  virtual ~Receiver() = default;
  // Thread: the opening process. kAgain: nothing within about 100 ms (spinning
  // transports) - the caller decides when a silence is a stall.
  virtual RecvStatus recv(View* record) = 0;
  virtual uint64_t lost() const noexcept { return 0; }          // transport-counted losses
  virtual uint64_t record_ts_ns() const noexcept { return 0; }  // library stamp, 0 if none
  // After the caller read the record recv() returned: were its bytes the record's?  false:
  // a reader in place was overwritten meanwhile; the record counts in lost(), drop it.
  virtual bool validate() noexcept { return true; }
  const std::string& error() const noexcept { return error_; }

 protected:
  std::string error_;
};

struct ChannelSpec {
  int channels = 1;          // ping-pong uses 2 (0: ping, 1: pong)
  size_t record_size = 64;   // every record of the run has this size
  bool latency = false;      // a latency run (smaller rings where that matters)
};

// The bytes of shmbus's ring in a cell of this spec; the ring baselines take as many.
inline size_t ring_bytes(const ChannelSpec& spec) { return spec.latency ? (1u << 20) : (4u << 20); }

class Transport {
 public:
  virtual ~Transport() = default;
  virtual std::string name() const = 0;
  // Empty when usable; else why this row is n/a (missing at build time, no daemon ...).
  virtual std::string unavailable() const { return {}; }
  // Parent, before fork. False with *err on failure.
  virtual bool prepare(const ChannelSpec& spec, std::string* err) = 0;
  // Child, after fork. Null with *err on failure.
  virtual std::unique_ptr<Sender> open_sender(int channel, std::string* err) = 0;
  virtual std::unique_ptr<Receiver> open_receiver(int channel, std::string* err) = 0;
  // Parent, after the children exited. Returns a problem worth reporting, or empty.
  virtual std::string cleanup() = 0;
  // Several senders may share one channel.
  virtual bool multi_producer() const { return false; }
};

// Factories, one per baseline_*.cc / shmbus_transport.cc.
// batch > 1: the ring's indices published once per `batch` records (a bound for batching).
// header_bytes > 0: slots of record + header_bytes, rounded up to 32 (shmbus's bytes per
// record with 32).
std::unique_ptr<Transport> make_spsc_ring(uint32_t batch = 1, uint32_t header_bytes = 0);
// shmbus's record format (a 32-byte header beside the payload) with nothing else.
std::unique_ptr<Transport> make_header_ring(bool stamped = false);
// A fixed-slot ring that several producers claim with a fetch_add (baseline_mpsc.cc).
std::unique_ptr<Transport> make_mpsc_ring();
std::unique_ptr<Transport> make_pipe();
std::unique_ptr<Transport> make_unix_socket();
std::unique_ptr<Transport> make_boost_mq();
std::unique_ptr<Transport> make_zmq();
std::unique_ptr<Transport> make_iceoryx();   // needs RouDi running: see roudi.h
std::unique_ptr<Transport> make_futex();     // baseline_futex.cc: the raw futex wake-up

// A row that cannot run here: prepare() fails with `reason`.
std::unique_ptr<Transport> make_unavailable(std::string name, std::string reason);

// kDurableBlock: the consumer waits with the default WaitStrategy::kBlock (spin, yield,
// futex sleep) instead of busy-spinning.  kDurableBatch: the sender gathers 32 records
// and publishes them with one publish_batch(), and the receiver reads with poll_batch()
// of up to kShmbusConsumerBatch (throughput only).  kDurableCopy: a durable consumer whose
// receiver copies each record into a private buffer, as a tailing reader must before it
// can tell whether the bytes were overwritten: the tailing row's bound (throughput only).
// kTailingInPlace: a tailing consumer reading with poll_in_place(), validate() after the
// receiver read the record (throughput only; a record found overwritten counts lost).
enum class ShmbusMode : uint8_t { kDurable, kTailing, kDurableClaim, kDurableBlock, kDurableBatch,
                                  kDurableSingle, kDurableSingleBatch, kDurableCopy,
                                  kTailingInPlace };
inline constexpr size_t kShmbusBatch = 32;
inline constexpr size_t kShmbusConsumerBatch = 64;
std::unique_ptr<Transport> make_shmbus(ShmbusMode mode);

}  // namespace bench
