// cmd_persist.cc: persist (run persisters until a stop signal), fsck, delete, and the
// removal of a stream's store (rm --data).
#include <dirent.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "args.h"
#include "commands.h"
#include "shmbus/persister.h"
#include "signals.h"

namespace shmbus::tools {

using namespace std::chrono_literals;

int cmd_persist(const PersistArgs& a) {
  const std::string ns = resolve_namespace(a.ns);
  persist::PersisterOptions o;
  o.data_dir = persist::resolve_data_dir(a.data_dir);
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
    o.segment_bytes = *b;
  }
  o.hold_producers = !a.let_go;
  o.secure_delete = a.secure;
  install_stop_handlers();
  // A file-size limit (RLIMIT_FSIZE) must come back as an error (the persister holds
  // producers and retries), not kill the process.
  signal(SIGXFSZ, SIG_IGN);
  std::vector<std::unique_ptr<persist::Persister>> running;
  for (const auto& s : a.streams) {
    auto p = persist::Persister::start(ns, s, o);
    if (!p) {
      for (auto& r : running) (void)r->stop();
      return fail("persist " + s + ": " + p.error().message);
    }
    running.push_back(std::move(p.value()));
  }
  std::fprintf(stderr, "shmbus: persisting %zu stream(s) into %s/%s (%s store, %s); stop with ^C\n",
               running.size(), o.data_dir.c_str(), ns.c_str(), a.store.c_str(), a.durability.c_str());
  while (!stop_requested()) {
    std::this_thread::sleep_for(50ms);
    for (auto& r : running)
      if (!r->running()) return fail("a persister stopped: " + r->stats().last_error);
  }
  int rc = kExitOk;
  for (size_t i = 0; i < running.size(); ++i) {
    auto st = running[i]->stats();
    if (auto r = running[i]->stop(); !r) rc = fail("persist " + a.streams[i] + ": " + r.error().message);
    std::fprintf(stderr, "shmbus: %s: stored %llu records (%llu bytes), durable below %llu\n",
                 a.streams[i].c_str(), static_cast<unsigned long long>(st.records),
                 static_cast<unsigned long long>(st.bytes),
                 static_cast<unsigned long long>(running[i]->stats().durable_seq));
  }
  return rc;
}

int cmd_fsck(const FsckArgs& a) {
  auto r = persist::fsck(a.dir, a.repair);
  if (!r) return fail(r.error());
  const auto& rep = r.value();
  std::printf("checked %llu stream(s), %llu segment(s), %llu records, %llu bytes\n",
              static_cast<unsigned long long>(rep.streams), static_cast<unsigned long long>(rep.segments),
              static_cast<unsigned long long>(rep.records), static_cast<unsigned long long>(rep.bytes));
  for (const auto& i : rep.issues)
    std::printf("%s %s at offset %llu (%llu bytes): %s\n", i.repaired ? "repaired" : "PROBLEM",
                i.path.c_str(), static_cast<unsigned long long>(i.offset),
                static_cast<unsigned long long>(i.bytes), i.problem.c_str());
  if (rep.clean()) {
    std::printf("%s\n", rep.issues.empty() ? "clean" : "clean after repair");
    return kExitOk;
  }
  return fail(std::to_string(rep.issues.size()) + " problem(s) found" +
              (a.repair ? "" : "; run with --repair to fix what can be fixed"));
}

int cmd_delete(const DeleteArgs& a) {
  const std::string ns = resolve_namespace(a.ns);
  auto ctl = StreamControl::open(ns, a.stream);
  if (!ctl) return fail(ctl.error());
  // The header's watermark takes effect at once for every reader (ring and store).
  ctl->raise_deleted_below(a.before);
  auto ps = ctl->persist();
  if (!ps) {
    std::printf("records below %llu will not be served (the stream is not persisted)\n",
                static_cast<unsigned long long>(a.before));
    return kExitOk;
  }
  // With no persister running, delete the segments now; a running one does it itself.
  const std::string suffix = "/" + ns + "/" + a.stream;
  std::string root = ps->store_dir.substr(0, ps->store_dir.size() - suffix.size());
  auto store = persist::SegmentStore::open(root, ns, a.stream);
  if (!store && store.error().code == Errc::kBusy) {
    std::printf("records below %llu deleted; the running persister removes their segments\n",
                static_cast<unsigned long long>(a.before));
    return kExitOk;
  }
  if (!store) return fail(store.error());
  auto d = store->delete_before(a.before);
  if (!d) return fail(d.error());
  ctl->set_oldest_persisted_seq(store->stats().oldest_seq);
  std::printf("records below %llu deleted: %llu segment(s), %llu bytes freed\n",
              static_cast<unsigned long long>(a.before), static_cast<unsigned long long>(d->segments),
              static_cast<unsigned long long>(d->bytes));
  return kExitOk;
}

// Removes DIR (a stream's store folder: files only, no links followed); with `secure`
// every file is overwritten with zeros and synced before it is unlinked.
Result<uint64_t> remove_store_dir(const std::string& dir, bool secure) {
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) {
    if (errno == ENOENT) return uint64_t{0};
    return make_error(Errc::kIo, "cannot open " + dir + ": " + std::strerror(errno));
  }
  DIR* d = fdopendir(dfd);
  std::vector<std::string> names;
  while (dirent* e = readdir(d))
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.push_back(e->d_name);
  uint64_t bytes = 0;
  for (const auto& n : names) {
    struct stat st;
    if (fstatat(dfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) {
      closedir(d);
      return make_error(Errc::kIo, dir + "/" + n + " is not a regular file: not removing " + dir);
    }
    if (secure) {
      int fd = openat(dfd, n.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd >= 0) {
        std::vector<char> zeros(1 << 20, 0);
        for (off_t off = 0; off < st.st_size;) {
          ssize_t w = pwrite(fd, zeros.data(), std::min<off_t>(zeros.size(), st.st_size - off), off);
          if (w <= 0) break;
          off += w;
        }
        fdatasync(fd);
        close(fd);
      }
    }
    if (unlinkat(dfd, n.c_str(), 0) != 0) {
      closedir(d);
      return make_error(Errc::kIo, "cannot remove " + dir + "/" + n + ": " + std::strerror(errno));
    }
    bytes += static_cast<uint64_t>(st.st_size);
  }
  closedir(d);
  if (rmdir(dir.c_str()) != 0) return make_error(Errc::kIo, "cannot remove " + dir + ": " + std::strerror(errno));
  return bytes;
}

}  // namespace shmbus::tools
