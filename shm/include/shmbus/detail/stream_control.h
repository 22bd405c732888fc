// shmbus/detail/stream_control.h: StreamControl, the slow-path handle on a stream's
// header that persist/ (the persister, replay, administration) and the tests use.
// Internal: not part of the public face (users do not include it; it is not shipped).
// The persistence fields it writes are documented in shm/FORMAT.md.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "shmbus/result.h"
#include "shmbus/stream.h"

namespace shmbus {

class StreamMapping;  // shared mapping, kept alive by every handle that uses it

// The slow-path handle on a stream's header that the persister and the tools use:
// persistence settings, the durable position, the deletion watermark.
class StreamControl {
 public:
  // read_only: for readers (deleted_below(), persist()); the setters need write access:
  // on a read-only handle they write nothing and say so (kPermission, or false).
  static Result<StreamControl> open(std::string_view ns, std::string_view name,
                                    bool read_only = false);
  StreamControl(StreamControl&&) noexcept;
  StreamControl& operator=(StreamControl&&) noexcept;
  ~StreamControl();

  Result<void> set_persist(const PersistSettings& s);
  // Ends persistence in the header (readers no longer look for a store through it).
  Result<void> clear_persist();
  std::optional<PersistSettings> persist() const;
  // Removes durable consumer group `group` (its position goes; it no longer holds
  // producers back).  kBusy while a live process holds it; false if there is none.
  Result<bool> remove_group(std::string_view group);
  // The setters below return false, having written nothing, when the handle was opened
  // read_only (and record_lost() for an empty range); true when they wrote.
  //
  // Thread: the persister.  Release-publishes that records below `seq` are durable and
  // wakes producers waiting in wait_durable().
  bool set_durable_seq(uint64_t seq) noexcept;
  uint64_t durable_seq() const noexcept;
  bool set_oldest_persisted_seq(uint64_t seq) noexcept;
  // Thread: the persister.  Records [from, to) as never to be stored, before
  // set_durable_seq() passes it: wait_durable() then answers kNotPersisted for them.
  bool record_lost(uint64_t from, uint64_t to) noexcept;
  // Raises the deletion watermark (never lowers it: a lower `seq` is no change, true).
  bool raise_deleted_below(uint64_t seq) noexcept;
  uint64_t deleted_below() const noexcept;
  bool beat() noexcept;     // persister heartbeat
  // The sequences the ring holds now, [oldest, next): what stream_info() says of them,
  // without its system calls (a few loads of the header; read racily: the ring moves on).
  struct RingWindow {
    uint64_t oldest = 0, next = 0;
    uint64_t next_pos = 0;  // the claim cursor's position (where `next` will lie)
  };
  RingWindow ring_window() const noexcept;
  // Whether the name still refers to this stream (two system calls).
  NameState name_state() const noexcept;
  // Whether users other than this process's effective one can write the header (the
  // object is theirs, or group/other-writable): then its deletion watermark is anyone's
  // word, not the store owner's (one system call; true when it cannot tell).  Sticky: once
  // true for this handle (at open or since), always true (a chmod does not take back a
  // mapping another process opened before it).
  bool others_can_write() const noexcept;
  // The deletion watermark as far as a reader of the store may take it: the header's on
  // a ring only this user could write when this handle was opened (no system call), else
  // 0 (the store's own watermark, which only its owner raises, is the word then).
  uint64_t deleted_below_for_store() const noexcept;
  // The persister's store statistics, published for `stat`.  granularity: 0 not pmem,
  // 1 byte, 2 cache line, 3 page.
  // store_errors: write and sync failures, cumulative over the stream's persisters.
  bool set_store_stats(uint64_t disk_bytes, uint64_t segments, uint64_t deleted_records,
                       uint64_t deleted_bytes, uint32_t granularity, uint32_t store_errors = 0) noexcept;
  const std::string& ns() const noexcept;
  const std::string& name() const noexcept;

 private:
  StreamControl() = default;
  std::shared_ptr<StreamMapping> m_;
  mutable bool others_write_ = true;  // others_can_write(), as of open and sticky
};

}  // namespace shmbus
