// cmd_persist.cc: persist (run persisters until a stop signal), fsck (of a data dir, one
// namespace of it, or one store) and delete.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "args.h"
#include "commands.h"
#include "format.h"
#include "shmbus/persister.h"
#include "shmbus/detail/stream_control.h"
#include "signals.h"

namespace shmbus::tools {

using namespace std::chrono_literals;

// persist --detach: ends persistence of each stream.
int detach_streams(const std::string& ns, const PersistArgs& a) {
  for (const auto& s : a.streams) {
    auto d = persist::detach_persistence(ns, s);
    if (!d) return fail(s + ": " + d.error().message);
    std::fprintf(stderr, "shmbus: %s: %s\n", s.c_str(),
                 *d ? "persistence ended; producers are free (the store stays on disk; shmbus rm "
                      "--data removes it)"
                    : "was not persisted");
  }
  return kExitOk;
}

int cmd_persist(const PersistArgs& a) {
  const auto ns_or = command_namespace(a.ns);
  if (!ns_or) return kExitUsage;
  const std::string ns = *ns_or;
  // A stream named twice: its second persister found the first's store open ("another
  // writer has ... open", a review), or --detach detached it twice.
  for (size_t i = 0; i < a.streams.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (a.streams[i] == a.streams[j])
        return fail("stream '" + a.streams[i] + "' is named twice", kExitUsage);
  if (a.detach) return detach_streams(ns, a);
  persist::PersisterOptions o;
  auto data_dir = persist::resolve_data_dir(a.data_dir);
  if (!data_dir) return fail(data_dir.error());
  o.data_dir = data_dir.value();
  if (a.store == "pmem") o.kind = persist::StoreKind::kPmem;
  else if (a.store != "file") return fail("--store must be file or pmem", kExitUsage);
  if (a.durability == "sync") o.durability = persist::Durability::kSync;
  else if (a.durability != "async") return fail("--durability must be async or sync", kExitUsage);
  auto dur = [](const char* flag, const std::string& v, std::chrono::nanoseconds* out) {
    if (v.empty()) return true;
    auto d = duration_flag(flag, v);
    if (!d) return false;
    *out = *d;
    return true;
  };
  if (!dur("--flush-interval", a.flush_interval, &o.flush_interval) ||
      !dur("--retention-age", a.retention_age, &o.retention_age) ||
      !dur("--roll-age", a.roll_age, &o.roll_age))
    return kExitUsage;
  if (!a.retention_bytes.empty()) {
    auto b = size_flag("--retention-bytes", a.retention_bytes);
    if (!b) return kExitUsage;
    o.retention_bytes = *b;
  }
  if (!a.segment_size.empty()) {
    auto b = size_flag("--segment-size", a.segment_size);
    if (!b) return kExitUsage;
    // Checked here as a usage error (the store's own check said "segment_bytes", exit 1).
    if (*b < 4096 || *b > (uint64_t{1} << 40))
      return fail("--segment-size " + a.segment_size + ": must be between 4K and 1T", kExitUsage);
    o.segment_bytes = *b;
  }
  o.hold_producers = !a.let_go;
  o.secure_delete = a.secure;
  o.detach_on_stop = a.detach_on_stop;
  if (a.move_store && a.new_store) return fail("--move-store and --new-store exclude each other", kExitUsage);
  if (a.move_store) o.store_moved = persist::PersisterOptions::StoreMoved::kMove;
  if (a.new_store) o.store_moved = persist::PersisterOptions::StoreMoved::kNew;
  // Every stream must exist before any persister starts: a failed command leaves no
  // stream persisted (nor held back by a group of a persister that never ran).
  std::vector<bool> was_persisted;
  for (const auto& s : a.streams) {
    auto ctl = StreamControl::open(ns, s);
    if (!ctl) return fail("persist " + s + ": " + ctl.error().message);
    was_persisted.push_back(ctl->persist().has_value());
  }
  install_stop_handlers();
  // A file-size limit (RLIMIT_FSIZE) must come back as an error (the persister holds
  // producers and retries), not kill the process.
  signal(SIGXFSZ, SIG_IGN);
  std::vector<std::unique_ptr<persist::Persister>> running;
  for (const auto& s : a.streams) {
    auto p = persist::Persister::start(ns, s, o);
    if (!p) {
      // Undo: the streams this command made persisted go back to what they were.
      for (size_t i = 0; i < running.size(); ++i) (void)running[i]->stop(!was_persisted[i]);
      return fail("persist " + s + ": " + p.error().message);
    }
    running.push_back(std::move(p.value()));
  }
  std::fprintf(stderr, "shmbus: persisting %zu stream(s) into %s/%s (%s store, %s); stop with ^C\n",
               running.size(), o.data_dir.c_str(), ns.c_str(), a.store.c_str(), a.durability.c_str());
  // A persister stops by itself when its stream's ring is removed: said at once, and the
  // others go on (before, the first to stop ended them all, without their stop lines: a
  // review); the command exits 1 once all have stopped, or at ^C.
  int rc = kExitOk;
  std::vector<bool> ended(running.size(), false);
  size_t left = running.size();
  while (!stop_requested() && left > 0) {
    std::this_thread::sleep_for(50ms);
    for (size_t i = 0; i < running.size(); ++i)
      if (!ended[i] && !running[i]->running()) {
        ended[i] = true;
        --left;
        rc = fail("a persister stopped: " + running[i]->stats().last_error);
      }
  }
  for (size_t i = 0; i < running.size(); ++i) {
    auto st = running[i]->stats();
    if (auto r = running[i]->stop(); !r && !ended[i]) rc = fail("persist " + a.streams[i] + ": " + r.error().message);
    std::fprintf(stderr, "shmbus: %s: stored %llu records (%llu bytes), durable below %llu\n",
                 a.streams[i].c_str(), static_cast<unsigned long long>(st.records),
                 static_cast<unsigned long long>(st.bytes),
                 static_cast<unsigned long long>(running[i]->stats().durable_seq));
    const std::string where = a.streams[i] + (ns == "default" ? "" : " --namespace " + ns);
    if (ended[i]) continue;  // its ring is gone (said above)
    if (a.detach_on_stop)
      std::fprintf(stderr, "shmbus: %s: persistence ended (--detach-on-stop); producers are free\n",
                   a.streams[i].c_str());
    else
      std::fprintf(stderr,
                   "shmbus: stream '%s' stays persisted: once its ring fills, producers wait for a persister "
                   "(shmbus persist %s); to end persistence: shmbus persist %s --detach\n",
                   a.streams[i].c_str(), where.c_str(), where.c_str());
  }
  return rc;
}

int cmd_fsck(const FsckArgs& a) {
  // --namespace NS: only NS's stores (persist::fsck() says which are there if none).
  auto r = persist::fsck(a.dir, a.repair, a.ns);
  if (!r) return fail(r.error());
  const persist::FsckReport& rep = r.value();
  // e.g. a namespace's folder, or not a data dir at all (a store reported and left alone,
  // its folders not the caller's, is an issue below, not "no store")
  if (rep.streams == 0 && rep.issues.empty())
    return fail("no store under " + a.dir + ": nothing checked (a data dir holds NAMESPACE/STREAM/ "
                "folders of segment files; one store folder is checked on its own)");
  std::printf("checked %llu stream(s), %llu segment(s), %llu records, %llu bytes\n",
              static_cast<unsigned long long>(rep.streams), static_cast<unsigned long long>(rep.segments),
              static_cast<unsigned long long>(rep.records), static_cast<unsigned long long>(rep.bytes));
  for (const auto& l : rep.live)
    std::printf("live %s: a persister is writing it; read what it had written (up to sequence "
                "%llu), its tail in flux not judged\n",
                terminal_text(l.stream).c_str(), static_cast<unsigned long long>(l.end_seq));
  for (const auto& q : rep.quarantined)
    std::printf("quarantined %s (kept for inspection; retention or rm --data removes it)\n",
                terminal_text(q).c_str());
  // Paths and problems quote names read from the files (a segment header's namespace
  // and stream): terminal text, as every such name printed (they went out raw: a review).
  for (const auto& i : rep.issues)
    std::printf("%s %s at offset %llu (%llu bytes): %s\n", i.repaired ? "repaired" : "PROBLEM",
                terminal_text(i.path).c_str(), static_cast<unsigned long long>(i.offset),
                static_cast<unsigned long long>(i.bytes), terminal_text(i.problem).c_str());
  if (rep.clean()) {
    std::printf("%s%s\n", rep.issues.empty() ? "clean" : "clean after repair",
                rep.live.empty() ? "" : " (live: as far as written when read)");
    return kExitOk;
  }
  // "run with --repair" only when it has something to fix (a damaged settings file alone
  // sent users to a --repair that said the same again: a review).
  // The count is of what is left (PROBLEM lines), not of what --repair just fixed.
  size_t left = 0;
  bool repair_helps = false;
  for (const auto& i : rep.issues) {
    left += i.repaired ? 0 : 1;
    repair_helps |= !i.repaired && i.repairable;
  }
  const size_t fixed = rep.issues.size() - left;
  return fail(std::to_string(left) + " problem(s) found" +
              (fixed ? " (" + std::to_string(fixed) + " more repaired)" : std::string()) +
              (repair_helps && !a.repair ? "; run with --repair to fix what can be fixed"
               : repair_helps           ? ""  // (e.g. a writer started meanwhile: said on its line)
                                        : left == 1 ? "; --repair cannot fix it (see its PROBLEM line)"
                                                    : "; --repair cannot fix them (see each PROBLEM line)"));
}

int cmd_delete(const DeleteArgs& a) {
  persist::AdminOptions o;
  o.data_dir = a.data_dir;
  o.secure = a.secure;
  const auto ns = command_namespace(a.ns);
  if (!ns) return kExitUsage;
  auto d = persist::delete_before(*ns, a.stream, a.before, o);
  if (!d) return fail(d.error());
  const auto before = static_cast<unsigned long long>(a.before);
  if (a.before == 0)
    std::printf("nothing deleted: no record lies below 0\n");
  else if (a.before <= d->already_below)
    std::printf("nothing new deleted: records below %llu were deleted already (the stream's "
                "deletion watermark is %llu)\n",
                before, static_cast<unsigned long long>(d->already_below));
  else if (!d->persisted)
    std::printf("records below %llu will not be served (the stream is not persisted)\n", before);
  else if (d->by_persister)
    std::printf("records below %llu deleted; the running persister recorded it durably and frees "
                "their segments%s\n", before, d->secure ? " (overwritten first)" : "");
  else
    std::printf("records below %llu deleted: %llu segment(s), %llu bytes freed%s\n", before,
                static_cast<unsigned long long>(d->report.segments),
                static_cast<unsigned long long>(d->report.bytes),
                d->secure ? " (overwritten first)" : "");
  return kExitOk;
}

}  // namespace shmbus::tools
