// in_state.h: what `bridge in` has published, per partition, in a small mmap'd file that
// survives kill -9, so that a restarted bridge skips (and counts) the messages Kafka gives
// it again that it had already published.
//
// Kafka's committed offset lags the published messages by up to one commit interval; a
// bridge that dies in between is given those messages again.  The state file
// /dev/shm/shmbus-bridge-in.HASH.state (HASH: 64-bit FNV-1a of namespace, stream, topic
// and group; 0600, the caller's, never followed through a symlink) holds one slot per
// partition (partitions >= kInStateSlots are not tracked: at least once there):
//   base     the offset this run of the partition began at (the first message read after
//            the assignment, then each committed offset)
//   base_fp  a fingerprint of the message at `base` (0: not seen yet)
//   published  the highest offset published into the stream (-1: none since `base`)
// A restarted bridge whose first message of a partition is at `base` with the same
// fingerprint (the group resumed exactly where the dead one's run began: no rewind, no
// re-created topic) skips every message up to `published`.  Updated with plain stores into
// the mapping after each publish: no system call per message.  The header binds the file
// to the stream's identity (its created_ns) and to a second hash of the key; a file that
// does not match (a re-created stream, a hash collision, another version) is replaced,
// unless a running bridge still holds it (then open() fails with kBusy).
// What stays at least once: a crash between a publish and the store that follows it.
//
// Every bridge of the key holds a shared flock on the file while it runs (the kernel drops
// it when the process dies: no lock a dead bridge keeps).  A clean exit removes the file
// only when it can take the lock exclusively, that is when no other bridge of the group
// still maps it: removing it under a running one left that one writing into a file no
// successor would open (what it published but had not committed was then repeated after
// its crash).  An opener that locks a file already removed (it lost the race against the
// last exit) sees that the path no longer names it and opens again.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "shmbus/result.h"

namespace shmbus::kafka::detail {

inline constexpr char kInStateMagic[8] = {'S', 'H', 'M', 'B', 'I', 'N', 'S', 'T'};
inline constexpr uint32_t kInStateVersion = 1;
inline constexpr uint32_t kInStateSlots = 4096;

struct InStateHeader {
  char magic[8];               // kInStateMagic
  uint32_t version;            // kInStateVersion
  uint32_t slots;              // kInStateSlots
  uint64_t key_check;          // FNV-1a of the key with another basis than the file name's
  uint64_t stream_created_ns;  // the stream's identity (StreamInfo::created_ns)
  uint8_t reserved[32];
};
static_assert(sizeof(InStateHeader) == 64);
static_assert(offsetof(InStateHeader, version) == 8);
static_assert(offsetof(InStateHeader, slots) == 12);
static_assert(offsetof(InStateHeader, key_check) == 16);
static_assert(offsetof(InStateHeader, stream_created_ns) == 24);
static_assert(std::is_trivially_copyable_v<InStateHeader> && std::is_standard_layout_v<InStateHeader>);

// Written only by the bridge that holds the partition; read by a successor after it died
// (or, rarely, while it is stalled).  Relaxed everywhere: a reader that runs after the
// writer died sees whatever the writer stored (the mapping is the file's page cache); the
// fields of one slot are cross-checked (base with base_fp with the message) rather than
// ordered against each other.
struct InStateSlot {
  std::atomic<int64_t> base;
  std::atomic<uint64_t> base_fp;
  std::atomic<int64_t> published;
  uint64_t reserved;
};
static_assert(sizeof(InStateSlot) == 32);
static_assert(offsetof(InStateSlot, base_fp) == 8);
static_assert(offsetof(InStateSlot, published) == 16);
static_assert(std::atomic<int64_t>::is_always_lock_free && std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::is_standard_layout_v<InStateSlot>);

inline constexpr size_t kInStateBytes = sizeof(InStateHeader) + kInStateSlots * sizeof(InStateSlot);

// A fingerprint of a message (never 0): its timestamp, key and value.
uint64_t message_fingerprint(int64_t timestamp_ms, const void* key, size_t key_len, const void* value,
                             size_t value_len);

// Thread: the bridge's own thread only.
class InState {
 public:
  // Opens or creates the state of (ns, stream, topic, group) for the stream incarnation
  // `stream_created_ns`.  An error (not our file, /dev/shm not writable) leaves the bridge
  // without de-duplication: the caller logs it and goes on, at least once.
  static Result<InState> open(const std::string& ns, const std::string& stream, const std::string& topic,
                              const std::string& group, uint64_t stream_created_ns);
  InState(InState&& o) noexcept : slots_(o.slots_), map_(o.map_), fd_(o.fd_), path_(std::move(o.path_)) {
    o.slots_ = nullptr;
    o.map_ = nullptr;
    o.fd_ = -1;
  }
  InState& operator=(InState&&) = delete;
  InState(const InState&) = delete;
  ~InState();

  static std::string path_for(const std::string& ns, const std::string& stream, const std::string& topic,
                              const std::string& group);

  // The first message of a partition since it was assigned, at `offset` with fingerprint
  // `fp`: returns the highest offset known published (skip every message up to it), or -1
  // when nothing can be skipped; then this run of the partition begins at `offset`.
  int64_t begin(int32_t partition, int64_t offset, uint64_t fp);
  // Whether message `offset` is the one this run of the partition (re)began at (after a
  // commit): its fingerprint is then wanted (seen_base).
  bool at_base(int32_t partition, int64_t offset) const noexcept {
    // relaxed: see InStateSlot; base is ours (single writer)
    return tracked(partition) && slots_[partition].base.load(std::memory_order_relaxed) == offset;
  }
  // The message at the base was read (skipped as a duplicate or about to be published).
  void seen_base(int32_t partition, uint64_t fp) {
    // relaxed: see InStateSlot
    if (tracked(partition)) slots_[partition].base_fp.store(fp, std::memory_order_relaxed);
  }
  // Message `offset` was published into the stream (or skipped for good as too large).
  // Not for a skipped duplicate: `published` never goes back within a run.
  void published(int32_t partition, int64_t offset) {
    if (!tracked(partition)) return;
    // relaxed: see InStateSlot (the store that a kill -9 may separate from the publish)
    slots_[partition].published.store(offset, std::memory_order_relaxed);
  }
  // Kafka holds `next` as the partition's committed offset.
  void committed(int32_t partition, int64_t next);
  // Every run the file records is committed: no slot holds a message published at or
  // after its base (a dead bridge's uncommitted run, which a successor still has to skip,
  // shows as published >= base until that successor commits past it).
  bool settled() const noexcept;
  // A clean exit with everything committed (nothing left to skip; see settled()): removes the file unless
  // another bridge of the key still holds it (then it stays theirs).  Whether it was
  // removed.  Either way the state is let go of: every call after it does nothing.
  bool remove();

  // For tests: the slot of `partition` as stored.
  struct Slot {
    int64_t base, published;
    uint64_t base_fp;
  };
  Slot slot(int32_t partition) const;

 private:
  InState(InStateSlot* slots, void* map, int fd, std::string path)
      : slots_(slots), map_(map), fd_(fd), path_(std::move(path)) {}
  // One attempt of open(); nullopt: the file it locked had been removed or replaced meanwhile.
  static std::optional<Result<InState>> open_once(const std::string& path, uint64_t check, uint64_t created_ns);
  // A fresh file put in place (`replace`: the stale one, which the caller holds exclusively,
  // is unlinked first); nullopt: another bridge made one first.
  static std::optional<Result<InState>> create(const std::string& path, uint64_t check, uint64_t created_ns,
                                               bool replace);
  // create()'s file made `unnamed` (O_TMPFILE, linked in through /proc/self/fd) or under a
  // private name; *named_instead (with nullopt): this file system or process cannot make
  // or link an unnamed file, try the named way.
  static std::optional<Result<InState>> create_as(const std::string& path, uint64_t check, uint64_t created_ns,
                                                  bool unnamed, bool* named_instead);
  bool tracked(int32_t p) const noexcept { return slots_ && p >= 0 && static_cast<uint32_t>(p) < kInStateSlots; }
  InStateSlot* slots_ = nullptr;
  void* map_ = nullptr;
  int fd_ = -1;  // the open file, shared-locked (flock) while this bridge runs
  std::string path_;
};

}  // namespace shmbus::kafka::detail
