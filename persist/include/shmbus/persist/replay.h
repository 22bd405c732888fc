// shmbus/persist/replay.h: the replay consumer: store -> live ring with no gap and no
// duplicate.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "shmbus/consumer.h"
#include "shmbus/result.h"
#include "shmbus/stream.h"

namespace shmbus::persist {

enum class ReplayStatus : uint8_t {
  kOk,        // *rec is the next record
  kTimeout,
  kGap,       // sequences [gap().from, gap().to) will not come: gap().reason says why
  kClosed,
  kError,     // error() says what
};

struct ReplayGap {
  uint64_t from = 0, to = 0;
  std::string reason;   // "deleted", "not persisted", "corrupt", "lost (not persisted stream)",
                        // "never published (claims aborted or abandoned)", "no longer in
                        // the ring (the stream is not persisted)" (a start below its oldest)
  // Nothing was published under these numbers (claims aborted, or abandoned by dead
  // producers): no record is missing.  A reader that counts losses leaves it out.
  bool never_published = false;
};

struct ReplayOptions {
  StartFrom start = StartFrom::earliest();
  WaitStrategy wait = WaitStrategy::kBlock;
  bool read_only = false;
  // Where to find the store when the stream has no ring (after a reboot, before anyone
  // re-creates it): resolved as resolve_data_dir() does.
  std::string data_dir;
};

// A tailing consumer that starts anywhere: records older than the ring come from the
// stream's store (found through the stream header), then it switches to the live ring
// with no gap and no duplicate: at the store's end, or as soon as the record it owes
// next is in the ring again (past the ring's oldest quarter, while the name still
// refers to the ring found at open()), even if the persister keeps the store level with
// the ring.  Lapped on the ring, it goes back to the store.  It holds a tailing consumer
// slot of the ring from open() on, also while it reads the store (so the switch is a
// seek, not a new mapping of the ring): `stat` shows it, and `rm` without --force
// refuses while it runs.  On a stream that is not persisted it is a plain tailing
// consumer (laps are kGap).  A stream whose ring is gone (a reboot) but whose store is
// in the data dir is read from the store; at its end poll() waits for the ring to come
// back (kTimeout meanwhile).
class ReplayConsumer {
 public:
  static Result<ReplayConsumer> open(std::string_view ns, std::string_view stream,
                                     const ReplayOptions& opts = {});
  ReplayConsumer(ReplayConsumer&&) noexcept;
  ReplayConsumer& operator=(ReplayConsumer&&) noexcept;
  ~ReplayConsumer();

  // Thread: one at a time.  A record's data is valid until the next poll.  Returns
  // within about `timeout` (plus the time to read what the store holds).  Records that
  // neither the ring nor the store has any more, with no persister attached to store
  // them, are reported as kGap "not persisted".
  [[nodiscard]] ReplayStatus poll(Record* rec, std::chrono::nanoseconds timeout);
  const ReplayGap& gap() const noexcept;
  const Error& error() const noexcept;
  uint64_t next_seq() const noexcept;
  bool from_store() const noexcept;    // reading the store now (else the ring)
  // Whether the stream's name still refers to the ring being read (two system calls: for
  // idle moments): kSame while reading the store of a ring that existed, kRemoved when
  // there is no ring.
  NameState name_state() const noexcept;
  // Times it went from the store to the live ring and found it continuing there (a
  // record with the next sequence, or nothing newer yet).
  uint64_t switches_to_live() const noexcept;

  struct Impl;

 private:
  explicit ReplayConsumer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shmbus::persist
