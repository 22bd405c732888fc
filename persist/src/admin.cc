// admin.cc: locating a stream's store, deleting records, removing a store (see
// shmbus/store_admin.h).  The one place where tools/ and bindings/ get these decisions.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "env.h"
#include "fork_lock.h"
#include "format.h"
#include "log.h"
#include "settings.h"
#include "fs.h"
#include "shmbus/persister.h"
#include "shmbus/shmbus.h"
#include "shmbus/detail/stream_control.h"
#include "shmbus/store_admin.h"
#include "scan.h"
#include "shmbus/persist/reader.h"
#include "start_point.h"
#include "store_path.h"
#include "watermark.h"

namespace shmbus::persist {

using namespace detail;

namespace {

// The names a store directory holds: segments, indexes, the watermark, the writer's
// lock, quarantined files, temporary files of an interrupted rewrite, requests to delete.
bool is_store_file(const std::string& n) {
  if (n == "LOCK" || n.rfind(kWatermarkName, 0) == 0 || n == kSettingsName || n == kSettingsTmpName)
    return true;
  // NNNNNNNNNNNNNNNNNNNN.seg / .idx, optionally followed by a quarantine or temp suffix.
  if (n.size() < 24) return false;
  for (size_t i = 0; i < 20; ++i)
    if (n[i] < '0' || n[i] > '9') return false;
  const std::string_view rest = std::string_view(n).substr(20);
  return rest.rfind(kSegmentSuffix, 0) == 0 || rest.rfind(kIndexSuffix, 0) == 0 ||
         rest == kDeleteRequestSuffix;
}

uint64_t steady_now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

Result<StoreLocation> locate_store(std::string_view ns, std::string_view stream,
                                   std::string_view data_dir_flag) {
  auto root = resolve_data_dir(data_dir_flag);
  if (!root) return root.error();
  auto dir = store_dir_for(root.value(), ns, stream);
  if (!dir) return dir.error();
  StoreLocation loc;
  loc.root = root.value();
  loc.dir = dir.value();
  if (auto ctl = StreamControl::open(ns, stream, /*read_only=*/true); ctl) {
    loc.ring = true;
    if (auto ps = ctl->persist()) {
      loc.persisted = true;
      loc.secure_delete = loc.ring_secure_delete = ps->secure_delete;
      // The header is only a cross-check: a store is never taken from shared memory
      // alone, since whoever may write the header could point it anywhere.
      if (ps->store_dir.empty())  // (read_persist_settings() refused what it found)
        return make_error(Errc::kCorrupt, "the header of stream " + std::string(ns) + "/" +
                                              std::string(stream) +
                                              " holds no valid store path (written by a writer of "
                                              "the ring?): persist the stream again to set it");
      if (!same_dir(ps->store_dir, loc.dir)) {
        std::string hint = "pass --data-dir with the directory that holds " + std::string(ns) + "/" +
                           std::string(stream);
        if (auto root = store_root_of(ps->store_dir, ns, stream))
          hint = "pass --data-dir " + *root + " if that is the store you mean";
        return make_error(Errc::kInvalidArgument,
                          "the header of stream " + std::string(ns) + "/" + std::string(stream) +
                              " names the store '" + ps->store_dir + "', not '" + loc.dir +
                              "' (from the data directory): " + hint);
      }
    }
  }
  struct stat st;
  loc.exists = ::lstat(loc.dir.c_str(), &st) == 0;
  if (loc.exists && !loc.secure_delete) {
    // The store's own record of the setting (its `settings` file, written by every
    // persister) counts too: after a reboot there is no ring header to say it (a survey:
    // `delete` and `rm --data` then erased without overwriting).  Either one asking for
    // it is enough.  A missing file says nothing; a damaged one counts as asking for it
    // (the overwrite costs time, never data; freeing a --secure store's bytes without it
    // could not be undone: a review), said once per store and process.
    bool damaged = false;
    if (store_recorded_secure(loc.root, ns, stream, &damaged)) {
      loc.secure_delete = true;
    } else if (damaged) {
      loc.secure_delete = true;
      static std::mutex mu;
      static std::set<std::string> told;  // guarded by mu
      std::lock_guard lock(mu);
      if (told.insert(loc.dir).second)
        log_warn(loc.dir + "/settings is damaged: whether the store was persisted with --secure is not known; "
                 "freed bytes are overwritten first, as for --secure (fsck reports it; the next persister "
                 "rewrites it)");
    }
  }
  return loc;
}

Result<DeleteOutcome> delete_before(std::string_view ns, std::string_view stream, uint64_t seq,
                                    const AdminOptions& opts) {
  auto loc = locate_store(ns, stream, opts.data_dir);
  if (!loc) return loc.error();
  if (!loc->ring && !loc->exists)
    return make_error(Errc::kNotFound, "no stream " + std::string(ns) + "/" + std::string(stream) +
                                           " and no store in " + loc->dir);
  DeleteOutcome out;
  out.before = seq;
  out.secure = opts.secure || loc->secure_delete;
  std::optional<StreamControl> ctl;
  if (loc->ring) {
    auto c = StreamControl::open(ns, stream);
    if (!c) return c.error();
    ctl.emplace(std::move(c.value()));
    auto info = stream_info(ns, stream);
    if (!info) return info.error();
    out.already_below = info->deleted_below;
    if (seq > info->next_seq)
      return make_error(Errc::kInvalidArgument,
                        "cannot delete below " + std::to_string(seq) + ": stream '" + std::string(ns) +
                            "/" + std::string(stream) + "' has only reached sequence " +
                            std::to_string(info->next_seq) + " (a deletion cannot be undone)");
  }
  if (!loc->exists) {
    // A ring without a store: the header's watermark is the whole deletion.  Not a store
    // that is there but hidden from the caller (another user's 0700 tree, the caller
    // having write access to the ring only).
    if (auto r = refuse_hidden_store(loc->dir, ns, stream, "delete from it"); !r) return r.error();
    ctl->raise_deleted_below(seq);
    return out;
  }
  out.persisted = true;
  StoreOptions so;
  so.secure_delete = out.secure;
  auto store = SegmentStore::open(loc->root, ns, stream, so);
  if (!store && store.error().code != Errc::kBusy) return store.error();
  if (store) {
    if (!loc->ring && seq > store->next_seq())
      return make_error(Errc::kInvalidArgument,
                        "cannot delete below " + std::to_string(seq) + ": the store of '" +
                            std::string(ns) + "/" + std::string(stream) + "' ends at sequence " +
                            std::to_string(store->next_seq()) + " (a deletion cannot be undone)");
    // Nothing new only when the store had it too (a review: a deletion the ring took whose
    // persister was stopped before applying it is done by this call).
    out.already_below = loc->ring ? std::min(out.already_below, store->stats().deleted_below)
                                  : store->stats().deleted_below;
    auto d = store->delete_before(seq);
    if (!d) return d.error();
    out.report = d.value();
    if (ctl) {
      ctl->raise_deleted_below(seq);
      ctl->set_oldest_persisted_seq(store->stats().oldest_seq);
    }
    if (auto r = store->close(); !r) return r.error();
    return out;
  }
  // A persister holds the store: it applies the header's watermark; wait until it is
  // durable in the store's watermark file.
  if (!ctl)
    return make_error(Errc::kBusy, "the store " + loc->dir + " is open by a writer, but stream '" +
                                       std::string(ns) + "/" + std::string(stream) + "' has no ring");
  if (opts.secure && !loc->ring_secure_delete)
    return make_error(Errc::kInvalidArgument,
                      "--secure: the persister running on " + std::string(ns) + "/" +
                          std::string(stream) +
                          " does not overwrite what it deletes; stop it, or restart it with --secure");
  const std::string parts[] = {std::string(ns), std::string(stream)};
  bool store_has_it = false;
  {
    auto dir = open_dir_path(loc->root, parts, /*create=*/false, Use::kRead);
    auto wm = dir ? read_watermark(dir->get()) : Result<Watermark>(dir.error());
    out.already_below = wm ? std::min(out.already_below, wm->deleted_below) : 0;
    store_has_it = wm && wm->deleted_below >= seq;
  }
  // The request in the store's folder is the authority (a persister whose ring others can
  // write applies no more than it asks); the header's watermark wakes the persister.  None
  // when the store has it already (it would stay until a persister next applies a
  // deletion); the ring's readers get it all the same.
  if (!store_has_it) {
    auto dir = open_dir_path(loc->root, parts, /*create=*/false, Use::kWrite);
    if (!dir) return dir.error();
    if (auto r = write_delete_request(dir->get(), seq); !r) return r.error();
  }
  ctl->raise_deleted_below(seq);
  out.by_persister = true;
  out.secure = loc->ring_secure_delete;  // what the running persister does
  if (store_has_it) return out;
  const uint64_t deadline = steady_now_ns() + static_cast<uint64_t>(opts.timeout.count());
  for (;;) {
    auto dir = open_dir_path(loc->root, parts, /*create=*/false, Use::kRead);
    if (!dir) return dir.error();
    auto wm = read_watermark(dir->get());
    if (wm && wm->deleted_below >= seq) return out;
    if (steady_now_ns() >= deadline)
      return make_error(Errc::kTimeout,
                        "records below " + std::to_string(seq) +
                            " are hidden, but the running persister has not recorded the deletion "
                            "durably in time (is it stuck? see `shmbus stat`)");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Result<UnstoredLost> record_unstored_as_lost(std::string_view ns, std::string_view stream,
                                             const AdminOptions& opts) {
  auto info = stream_info(ns, stream);
  if (!info) return info.error();
  if (!info->persist || info->durable_seq >= info->next_seq) return UnstoredLost{};
  // The header names the store and the numbers; whoever owns the ring can write them.  So
  // only the caller's own ring is believed (a review: another user's ring whose header
  // named root's store made root's rm --force record 70 losses there).
  {
    struct stat st;
    const std::string obj = "/dev/shm/" + object_name(ns, stream);
    if (::lstat(obj.c_str(), &st) != 0 || st.st_uid != ::geteuid())
      return make_error(Errc::kPermission, "the ring " + obj + " is not the caller's: its header is not "
                                           "trusted to name a store to write");
  }
  auto loc = locate_store(ns, stream, opts.data_dir);
  if (!loc && loc.error().code == Errc::kInvalidArgument && opts.data_dir.empty()) {
    // No data dir given, and the default is not where the persister stored: the store
    // the header names (a review: Python's remove(force=True), which takes no data dir,
    // recorded nothing for a store elsewhere).  Opened as any store is: a directory of
    // the caller's, its files checked.
    if (auto root = store_root_of(info->persist->store_dir, ns, stream)) loc = locate_store(ns, stream, *root);
  }
  if (!loc) return loc.error();
  if (!loc->exists) return UnstoredLost{};
  StoreOptions so;
  so.secure_delete = loc->secure_delete;
  auto store = SegmentStore::open(loc->root, ns, stream, so);
  if (!store) return store.error();
  // The store may hold more than durable_seq says (a persister that stopped between its
  // append and its commit): only what it lacks is lost.
  const uint64_t from = store->next_seq(), to = info->next_seq;
  if (from >= to) {
    if (auto r = store->close(); !r) return r.error();
    return UnstoredLost{};
  }
  if (auto r = store->append_lost(from, to); !r) return r.error();
  if (auto r = store->close(); !r) return r.error();  // synced: durable before the ring goes
  return UnstoredLost{from, to};
}

Result<RemoveOutcome> remove_store(std::string_view ns, std::string_view stream,
                                   const AdminOptions& opts) {
  auto loc = locate_store(ns, stream, opts.data_dir);
  if (!loc) return loc.error();
  RemoveOutcome out;
  out.dir = loc->dir;
  out.secure = opts.secure || loc->secure_delete;
  const std::string ns_s(ns), stream_s(stream);
  // Walk DATA_DIR/NS without following links; every directory must be the caller's.
  const std::string ns_part[] = {ns_s};
  auto nsd = open_dir_path(loc->root, ns_part, /*create=*/false, Use::kWrite);
  if (!nsd) {
    if (nsd.error().code == Errc::kNotFound) return out;
    return nsd.error();
  }
  int sfd = env().openat(nsd->get(), stream_s.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
  if (sfd < 0) {
    if (errno == ENOENT) return out;
    return errno_error(errno == ENOTDIR ? ELOOP : errno, "cannot open the store '" + loc->dir + "'");
  }
  UniqueFd sd(sfd);
  if (auto t = check_trusted(sd.get(), loc->dir, Use::kWrite); !t) return t.error();
  out.existed = true;
  // The writer's lock: a running persister keeps its store.  Made when the store has none
  // (a crash or an older build left it so): a writer starting during the removal then
  // waits for it, instead of making one of its own and writing into files being removed.
  // A ForkLock: a child this process forks meanwhile does not keep it (fork_lock.h).  A
  // LOCK that cannot be opened (none, on a dry run) is no writer's.
  ForkLock lock;
  bool opened = false;
  const int sdfd = sd.get();
  const int create = opts.dry_run ? 0 : O_CREAT;
  auto taken = lock.try_take(
      [sdfd, create, &opened]() -> Result<UniqueFd> {
        UniqueFd fd(env().openat(sdfd, "LOCK", O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | create, 0600));
        if (!fd.valid()) return errno_error(errno, "cannot open LOCK");
        opened = true;
        return fd;
      },
      "cannot lock the store " + loc->dir);
  if ((!taken && opened) || (taken && !taken.value()))
    return make_error(Errc::kBusy, "a persister is writing the store " + loc->dir + ": stop it first");
  auto names = list_dir(sd.get());
  if (!names) return names.error();
  struct Victim {
    std::string name;
    uint64_t size;
  };
  std::vector<Victim> victims;
  for (const auto& n : names.value()) {
    struct stat st;
    if (::fstatat(sd.get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
      return errno_error(errno, "cannot stat '" + loc->dir + "/" + n + "'");
    if (!S_ISREG(st.st_mode) || !is_store_file(n))
      return make_error(Errc::kInvalidArgument, "'" + loc->dir + "/" + n +
                                                    "' is not a store file: not removing " + loc->dir);
    if (st.st_uid != ::geteuid())
      return make_error(Errc::kPermission, "'" + loc->dir + "/" + n +
                                               "' belongs to another user: not removing " + loc->dir);
    victims.push_back({n, static_cast<uint64_t>(st.st_size)});
  }
  if (opts.dry_run) return out;
  // LOCK last: it is held until the rest is gone.
  std::stable_partition(victims.begin(), victims.end(), [](const Victim& v) { return v.name != "LOCK"; });
  for (const auto& v : victims) {
    // With `secure`: overwritten and synced first; any failure is an error.
    if (auto r = remove_file(sd.get(), v.name, out.secure); !r) return r.error();
    out.bytes += v.size;
    ++out.files;
  }
  lock.reset();
  sd.reset();
  if (env().unlinkat(nsd->get(), stream_s.c_str(), AT_REMOVEDIR) != 0)
    return errno_error(errno, "cannot remove the directory '" + loc->dir + "'");
  if (auto r = sync_all(nsd->get(), "'" + loc->root + "/" + ns_s + "'"); !r) return r.error();
  return out;
}

Result<CreateOutcome> create_stream_over_store(std::string_view ns, std::string_view stream,
                                               StreamOptions opts, bool fresh,
                                               const AdminOptions& admin) {
  if (auto r = validate_name("namespace", ns); !r) return r.error();
  if (auto r = validate_name("stream", stream); !r) return r.error();
  // Without a data dir (a user without HOME) there is no store to continue, unless the
  // caller named one or asked to remove it.
  auto root = resolve_data_dir(admin.data_dir);
  if (!root && (!admin.data_dir.empty() || fresh)) return root.error();
  const bool exist_ok = opts.exist_ok;
  opts.exist_ok = false;
  const StreamOptions asked = opts;  // each turn starts from it (a store gone since the last)
  CreateOutcome out;
  // A ring is created here only after its store was looked at, and an existing one is
  // accepted (exist_ok) or refused, never created anew in its place: one removed between
  // the look and the create (`rm --force` at the same time) is looked at again, store
  // and all (a review: a ring made then began at sequence 0 over the store, unpersisted,
  // its numbers those of stored records).  Bounded: each turn means another process
  // removed or created the ring in between.
  uint64_t oldest_stored = 0;  // of a store continued: for stat's "oldest persisted"
  for (int attempt = 0;; ++attempt) {
    out = CreateOutcome{};
    opts = asked;
    auto existing = stream_info(ns, stream);
    const bool had_ring = existing.ok() || existing.error().code != Errc::kNotFound;
    if (had_ring && fresh)
      return make_error(Errc::kExists, "--fresh: stream " + std::string(ns) + "/" + std::string(stream) +
                                           " exists; remove it first (shmbus rm)");
    if (had_ring) {
      if (!existing.ok() && existing.error().code == Errc::kExists) return existing.error();  // a dotted twin
      if (!exist_ok)
        return make_error(Errc::kExists, "stream '" + std::string(stream) + "' in namespace '" + std::string(ns) +
                                             "' already exists (use --exist-ok to accept it)");
      auto r = check_existing_stream(ns, stream, opts);
      if (r) return out;  // accepted as it is
      if (r.error().code == Errc::kNotFound && attempt < 8) continue;
      return r.error();
    }
    if (root) {
      auto dir = store_dir_for(root.value(), ns, stream);
      if (!dir) return dir.error();
      struct stat st;
      if (::lstat(dir->c_str(), &st) == 0) {
        if (fresh) {
          auto removed = remove_store(ns, stream, admin);
          if (!removed) return removed.error();
          out.removed = removed.value();
        } else {
          // Recovery makes what the store holds durable before it counts it.
          StoreOptions so;
          so.secure_delete = admin.secure;
          auto store = SegmentStore::open(root.value(), ns, stream, so);
          if (!store) return store.error();
          out.resumed = true;
          out.store_dir = dir.value();
          out.first_seq = store->next_seq();
          if (out.first_seq > kMaxFirstSeq)
            // (kIncompatible: the arguments are fine, the store is what a ring cannot
            // continue; the CLI exits 1, not 2 as for bad usage.)
            return make_error(Errc::kIncompatible,
                              "the store '" + out.store_dir + "' continues at sequence " +
                                  std::to_string(out.first_seq) +
                                  ", above 2^63, the most a stream starts at (its numbering would "
                                  "wrap): create the stream with --fresh to remove the store");
          out.deleted_below = store->stats().deleted_below;
          oldest_stored = store->stats().oldest_seq;
          if (auto r = store->close(); !r) return r.error();
          // Persisted from its creation (StreamOptions::persist): with the settings the
          // last persister ran with (defaults if it left none), durable below first_seq,
          // and the persister's group, registered as a stopped persister leaves it:
          // producers are held (or, letting them go, the lost range is recorded) until a
          // persister attaches, which continues from there.  Without the group, records
          // that left the ring before a persister started were never stored and nobody
          // was told (a walkthrough: stat said "holds producers" while nothing did).
          // All in the header before anyone can open the stream: set after the create, a
          // reader that opened it in between took it for a stream not persisted (a
          // review: `tail -f` printed a stored record again).
          PersistSettings ps;
          const std::string parts[] = {std::string(ns), std::string(stream)};
          if (auto sd = open_dir_path(root.value(), parts, /*create=*/false, Use::kRead); sd)
            if (auto saved = read_settings(sd->get())) ps = *saved;
          ps.store_dir = out.store_dir;
          ps.secure_delete = ps.secure_delete || admin.secure;
          opts.first_seq = out.first_seq;
          opts.deleted_below = out.deleted_below;
          opts.persist = ps;
        }
      }
    }
    auto r = create_stream(ns, stream, opts);
    if (r) break;
    // Created by another process since the look: accepted or refused as above.
    if (r.error().code == Errc::kExists && attempt < 8) continue;
    return r.error();
  }
  out.created = true;
  // (Statistics: a persister sets it again when it starts.)
  if (out.resumed)
    if (auto c = StreamControl::open(ns, stream); c) c->set_oldest_persisted_seq(oldest_stored);
  return out;
}

Result<bool> detach_persistence(std::string_view ns, std::string_view stream) {
  auto ctl = StreamControl::open(ns, stream);
  if (!ctl) return ctl.error();
  // Only the store's owner detaches it: detached by a user who cannot look at it, the
  // ring would pass for one without a store to that user's `delete`.
  if (auto ps = ctl->persist(); ps && !ps->store_dir.empty())
    if (auto r = refuse_hidden_store(ps->store_dir, ns, stream, "detach it"); !r) return r.error();
  auto removed = ctl->remove_group("_persister");
  if (!removed) {
    if (removed.error().code == Errc::kBusy)
      return make_error(Errc::kBusy, "a persister is running on stream " + std::string(ns) + "/" +
                                         std::string(stream) + " (" + removed.error().message +
                                         "): stop it first");
    return removed.error();
  }
  const bool was_persisted = ctl->persist().has_value();
  if (auto r = ctl->clear_persist(); !r) return r.error();
  return removed.value() || was_persisted;
}

bool reads_through_store(std::string_view ns, std::string_view stream,
                         std::string_view data_dir_flag) {
  if (auto ctl = StreamControl::open(ns, stream, /*read_only=*/true); ctl) return ctl->persist().has_value();
  else if (ctl.error().code != Errc::kNotFound) return false;  // Consumer::open says why
  auto loc = locate_store(ns, stream, data_dir_flag);
  return loc && loc->exists;
}

namespace {

// StoreUsage's range: the watermark, the first record, and the end, which the reader finds
// from the last segment's last index entry (at most an index interval of frames read; the
// whole last segment when it has no index).
void store_range(int dir, const std::string& root, std::string_view ns, std::string_view stream,
                 const std::vector<std::string>& names, StoreUsage* out) {
  if (auto wm = read_watermark(dir); wm) out->deleted_below = wm->deleted_below;
  else out->range_error = wm.error().message;
  uint64_t last = 0;
  bool any = false;
  for (const auto& n : names) {
    uint64_t first = 0;
    if (parse_numbered_name(n, kSegmentSuffix, &first) && (!any || first > last)) {
      last = first;
      any = true;
    }
  }
  out->first_seq = out->end_seq = out->deleted_below;
  if (!any) return;
  auto reader = SegmentReader::open(root, ns, stream);
  if (!reader) {
    out->range_error = reader.error().message;
    return;
  }
  uint64_t from = last;
  if (auto f = SegmentFile::open(dir, last); f)
    if (auto x = read_index(dir, last, f->size()); x && !x->entries.empty()) from = x->entries.back().seq;
  if (auto s = reader->seek_seq(std::max(from, out->deleted_below)); !s) {
    out->range_error = s.error().message;
    return;
  }
  // Bounded: a segment holds at most one frame per 32 bytes, and a reader moves on at
  // every call (a record, a range, or the end).
  for (uint64_t step = 0; step < (uint64_t{1} << 32); ++step) {
    auto e = reader->next();
    if (!e) {
      out->range_error = e.error().message;
      return;
    }
    if (e->kind == EntryKind::kEnd) break;
  }
  out->end_seq = std::max(reader->position(), out->deleted_below);
  if (auto first = store_start_seq(root, ns, stream, StartFrom::earliest()))
    out->first_seq = std::min(*first, out->end_seq);
  else
    out->first_seq = out->end_seq;
}

}  // namespace

Result<StoreUsage> store_usage(std::string_view ns, std::string_view stream, std::string_view data_dir_flag) {
  auto loc = locate_store(ns, stream, data_dir_flag);
  if (!loc) return loc.error();
  StoreUsage out;
  out.dir = loc->dir;
  const std::string parts[] = {std::string(ns), std::string(stream)};
  auto sd = open_dir_path(loc->root, parts, /*create=*/false, Use::kRead);
  if (!sd) return sd.error();
  out.settings = read_settings(sd->get());
  auto names = list_dir(sd->get());
  if (!names) return names.error();
  for (const auto& n : names.value()) {
    struct stat st;
    if (!is_store_file(n) || ::fstatat(sd->get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(st.st_mode))
      continue;
    out.bytes += static_cast<uint64_t>(st.st_size);
    // NNNNNNNNNNNNNNNNNNNN.seg exactly: a live segment.
    if (n.size() == 20 + kSegmentSuffix.size() && std::string_view(n).substr(20) == kSegmentSuffix) ++out.segments;
  }
  store_range(sd->get(), loc->root, ns, stream, names.value(), &out);
  return out;
}

Result<std::vector<std::string>> stored_streams(std::string_view ns, std::string_view data_dir_flag) {
  if (auto r = validate_name("namespace", ns); !r) return r.error();
  auto root = resolve_data_dir(data_dir_flag);
  if (!root) return root.error();
  const std::string parts[] = {std::string(ns)};
  std::vector<std::string> out;
  auto nsd = open_dir_path(root.value(), parts, /*create=*/false, Use::kRead);
  if (!nsd) {
    if (nsd.error().code == Errc::kNotFound) return out;
    return nsd.error();
  }
  auto names = list_dir(nsd->get());
  if (!names) return names.error();
  for (const auto& n : names.value()) {
    if (!validate_name("stream", n)) continue;
    struct stat st;
    if (::fstatat(nsd->get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) continue;
    if (auto i = stream_info(ns, n); i.ok() || i.error().code != Errc::kNotFound) continue;  // a ring
    out.push_back(n);
  }
  return out;
}

}  // namespace shmbus::persist
