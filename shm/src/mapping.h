// mapping.h: one validated mapping of a stream's shared-memory object.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "layout.h"
#include "shmbus/shmbus.h"

namespace shmbus {

class StreamMapping {
 public:
  // Creates and initialises a new stream; kExists when it is already there.
  static Result<std::shared_ptr<StreamMapping>> create(std::string_view ns, std::string_view name,
                                                       const StreamOptions& opts);
  // Opens and validates an existing stream (waits briefly for a creator still at work).
  static Result<std::shared_ptr<StreamMapping>> open(std::string_view ns, std::string_view name,
                                                     bool read_only);

  detail::StreamHeader* header() const noexcept { return hdr_; }
  std::byte* data() const noexcept { return data_; }
  // Inline: labelled_below() walks the producer slots on the consumer's poll path.
  detail::ProducerSlot* producer_slot(uint32_t i) const noexcept {
    return reinterpret_cast<detail::ProducerSlot*>(reinterpret_cast<std::byte*>(hdr_) +
                                                   detail::kProducerSlotsOff) + i;
  }
  detail::ConsumerSlot* consumer_slot(uint32_t i) const noexcept {
    return reinterpret_cast<detail::ConsumerSlot*>(reinterpret_cast<std::byte*>(hdr_) +
                                                   detail::kConsumerSlotsOff) + i;
  }
  uint64_t capacity() const noexcept { return capacity_; }
  uint64_t mask() const noexcept { return capacity_ - 1; }
  uint64_t max_record() const noexcept { return max_record_; }
  uint64_t salt() const noexcept { return salt_; }
  // StreamHeader::flags and version as validated at open (copies: see salt_).
  bool single_producer() const noexcept { return (flags_ & detail::kFlagSingleProducer) != 0; }
  // Durable consumers commit by a plain store (single-producer streams: layout.h).
  bool plain_commits() const noexcept { return (flags_ & detail::kFlagPlainCommits) != 0; }
  uint32_t layout_version() const noexcept { return version_; }
  uint32_t flags() const noexcept { return flags_; }
  // The lap in record tags: position >> log2(capacity) (see layout.h).
  unsigned lap_shift() const noexcept { return static_cast<unsigned>(__builtin_ctzll(capacity_)); }
  bool read_only() const noexcept { return read_only_; }
  const std::string& ns() const noexcept { return ns_; }
  const std::string& name() const noexcept { return name_; }
  // Indexes are rounded down to 32 bytes: a position forged in shared memory can never
  // make a header or payload straddle the end of the mapping.
  detail::RecordHeader* record_at(uint64_t pos) const noexcept {
    return reinterpret_cast<detail::RecordHeader*>(data_ + (pos & (capacity_ - 1) & ~uint64_t{31}));
  }
  // Maps every page of the ring now (producers and consumers, not `stat`), so that the
  // first lap pays no page faults on the hot path.
  void populate() noexcept;
  std::byte* payload_at(uint64_t pos) const noexcept {
    return data_ + (pos & (capacity_ - 1) & ~uint64_t{31}) + sizeof(detail::RecordHeader);
  }
  // The cursors in the header add up: claim, head and floor on 32-byte boundaries,
  // floor <= head <= claim <= floor + capacity, and their sequences in the same order.
  // Checked at open and wherever a cursor is re-read on a slow path.
  bool cursors_ok() const noexcept;
  // True once an access to the mapping faulted because the object shrank (truncated by
  // someone): the pages past its end were replaced by private zero pages, so nothing
  // crashes, and every slow path reports the stream broken.
  bool broken() const noexcept { return broken_ && broken_->load(std::memory_order_relaxed) != 0; }

  // ---- liveness and the registry lock: OFD locks on bytes of the object ----
  // A participant holds a shared OFD lock on the first byte of its registry slot for as
  // long as it is attached; the kernel drops it when the process dies, in any PID
  // namespace.  `hold_fd_` holds them; `probe_fd_` (another open file description, so
  // that this process's own holds are seen as held) tests them and takes the registry
  // lock.  The holds go through lock_fd_, an open file description of their own that
  // nothing maps: a mapping keeps its description alive (and with it any lock taken
  // through it) as long as it exists, also in a child of fork().  A child closes its
  // copies of lock_fd_ and probe_fd_ at once (see after_fork_in_child()), so that the
  // participants it inherited die with its parent; it opens its own.
  // Takes the shared lock on byte `off` (a slot).  False if it cannot (a writer holds an
  // exclusive lock there: not a shmbus participant).
  bool hold(uint64_t off) const noexcept;
  void release(uint64_t off) const noexcept;
  // True if some open file description (any process, this one too) holds a lock on `off`.
  // Errors count as held (never declare a participant dead on doubt).
  bool held(uint64_t off) const noexcept;
  // Tries the exclusive registry lock once (non-blocking).
  bool try_lock_registry() const noexcept;
  void unlock_registry() const noexcept;

  // True in a child of fork() for a mapping its parent opened: the producers and
  // consumers on it are the parent's (they leave the registry alone when closed here).
  bool inherited() const noexcept { return inherited_; }

  // Whether the stream's name still refers to this object (a stat of /dev/shm's entry
  // against our open file: two system calls, for idle moments).
  NameState name_state() const noexcept;
  // Whether a user other than this process's effective one may open the object for
  // writing: another owner, or group/other write permission (one fstat; on error, true).
  bool others_can_write() const noexcept;

  // pthread_atfork's child handler (registered by mapping.cc at load): see lock_fd_.
  static void after_fork_in_child();

  ~StreamMapping();
  StreamMapping(const StreamMapping&) = delete;
  StreamMapping& operator=(const StreamMapping&) = delete;

 private:
  StreamMapping() = default;
  Result<void> validate(uint64_t file_size);
  // Opens lock_fd_ (the same object as hold_fd_) and enters this mapping in the list that
  // after_fork_in_child() walks.
  Result<void> open_lock_fds(const std::string& path, int flags, const std::string& what);

  void* base_ = nullptr;
  uint64_t map_bytes_ = 0;
  int hold_fd_ = -1;
  int guard_ = -1;                          // index in the SIGBUS guard's table
  std::atomic<uint32_t>* broken_ = nullptr; // that entry's flag
  int probe_fd_ = -1;
  int lock_fd_ = -1;                        // holds only (never mapped)
  bool inherited_ = false;
  detail::StreamHeader* hdr_ = nullptr;
  std::byte* data_ = nullptr;
  // Copies of the validated identity: never re-read from shared memory, so a peer
  // that scribbles on the header cannot make this process index out of bounds.
  uint64_t capacity_ = 0;
  uint64_t max_record_ = 0;
  uint64_t salt_ = 0;
  uint32_t flags_ = 0;
  uint32_t version_ = 0;
  bool read_only_ = false;
  std::string ns_, name_;
};

}  // namespace shmbus
