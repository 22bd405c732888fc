// shmbus/store_admin.h: where a stream's store lives, and the administration of
// stores (deleting records, removing a store) that the `shmbus` command and the Python
// module share.  Every decision about a store's place and removal is made here.
//
// A store's location never comes from shared memory alone: it is derived from the data
// directory, the namespace and the stream name (DATA_DIR/NS/STREAM) and checked against
// what the stream's header says.  Directories are walked component by component with
// O_NOFOLLOW and must belong to the caller and not be writable by group or others.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shmbus/persist.h"
#include "shmbus/result.h"

namespace shmbus::persist {

// The data directory: `flag` if non-empty, else $SHMBUS_DATA_DIR, else
// $HOME/.local/share/shmbus, else (root without HOME, as services run) /var/lib/shmbus.
// A user without HOME gets kInvalidArgument (there is no /tmp fallback: anyone could
// prepare it).  Relative paths are made absolute against the working directory.
Result<std::string> resolve_data_dir(std::string_view flag = {});

// DATA_DIR/NS/STREAM (names validated).
Result<std::string> store_dir_for(std::string_view data_dir, std::string_view ns,
                                  std::string_view stream);

struct StoreLocation {
  std::string root;   // the data directory
  std::string dir;    // root/NS/STREAM
  bool ring = false;  // the stream's ring exists
  bool persisted = false;  // the ring's header says the stream is persisted
  // The header's persistence settings, or the store's own `settings` file (what the
  // last persister ran with: after a reboot there is no header), ask for overwrites.
  bool secure_delete = false;
  bool ring_secure_delete = false;  // the header's say so (what a running persister does)
  bool exists = false;     // the store directory exists
};

// Finds the store of NS/STREAM under `data_dir_flag` (resolved as above).  When the ring
// exists and its header names a different store directory, fails with kInvalidArgument
// naming both (pass --data-dir to say which one is meant).
Result<StoreLocation> locate_store(std::string_view ns, std::string_view stream,
                                   std::string_view data_dir_flag = {});

struct AdminOptions {
  std::string data_dir;          // as for resolve_data_dir
  bool secure = false;           // overwrite freed bytes first (the stream's setting also counts)
  // delete_before with a running persister: how long to wait for it to make the new
  // watermark durable.
  std::chrono::nanoseconds timeout = std::chrono::seconds(30);
  // remove_store: every check (trusted directories, no persister writing, only the
  // caller's store files) and nothing removed: `rm --data` asks it before the ring goes.
  bool dry_run = false;
};

struct DeleteOutcome {
  uint64_t before = 0;           // records below are never served again
  bool persisted = false;        // a store was involved
  bool by_persister = false;     // a running persister applied it
  bool secure = false;           // freed bytes were overwritten
  DeletionReport report;         // what was freed here (zero when by_persister)
  // The watermark before the call (the ring's, or the store's without a ring): a `seq` at
  // or below it deleted nothing new.
  uint64_t already_below = 0;
};

// Deletes NS/STREAM's records below `seq`: raises the ring header's watermark (if the
// ring exists) and the store's, durably, before returning.  With a persister running,
// waits until it has made the watermark durable.  kInvalidArgument for a `seq` above
// the stream's next sequence; kNotFound when neither a ring nor a store exists.
Result<DeleteOutcome> delete_before(std::string_view ns, std::string_view stream, uint64_t seq,
                                    const AdminOptions& opts = {});

struct RemoveOutcome {
  std::string dir;               // the store directory removed
  uint64_t bytes = 0;            // file bytes freed
  uint64_t files = 0;
  bool existed = false;          // false: there was no store
  bool secure = false;
};

// Removes NS/STREAM's store directory (only store files are expected in it; anything
// else makes it refuse).  Takes the writer lock first (kBusy while a persister runs).
// With `secure` (or the stream's setting) every file is overwritten and synced before
// it is unlinked; a failed overwrite is an error, never skipped.
Result<RemoveOutcome> remove_store(std::string_view ns, std::string_view stream,
                                   const AdminOptions& opts = {});

// Before the ring of a persisted stream is removed with force while its persister has not
// stored every record: records the sequences [the store's next, the ring's next) as lost
// in the store (durably), so that a ring created over the store continues after them and
// no sequence number is given to two records (a bridge or a group that read the old ones
// from the ring would skip the new ones as seen).  Returns the range it recorded: none when
// the stream is not persisted, every record is stored, or there is no store.  kBusy while
// a persister holds the store (it goes on storing from its mapping); kInvalidArgument
// when the header names another store than `opts.data_dir` says (locate_store; with no
// data dir given, the store the header names is used).
// kPermission when the ring is not the caller's (its header is not trusted to name a
// store to write).  Records published between this call and the removal can still be
// numbered again.
struct UnstoredLost {
  uint64_t from = 0, to = 0;  // the sequences [from, to) recorded as lost (none: equal)
  uint64_t count() const { return to - from; }
};
Result<UnstoredLost> record_unstored_as_lost(std::string_view ns, std::string_view stream,
                                             const AdminOptions& opts = {});

// ---- a stream outlives its ring -------------------------------------------------------

struct CreateOutcome {
  bool created = false;          // false: an existing ring was accepted (exist_ok)
  bool resumed = false;          // the ring continues a store
  std::string store_dir;         // the store it continues
  uint64_t first_seq = 0;        // the sequence its first new record gets
  uint64_t deleted_below = 0;    // the store's watermark, restored in the header
  RemoveOutcome removed;         // `fresh`: the old store removed
};

// Creates NS/STREAM's ring (create_stream with `opts`).  The store, not /dev/shm, is a
// stream's lasting identity: when DATA_DIR/NS/STREAM holds a store, the ring continues
// its numbering (sequence numbers are never reused), and its watermark and place come
// back in the header, so that readers find the stored records at once; the persister
// continues the same store when it is started again.  `fresh` removes the old store
// first (as rm --data does) and starts over at sequence 0.
Result<CreateOutcome> create_stream_over_store(std::string_view ns, std::string_view stream,
                                               StreamOptions opts, bool fresh,
                                               const AdminOptions& admin = {});

// Ends persistence of NS/STREAM while no persister runs: removes the "_persister"
// consumer group (producers are no longer held back for it) and the store's place from
// the header; the store stays on disk.  kBusy while a persister is attached.  Returns
// false when the stream was not persisted.
Result<bool> detach_persistence(std::string_view ns, std::string_view stream);

// Whether a consumer without a group reads NS/STREAM through a ReplayConsumer (store,
// then ring): the stream is persisted, or it has no ring but a store in the data dir.
// The one test of it: open_tail() (shmbus/tail.h) opens what it says for the CLI's tail
// and Python's Consumer; the Kafka bridge asks it too.
bool reads_through_store(std::string_view ns, std::string_view stream,
                         std::string_view data_dir_flag = {});

// What a store holds on disk, without opening it (no lock, no recovery): for streams that
// exist only as a store.  Reads the watermark, the first record and the last segment from
// its last index entry on (a damaged or unreadable store leaves the range at 0).  kNotFound when there is no store directory.
struct StoreUsage {
  std::string dir;         // DATA_DIR/NS/STREAM
  uint64_t bytes = 0;      // the store files' sizes (segments, indexes, watermark, settings)
  uint64_t segments = 0;   // segment files (quarantined ones not counted)
  // What it holds, as read without a lock (a writer may be adding meanwhile):
  uint64_t first_seq = 0;      // its first record (end_seq when it holds none)
  uint64_t end_seq = 0;        // one past its last record: where `shmbus create` continues
  uint64_t deleted_below = 0;  // its deletion watermark
  // Non-empty when the range could not be read (a damaged or unreadable segment or
  // watermark): why; the range fields are then not to be trusted (shmbus fsck says more).
  std::string range_error;
  // The settings the last persister ran with (its `settings` file), if it left readable ones.
  std::optional<PersistSettings> settings;
};
Result<StoreUsage> store_usage(std::string_view ns, std::string_view stream,
                               std::string_view data_dir_flag = {});

// The streams of NS that exist only as a store in the data dir (no ring), sorted.
Result<std::vector<std::string>> stored_streams(std::string_view ns, std::string_view data_dir_flag = {});

}  // namespace shmbus::persist
