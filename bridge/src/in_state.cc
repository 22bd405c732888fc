// in_state.cc: see in_state.h.
#include "in_state.h"
#include "lock.h"  // sys_error
#include "shmbus/detail/descriptors.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

namespace shmbus::kafka::detail {
namespace {

constexpr uint64_t kFnvPrime = 0x100000001b3ULL;
constexpr uint64_t kFnvBasis = 0xcbf29ce484222325ULL;
constexpr uint64_t kCheckBasis = 0x6c62272e07bb0142ULL;  // another basis: the header's check

uint64_t fnv1a(const void* p, size_t n, uint64_t h) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) {
    h ^= b[i];
    h *= kFnvPrime;
  }
  return h;
}

uint64_t key_hash(const std::string& ns, const std::string& stream, const std::string& topic,
                  const std::string& group, uint64_t h) {
  const char zero = 0;
  for (const std::string* s : {&ns, &stream, &topic, &group}) {
    h = fnv1a(s->data(), s->size(), h);
    h = fnv1a(&zero, 1, h);
  }
  return h;
}

// Maps an open state file of the right size; nullptr on failure.
void* map_file(int fd) {
  void* m = ::mmap(nullptr, kInStateBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  return m == MAP_FAILED ? nullptr : m;
}

// Takes flock `how` (LOCK_SH or LOCK_EX) on fd, waiting at most ~2 s for a holder that
// conflicts: one that is removing or replacing the file holds it exclusively for
// milliseconds.  false: not had (errno says why).
bool lock(int fd, int how) {
  for (int i = 0; i < 2000; ++i) {
    if (::flock(fd, how | LOCK_NB) == 0) return true;
    if (errno != EWOULDBLOCK && errno != EINTR) return false;
    ::usleep(1000);
  }
  return false;
}

bool same_file(int a, int b) {
  struct stat x {}, y {};
  return ::fstat(a, &x) == 0 && ::fstat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

// Whether `path` still names the file open as fd (not removed or replaced since).
bool still_named(int fd, const std::string& path) {
  struct stat a {}, b {};
  return ::fstat(fd, &a) == 0 && ::lstat(path.c_str(), &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

bool header_matches(const InStateHeader& h, uint64_t check, uint64_t created_ns) {
  return std::memcmp(h.magic, kInStateMagic, sizeof h.magic) == 0 && h.version == kInStateVersion &&
         h.slots == kInStateSlots && h.key_check == check && h.stream_created_ns == created_ns;
}

}  // namespace

uint64_t message_fingerprint(int64_t timestamp_ms, const void* key, size_t key_len, const void* value,
                             size_t value_len) {
  uint64_t h = fnv1a(&timestamp_ms, sizeof timestamp_ms, kFnvBasis);
  const uint64_t kl = key ? key_len : UINT64_MAX;
  h = fnv1a(&kl, sizeof kl, h);
  if (key) h = fnv1a(key, key_len, h);
  const uint64_t vl = value ? value_len : UINT64_MAX;
  h = fnv1a(&vl, sizeof vl, h);
  if (value) h = fnv1a(value, value_len, h);
  return h ? h : 1;
}

std::string InState::path_for(const std::string& ns, const std::string& stream, const std::string& topic,
                              const std::string& group) {
  char name[80];
  std::snprintf(name, sizeof name, "/dev/shm/shmbus-bridge-in.%016llx.state",
                static_cast<unsigned long long>(key_hash(ns, stream, topic, group, kFnvBasis)));
  return name;
}

Result<InState> InState::open(const std::string& ns, const std::string& stream, const std::string& topic,
                              const std::string& group, uint64_t stream_created_ns) {
  const std::string path = path_for(ns, stream, topic, group);
  const uint64_t check = key_hash(ns, stream, topic, group, kCheckBasis);
  // Each retry means another bridge removed or replaced the file in between: they make
  // progress, but one bridge could lose every race to others that keep starting and
  // leaving in step with it (a count of 16 attempts ran out about once in 200 runs of a
  // test of two such bridges on a loaded machine).  So bounded by time, like lock(), and
  // after two lost races each waits a random while (up to 1 ms) to fall out of step.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  uint64_t rnd = (reinterpret_cast<uintptr_t>(&rnd) ^ static_cast<uint64_t>(::getpid()) ^
                 static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count())) | 1;
  for (int attempt = 0;; ++attempt) {
    if (auto r = open_once(path, check, stream_created_ns)) return std::move(*r);
    if (std::chrono::steady_clock::now() >= deadline) break;
    if (attempt >= 2) {
      rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;  // xorshift64
      ::usleep(static_cast<useconds_t>(rnd % std::min(1000u, 50u << std::min(attempt - 2, 5))));
    }
  }
  return make_error(Errc::kIo, "the bridge state file " + path + " kept being removed or replaced while opened");
}

std::optional<Result<InState>> InState::open_once(const std::string& path, uint64_t check,
                                                  uint64_t stream_created_ns) {
  // An existing file: ours, regular, of the right size, and bound to this key and stream.
  // Anything else of ours is replaced; a file that is not ours is an error.
  const int fd = shmbus::detail::above_stdio(::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (fd >= 0) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
      ::close(fd);
      return make_error(Errc::kPermission, "the bridge state file " + path + " is not the caller's private regular file");
    }
    if (!lock(fd, LOCK_SH)) {
      const std::string why = sys_error("cannot lock", path);
      const bool named = still_named(fd, path);  // else it was being removed: open again
      ::close(fd);
      if (!named) return std::nullopt;
      return make_error(Errc::kIo, why);
    }
    if (!still_named(fd, path)) {  // removed (or replaced) before we locked it: open again
      ::close(fd);
      return std::nullopt;
    }
    if (static_cast<uint64_t>(st.st_size) == kInStateBytes) {
      void* m = map_file(fd);
      if (!m) {
        ::close(fd);
        return make_error(Errc::kIo, sys_error("cannot map", path));
      }
      if (header_matches(*static_cast<const InStateHeader*>(m), check, stream_created_ns))
        return InState(reinterpret_cast<InStateSlot*>(static_cast<char*>(m) + sizeof(InStateHeader)), m, fd, path);
      ::munmap(m, kInStateBytes);
    }
    // Replaced only under an exclusive lock: every removal of what the path names (the
    // stale file's unlink in create(), remove()'s) is made by the one holder of the file
    // it names, and a new file is linked in only where the path names nothing, so two
    // bridges that both found it stale cannot each put a new one in place (the first one's
    // would be orphaned with its bridge recording into it).  A bridge that keeps the stale
    // one (of an older incarnation of the stream) leaves us without de-duplication.
    const bool exclusive = lock(fd, LOCK_EX);
    const int err = errno;
    if (!still_named(fd, path)) {  // another opener replaced it meanwhile: open that one
      ::close(fd);
      return std::nullopt;
    }
    if (!exclusive) {
      ::close(fd);
      errno = err;
      return make_error(Errc::kBusy, sys_error("cannot replace the stale bridge state file (a bridge of another "
                                               "incarnation of the stream holds it)",
                                               path));
    }
    auto made = create(path, check, stream_created_ns, true);
    ::close(fd);  // after the new one is in place: drops the exclusive lock
    return made;
  }
  if (errno == ELOOP) return make_error(Errc::kPermission, "the bridge state file " + path + " is a symbolic link");
  if (errno != ENOENT) return make_error(Errc::kIo, sys_error("cannot open", path));
  return create(path, check, stream_created_ns, false);
}

std::optional<Result<InState>> InState::create(const std::string& path, uint64_t check, uint64_t stream_created_ns,
                                               bool replace) {
  // Over a stale file: it goes first (we hold it exclusively, so nobody else changes what
  // the path names meanwhile); the new one is then put in place as when there was none,
  // and an opener that made one first in between wins (we open that one).
  if (replace && ::unlink(path.c_str()) != 0 && errno != ENOENT)
    return make_error(Errc::kIo, sys_error("cannot remove the stale", path));
  // A new file, filled in whole before it has its name: a reader never sees it half made.
  // Made without a name (O_TMPFILE) where the file system and /proc allow it, so that a
  // crash before it is in place leaves nothing behind; else under a private name.
  bool named = false;
  auto made = create_as(path, check, stream_created_ns, true, &named);
  if (!named) return made;
  return create_as(path, check, stream_created_ns, false, &named);
}

std::optional<Result<InState>> InState::create_as(const std::string& path, uint64_t check,
                                                  uint64_t stream_created_ns, bool unnamed,
                                                  bool* named_instead) {
  std::string tmp;  // the private name, when not unnamed
  int nfd;
  if (unnamed) {
    nfd = shmbus::detail::above_stdio(
        ::open(path.substr(0, path.rfind('/')).c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    if (nfd < 0) {
      *named_instead = errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL;
      if (*named_instead) return std::nullopt;
      return make_error(Errc::kIo, sys_error("cannot create a file beside", path));
    }
  } else {
    // (Unique within the process too: tests run several bridges' states in one.)
    static std::atomic<uint32_t> made{0};  // relaxed: only its uniqueness matters
    tmp = path + "." + std::to_string(::getpid()) + "." +
          std::to_string(made.fetch_add(1, std::memory_order_relaxed)) + ".tmp";
    (void)::unlink(tmp.c_str());
    nfd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (nfd < 0) return make_error(Errc::kIo, sys_error("cannot create", tmp));
    nfd = shmbus::detail::above_stdio(nfd);
    if (nfd < 0) {  // created, but no descriptor above 2 for it: not left behind
      const std::string why = sys_error("cannot move off descriptors 0-2", tmp);
      (void)::unlink(tmp.c_str());
      return make_error(Errc::kIo, why);
    }
  }
  void* m = nullptr;
  // Locked before it has its name: nobody else has it yet, so this never waits.  0600
  // whatever the umask (one that took the owner's write bit left a file no later bridge
  // could open).
  if (::fchmod(nfd, 0600) == 0 && lock(nfd, LOCK_SH) && ::ftruncate(nfd, static_cast<off_t>(kInStateBytes)) == 0)
    m = map_file(nfd);
  if (!m) {
    const std::string why = sys_error("cannot lock, size or map", unnamed ? "a new file beside " + path : tmp);
    ::close(nfd);
    if (!unnamed) (void)::unlink(tmp.c_str());
    return make_error(Errc::kIo, why);
  }
  auto* h = static_cast<InStateHeader*>(m);
  std::memcpy(h->magic, kInStateMagic, sizeof h->magic);
  h->version = kInStateVersion;
  h->slots = kInStateSlots;
  h->key_check = check;
  h->stream_created_ns = stream_created_ns;
  auto* slots = reinterpret_cast<InStateSlot*>(static_cast<char*>(m) + sizeof(InStateHeader));
  for (uint32_t i = 0; i < kInStateSlots; ++i) {
    slots[i].base.store(-1, std::memory_order_relaxed);
    slots[i].base_fp.store(0, std::memory_order_relaxed);
    slots[i].published.store(-1, std::memory_order_relaxed);
  }
  // Put in place only if the path names nothing (link never replaces, and never follows a
  // symlink at the path): another bridge that made one first wins, and we open that one.
  int rc;
  if (unnamed) {
    // thread-self: /proc/self names the main thread's descriptors, which differ from
    // ours in a thread that unshared its file table (another file would be linked in).
    char proc[48];
    std::snprintf(proc, sizeof proc, "/proc/thread-self/fd/%d", nfd);
    rc = ::linkat(AT_FDCWD, proc, AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW);
    // Without /proc: the form that needs CAP_DAC_READ_SEARCH.
    if (rc != 0 && errno == ENOENT && ::access("/proc/thread-self/fd", F_OK) != 0)
      rc = ::linkat(nfd, "", AT_FDCWD, path.c_str(), AT_EMPTY_PATH);
  } else {
    rc = ::link(tmp.c_str(), path.c_str());
  }
  int err = errno;
  if (!unnamed) (void)::unlink(tmp.c_str());
  if (rc == 0 && !still_named(nfd, path)) {
    // Something else was linked in (a /proc that names other descriptors): take that
    // name back (only ours can be there: the path named nothing before) and go the
    // named way.
    (void)::unlink(path.c_str());
    rc = -1;
    err = EPERM;
  }
  if (rc != 0) {
    ::munmap(m, kInStateBytes);
    ::close(nfd);
    if (err == EEXIST) return std::nullopt;  // another bridge made it first: open that one
    // No way to link an unnamed file here (no /proc, no privilege): the named way.
    *named_instead = unnamed && (err == ENOENT || err == EPERM || err == EACCES);
    if (*named_instead) return std::nullopt;
    errno = err;
    return make_error(Errc::kIo, sys_error("cannot put in place", path));
  }
  // Opened again by its name, so that /proc and lsof show the path rather than the
  // unnamed file's "(deleted)" (the mark of an orphaned state file).  Only we can have
  // changed what the path names since (every change needs an exclusive lock, and we hold
  // it shared); the first descriptor stays if this fails.
  if (unnamed) {
    const int named = shmbus::detail::above_stdio(::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (named >= 0 && same_file(named, nfd) && lock(named, LOCK_SH)) {
      // Unlocked explicitly: the mapping keeps the first open file (and with it its
      // lock) alive after the close, and remove() could then never take the lock.
      (void)::flock(nfd, LOCK_UN);
      ::close(nfd);
      nfd = named;
    } else if (named >= 0) {
      ::close(named);
    }
  }
  return InState(slots, m, nfd, path);
}

InState::~InState() {
  if (map_) ::munmap(map_, kInStateBytes);
  if (fd_ >= 0) ::close(fd_);  // drops this bridge's lock
}

int64_t InState::begin(int32_t partition, int64_t offset, uint64_t fp) {
  if (!tracked(partition)) return -1;
  InStateSlot& s = slots_[partition];
  // relaxed: see InStateSlot.  Values are only compared, never used as sizes or indexes.
  const int64_t base = s.base.load(std::memory_order_relaxed);
  const uint64_t base_fp = s.base_fp.load(std::memory_order_relaxed);
  const int64_t published = s.published.load(std::memory_order_relaxed);
  if (base >= 0 && base == offset && base_fp != 0 && base_fp == fp && published >= offset) return published;
  // A new run: forget what was published before (the group moved, or it is another topic).
  s.published.store(-1, std::memory_order_relaxed);
  s.base_fp.store(0, std::memory_order_relaxed);
  s.base.store(offset, std::memory_order_relaxed);
  s.base_fp.store(fp, std::memory_order_relaxed);
  return -1;
}

void InState::committed(int32_t partition, int64_t next) {
  if (!tracked(partition)) return;
  InStateSlot& s = slots_[partition];
  // relaxed: see InStateSlot.  base_fp first: between the two a crash leaves "unknown".
  if (s.base.load(std::memory_order_relaxed) == next) return;
  s.base_fp.store(0, std::memory_order_relaxed);
  s.base.store(next, std::memory_order_relaxed);
}

bool InState::settled() const noexcept {
  if (!slots_) return true;
  for (uint32_t p = 0; p < kInStateSlots; ++p) {
    // relaxed: see InStateSlot.  Values are only compared.
    const int64_t published = slots_[p].published.load(std::memory_order_relaxed);
    if (published >= 0 && published >= slots_[p].base.load(std::memory_order_relaxed)) return false;
  }
  return true;
}

bool InState::remove() {
  if (fd_ < 0 || path_.empty()) return false;
  // Exclusive only when no other bridge holds it; never waits for one.  Held, nobody else
  // can unlink this one or link one in its place before the unlink.
  const bool removed =
      ::flock(fd_, LOCK_EX | LOCK_NB) == 0 && still_named(fd_, path_) && ::unlink(path_.c_str()) == 0;
  // Let go at once (an opener that locked the removed file opens again at once), and be
  // inert from here: a failed conversion above may have dropped our shared lock.
  ::munmap(map_, kInStateBytes);
  ::close(fd_);
  map_ = nullptr;
  slots_ = nullptr;
  fd_ = -1;
  path_.clear();
  return removed;
}

InState::Slot InState::slot(int32_t partition) const {
  if (!tracked(partition)) return {-1, -1, 0};
  const InStateSlot& s = slots_[partition];
  return {s.base.load(std::memory_order_relaxed), s.published.load(std::memory_order_relaxed),
          s.base_fp.load(std::memory_order_relaxed)};
}

}  // namespace shmbus::kafka::detail
