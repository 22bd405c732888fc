// mapping.cc: create, open and validate a stream's shared-memory object.
#include "mapping.h"

#include "clock.h"
#include "ring.h"
#include "shmbus/detail/descriptors.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>


namespace shmbus {
using namespace detail;

namespace {

constexpr auto kInitWait = std::chrono::seconds(2);

// Waiting for a creator to finish (size, then version) is bounded per object by
// kInitWait, and in total by a process-wide budget that refills at one second per
// second up to kInitWait: objects that only look half-created (crafted, or left by a
// dead creator) cannot make a scan of many objects (ls) wait kInitWait each.
std::atomic<uint64_t> g_init_budget_at{0};  // steady ns at which the budget was full
std::chrono::steady_clock::time_point init_wait_deadline() {
  const uint64_t now = static_cast<uint64_t>(
      std::chrono::steady_clock::now().time_since_epoch().count());
  const uint64_t cap = static_cast<uint64_t>(std::chrono::nanoseconds(kInitWait).count());
  // relaxed: a rate limit; races only make it a little more or less generous.
  uint64_t full_at = g_init_budget_at.load(std::memory_order_relaxed);
  if (full_at + cap < now) full_at = now - cap;  // refilled up to the cap
  const uint64_t budget = full_at < now ? now - full_at : 0;
  return std::chrono::steady_clock::now() + std::chrono::nanoseconds(budget);
}
void spend_init_wait(std::chrono::steady_clock::time_point started) {
  const uint64_t now = static_cast<uint64_t>(
      std::chrono::steady_clock::now().time_since_epoch().count());
  const uint64_t cap = static_cast<uint64_t>(std::chrono::nanoseconds(kInitWait).count());
  const uint64_t spent = static_cast<uint64_t>(
      (std::chrono::steady_clock::now() - started).count());
  uint64_t full_at = g_init_budget_at.load(std::memory_order_relaxed);
  if (full_at + cap < now) full_at = now - cap;
  g_init_budget_at.store(full_at + spent, std::memory_order_relaxed);
}

Error from_errno(int err, const std::string& what) {
  switch (err) {
    case EEXIST: return make_error(Errc::kExists, what + " already exists");
    case ENOENT: return make_error(Errc::kNotFound, what + " not found");
    case EACCES:
    case EPERM: return make_error(Errc::kPermission, what + ": permission denied");
    case ELOOP: return make_error(Errc::kPermission, what + ": is a symbolic link (refused)");
    case ENOSPC: return make_error(Errc::kNoSpace, what + ": no space left");
    default: return make_error(Errc::kIo, what + ": " + std::strerror(err));
  }
}

std::string shm_path(const std::string& obj) { return "/dev/shm/" + obj; }

// ---- the SIGBUS guard -------------------------------------------------------
// A stream object that someone shrinks (ftruncate) under a mapping makes every access
// past its new end raise SIGBUS.  The handler below, installed once, maps private zero
// pages over the rest of the faulting mapping (so the access completes), flags the
// mapping broken, and returns; faults outside shmbus mappings go to the handler that
// was there before.  The table is lock-free (signal handlers cannot take locks).
struct Guarded {
  std::atomic<uintptr_t> base{0};
  std::atomic<uint64_t> len{0};
  std::atomic<uint32_t> prot{0};
  std::atomic<uint32_t> broken{0};
};
constexpr int kGuarded = 1024;
Guarded g_guarded[kGuarded];
struct sigaction g_prev_bus;
std::atomic<bool> g_guard_installed{false};

extern "C" void on_sigbus(int sig, siginfo_t* si, void* ctx) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(si->si_addr);
  for (Guarded& g : g_guarded) {
    // acquire: pairs with the release of base in guard_mapping().
    const uintptr_t b = g.base.load(std::memory_order_acquire);
    const uint64_t len = g.len.load(std::memory_order_relaxed);
    if (b == 0 || a < b || a >= b + len) continue;
    const uintptr_t page = a & ~uintptr_t{4095};
    mmap(reinterpret_cast<void*>(page), b + len - page, static_cast<int>(g.prot.load()),
         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    g.broken.store(1, std::memory_order_relaxed);  // relaxed: read on slow paths
    return;
  }
  if (g_prev_bus.sa_flags & SA_SIGINFO) {
    if (g_prev_bus.sa_sigaction) return g_prev_bus.sa_sigaction(sig, si, ctx);
  } else if (g_prev_bus.sa_handler != SIG_DFL && g_prev_bus.sa_handler != SIG_IGN) {
    return g_prev_bus.sa_handler(sig);
  }
  // Not ours and no handler: die of it, as without this guard.
  signal(SIGBUS, SIG_DFL);
  raise(SIGBUS);
}

int guard_mapping(void* base, uint64_t len, int prot) {
  if (!g_guard_installed.exchange(true)) {
    struct sigaction sa {};
    sa.sa_sigaction = on_sigbus;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGBUS, &sa, &g_prev_bus);
  }
  for (int i = 0; i < kGuarded; ++i) {
    uintptr_t expected = 0;
    // Claim the entry with a sentinel, fill it, then publish the base (release).
    if (!g_guarded[i].base.compare_exchange_strong(expected, 1, std::memory_order_acq_rel))
      continue;
    g_guarded[i].len.store(len, std::memory_order_relaxed);
    g_guarded[i].prot.store(static_cast<uint32_t>(prot), std::memory_order_relaxed);
    g_guarded[i].broken.store(0, std::memory_order_relaxed);
    g_guarded[i].base.store(reinterpret_cast<uintptr_t>(base), std::memory_order_release);
    return i;
  }
  return -1;  // more than kGuarded mappings at once: this one goes unguarded
}

std::string describe(std::string_view ns, std::string_view name) {
  return "stream '" + std::string(name) + "' in namespace '" + std::string(ns) + "'";
}

std::string human(uint64_t b) {
  char buf[32];
  if (b >= (1ULL << 30)) snprintf(buf, sizeof buf, "%.1f GiB", b / double(1ULL << 30));
  else snprintf(buf, sizeof buf, "%.1f MiB", b / double(1ULL << 20));
  return buf;
}

}  // namespace

Result<std::shared_ptr<StreamMapping>> StreamMapping::create(std::string_view ns,
                                                             std::string_view name,
                                                             const StreamOptions& opts) {
  if (auto r = validate_name("namespace", ns); !r) return r.error();
  if (auto r = validate_name("stream", name); !r) return r.error();
  const uint64_t cap = opts.capacity;
  if (cap < kMinCapacity || cap > kMaxCapacity || !std::has_single_bit(cap)) {
    std::string nearest;
    if (cap > kMinCapacity && cap < kMaxCapacity) {
      // Within the range but not a power of two: name the two nearest that are.
      auto size_text = [](uint64_t b) {
        return b >= (1ULL << 30) ? std::to_string(b >> 30) + "G"
               : b >= (1ULL << 20) ? std::to_string(b >> 20) + "M"
                                   : std::to_string(b >> 10) + "K";
      };
      const uint64_t below = std::bit_floor(cap);
      nearest = ": use " + size_text(below) + " or " + size_text(below * 2);
    }
    return make_error(Errc::kInvalidArgument,
                      "capacity " + std::to_string(cap) +
                          " must be a power of two from 4K to 4G (examples: 64K, 16M, 1G)" + nearest);
  }
  const uint64_t max_rec = opts.max_record ? opts.max_record : cap / 8;
  if (max_rec > cap / 2 - sizeof(RecordHeader) || max_rec >= (1ULL << 31))
    return make_error(Errc::kInvalidArgument,
                      "max record " + std::to_string(max_rec) + " must be at most capacity/2 - 32 (" +
                          std::to_string(cap / 2 - sizeof(RecordHeader)) + ")");
  if ((opts.mode & ~0777u) != 0)
    return make_error(Errc::kInvalidArgument, "mode must be octal permission bits like 0600");
  if (opts.persist) {
    if (auto r = check_persist_settings(*opts.persist); !r) return r.error();
  }
  // (Started nearer to 2^64, the numbering could wrap and every "at or after" comparison
  // with it; a store that continues above 2^63 gets its own message, persist/admin.cc.)
  if (opts.first_seq > kMaxFirstSeq)
    return make_error(Errc::kInvalidArgument, "first_seq " + std::to_string(opts.first_seq) +
                                                  " must be at most 2^63 (" +
                                                  std::to_string(kMaxFirstSeq) + ")");
  // (A watermark above the first record would hide the stream's records from readers.)
  if (opts.deleted_below > (opts.persist ? opts.first_seq : 0))
    return make_error(Errc::kInvalidArgument, "deleted_below " + std::to_string(opts.deleted_below) +
                                                  " must be at most first_seq " + std::to_string(opts.first_seq) +
                                                  ", and 0 for a stream that is not persisted");

  const uint64_t total = kDataOff + cap;
  struct statvfs vfs;
  if (statvfs("/dev/shm", &vfs) == 0) {
    uint64_t avail = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    if (avail < total)
      return make_error(Errc::kNoSpace,
                        describe(ns, name) + " needs " + human(total) + " but /dev/shm has only " +
                            human(avail) + " free: use a smaller --capacity, remove unused streams " +
                            "(shmbus ls / rm), or enlarge /dev/shm (mount -o remount,size=4G /dev/shm; " +
                            "docker run --shm-size=4g)");
  }

  auto m = std::shared_ptr<StreamMapping>(new StreamMapping());
  m->ns_ = ns;
  m->name_ = name;
  const std::string obj = object_name(ns, name);
  const std::string path = shm_path(obj);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, opts.mode);
  if (fd < 0) return from_errno(errno, describe(ns, name));
  // Our own object goes again on failure, but only while the name still refers to it: a
  // racing `rm` and create may have put another creator's stream there meanwhile (found
  // by a review: the "replaced while opening" error below unlinked it).
  auto unlink_ours = [&] {
    struct stat mine, now;
    if (fstat(fd, &mine) == 0 && ::lstat(path.c_str(), &now) == 0 && mine.st_ino == now.st_ino &&
        mine.st_dev == now.st_dev)
      unlink(path.c_str());
  };
  if (fd <= 2) {
    // Off the standard descriptors (as above_stdio() does); should that fail (no
    // descriptor left), the object just created goes again: not left empty (a review).
    const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (moved < 0) {
      const int e = errno;
      unlink_ours();
      ::close(fd);
      return from_errno(e, describe(ns, name));
    }
    ::close(fd);
    fd = moved;
  }
  (void)fchmod(fd, opts.mode);  // the umask does not narrow what was asked for
  // Reserve every page now: a full /dev/shm fails here, not as SIGBUS later.
  int rc = posix_fallocate(fd, 0, static_cast<off_t>(total));
  void* base = rc == 0 ? mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
  if (rc == 0 && base == MAP_FAILED) rc = errno;
  if (rc != 0) {
    if (base != MAP_FAILED) munmap(base, total);
    unlink_ours();
    ::close(fd);
    return make_error(rc == ENOSPC ? Errc::kNoSpace : Errc::kIo,
                      describe(ns, name) + ": cannot reserve " + human(total) + " in /dev/shm: " +
                          std::strerror(rc) + " (use a smaller --capacity or enlarge /dev/shm)");
  }
  m->hold_fd_ = fd;
  if (auto r = m->open_lock_fds(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC, describe(ns, name)); !r) {
    munmap(base, total);
    m->hold_fd_ = -1;
    unlink_ours();
    ::close(fd);
    return r.error();
  }
  m->base_ = base;
  m->map_bytes_ = total;
  m->guard_ = guard_mapping(base, total, PROT_READ | PROT_WRITE);
  if (m->guard_ >= 0) m->broken_ = &g_guarded[m->guard_].broken;
  auto* h = static_cast<StreamHeader*>(m->base_);
  uint64_t salt = 0;
  if (getrandom(&salt, sizeof salt, 0) != sizeof salt) salt = now_ns() * 0x9e3779b97f4a7c15ULL;
  salt &= ~7ULL;  // an all-zero tag then decodes to state 0: never a valid record
  h->magic = kMagic;
  h->header_bytes = kDataOff;
  h->capacity = cap;
  h->max_record = max_rec;
  h->total_bytes = total;
  h->created_ns = now_ns();
  h->salt = salt;
  // A stream re-created over its store continues the store's numbering: every cursor
  // starts at position 0 with sequence first_seq (nobody else maps the object yet).
  h->first_seq = opts.first_seq;
  h->claim.seq = opts.first_seq;
  h->head.seq = opts.first_seq;
  h->floor.seq = opts.first_seq;
  h->abandon_timeout_ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(opts.abandon_timeout).count());
  h->consumer_dead_timeout_ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(opts.consumer_dead_timeout).count());
  h->consumer_retention_ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(opts.consumer_retention).count());
  h->max_producers = kMaxProducers;
  h->max_consumers = kMaxConsumers;
  h->creator_pid = static_cast<uint32_t>(getpid());
  // Multi-producer streams keep layout 4 (no flags), which builds that read only version 4
  // open: the counters' line measured no difference for them.
  h->flags = opts.single_producer ? kFlagSingleProducer | kFlagPlainCommits | kFlagSlotCounters : 0;
  h->ns_len = static_cast<uint32_t>(ns.size());
  h->stream_len = static_cast<uint32_t>(name.size());
  std::memcpy(h->ns, ns.data(), ns.size());
  std::memcpy(h->stream, name.data(), name.size());
  if (opts.persist) {
    // Created over its store (StreamOptions::persist): persisted, durable below
    // first_seq, and its persister's group registered, detached at first_seq, as a
    // Consumer opened and closed leaves it (consumer.cc) in slot 0, before anyone else
    // can open the stream: relaxed stores, published by the release of version below.
    write_persist_fields(h, *opts.persist);
    store_relaxed(h->persist_enabled, 1u);
    store_relaxed(h->durable_seq, opts.first_seq);
    store_relaxed(h->deleted_below, opts.deleted_below);
    ConsumerSlot* slot = reinterpret_cast<ConsumerSlot*>(reinterpret_cast<std::byte*>(h) + kConsumerSlotsOff);
    static_assert(std::char_traits<char>::length(kPersisterGroupName) < kNameBytes);
    std::memcpy(slot->name, kPersisterGroupName, std::strlen(kPersisterGroupName));  // (zeros after)
    store_relaxed(slot->position, uint64_t{0});
    store_relaxed(slot->next_seq, opts.first_seq);
    store_relaxed(slot->last_active_ns, h->created_ns);
    store_relaxed(slot->kind, kKindPersister);
    store_relaxed(slot->owner, uint64_t{0});
    store_relaxed(slot->state, kSlotReady);
    store_relaxed(h->consumer_hwm, 1u);
  }
  const uint32_t version = h->flags ? kLayoutVersion : kLayoutVersion4;
  // release: pairs with the acquire load in open(); everything above is visible first.
  h->version.store(version, std::memory_order_release);
  m->hdr_ = h;
  m->flags_ = h->flags;
  m->version_ = version;
  m->data_ = reinterpret_cast<std::byte*>(h) + kDataOff;
  m->capacity_ = cap;
  m->max_record_ = max_rec;
  m->salt_ = salt;
  return m;
}

Result<std::shared_ptr<StreamMapping>> StreamMapping::open(std::string_view ns, std::string_view name,
                                                           bool read_only) {
  if (auto r = validate_name("namespace", ns); !r) return r.error();
  if (auto r = validate_name("stream", name); !r) return r.error();
  auto m = std::shared_ptr<StreamMapping>(new StreamMapping());
  m->ns_ = ns;
  m->name_ = name;
  m->read_only_ = read_only;
  const std::string obj = object_name(ns, name);
  const std::string path = shm_path(obj);
  const std::string what = describe(ns, name);
  const int flags = (read_only ? O_RDONLY : O_RDWR) | O_NOFOLLOW | O_CLOEXEC;
  m->hold_fd_ = above_stdio(::open(path.c_str(), flags));
  if (m->hold_fd_ < 0) {
    Error err = from_errno(errno, what);
    if (err.code == Errc::kNotFound)
      err.message += " (create it with: shmbus create " + std::string(name) + " --capacity 1M" +
                     (ns == "default" ? "" : " --namespace " + std::string(ns)) + ")";
    return err;
  }
  if (auto r = m->open_lock_fds(path, flags, what); !r) return r.error();
  struct stat st;
  if (fstat(m->hold_fd_, &st) != 0) return from_errno(errno, what);
  if (!S_ISREG(st.st_mode)) return make_error(Errc::kIncompatible, what + " is not a regular file");
  // A creator may still be between open and fallocate: wait for the size, unless the
  // object is older than the wait (its creator died).
  const auto started = std::chrono::steady_clock::now();
  const auto deadline = std::min(started + kInitWait, init_wait_deadline());
  const bool young = static_cast<uint64_t>(st.st_ctim.tv_sec) * 1000000000ULL +
                         static_cast<uint64_t>(st.st_ctim.tv_nsec) + 2000000000ULL >
                     now_ns();
  while (st.st_size == 0 && young && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (fstat(m->hold_fd_, &st) != 0) return from_errno(errno, what);
  }
  spend_init_wait(started);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < sizeof(StreamHeader))
    return make_error(Errc::kTruncated,
                      what + " is truncated: " + std::to_string(size) +
                          " bytes, less than its 4096-byte header (a creator died, or not a "
                          "shmbus stream; remove it with shmbus rm --force)");
  // Map what the object holds, at most the largest stream there can be; validate() then
  // checks that the header's size fits inside.
  m->map_bytes_ = std::min<uint64_t>(size, kDataOff + kMaxCapacity);
  m->base_ = mmap(nullptr, m->map_bytes_, read_only ? PROT_READ : PROT_READ | PROT_WRITE,
                  MAP_SHARED, m->hold_fd_, 0);
  if (m->base_ == MAP_FAILED) {
    m->base_ = nullptr;
    return from_errno(errno, what);
  }
  m->hdr_ = static_cast<StreamHeader*>(m->base_);
  m->guard_ = guard_mapping(m->base_, m->map_bytes_, read_only ? PROT_READ : PROT_READ | PROT_WRITE);
  if (m->guard_ >= 0) m->broken_ = &g_guarded[m->guard_].broken;
  if (auto r = m->validate(size); !r) return r.error();
  if (!m->cursors_ok())
    return make_error(Errc::kCorrupt, what + " has a corrupt header (its cursors do not add up); "
                                             "remove it with shmbus rm --force");
  // Every page must be there: a sparse object (truncated up, never fallocated) would be
  // filled by page faults on the hot path, or SIGBUS when /dev/shm is full.
  if (static_cast<uint64_t>(st.st_blocks) * 512 < kDataOff + m->capacity_)
    return make_error(Errc::kCorrupt, what + " is sparse (" +
                                          std::to_string(uint64_t(st.st_blocks) * 512) +
                                          " bytes allocated of " +
                                          std::to_string(kDataOff + m->capacity_) +
                                          "): not created by shmbus; remove it with shmbus rm --force");
  return m;
}

bool StreamMapping::others_can_write() const noexcept {
  struct stat st;
  if (hold_fd_ < 0 || ::fstat(hold_fd_, &st) != 0) return true;
  return st.st_uid != ::geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
}

NameState StreamMapping::name_state() const noexcept {
  struct stat mine, now;
  if (hold_fd_ < 0 || ::fstat(hold_fd_, &mine) != 0) return NameState::kSame;  // cannot tell
  if (::lstat(shm_path(object_name(ns_, name_)).c_str(), &now) != 0)
    return errno == ENOENT ? NameState::kRemoved : NameState::kSame;
  return now.st_ino == mine.st_ino && now.st_dev == mine.st_dev ? NameState::kSame
                                                                 : NameState::kReplaced;
}

// fork() and liveness.  A participant is alive while an OFD lock on its slot is held
// through lock_fd_'s open file description; fork() gives the child references to the
// same descriptions, so a child that outlived its parent would keep the parent's killed
// producers and consumers alive for ever (claims never abandoned, groups never evicted),
// and likewise a registry lock taken through probe_fd_.  The child closes its copies of
// both at once; what it inherited is the parent's and dies with it.  (Mappings reference
// hold_fd_'s description, which therefore never holds a lock.)  The list of mappings
// changes only at open and close, under fork_mutex() (clock.h), which the prepare handler
// holds across the fork.  The handlers are registered when the library is loaded, so
// that they also cover one-time initialisations that run before the first mapping.
namespace {
std::vector<StreamMapping*> g_mappings;  // guarded by fork_mutex()
void fork_prepare() { fork_mutex().lock(); }
void fork_parent() { fork_mutex().unlock(); }
}  // namespace

void StreamMapping::after_fork_in_child() {
  for (StreamMapping* m : g_mappings) {
    if (m->lock_fd_ >= 0) ::close(m->lock_fd_);
    if (m->probe_fd_ >= 0) ::close(m->probe_fd_);
    m->lock_fd_ = m->probe_fd_ = -1;
    m->inherited_ = true;
  }
  g_mappings.clear();  // keeps its capacity: no allocation here
  fork_mutex().unlock();  // the forking thread locked it in fork_prepare()
}

namespace {
[[maybe_unused]] const int g_atfork =
    pthread_atfork(fork_prepare, fork_parent, &StreamMapping::after_fork_in_child);
}  // namespace

Result<void> StreamMapping::open_lock_fds(const std::string& path, int flags, const std::string& what) {
  {
    // Opened and listed in one step under the fork mutex, and closed likewise (the
    // destructor): a fork() from another thread never leaves a child holding either
    // description unlisted, which after_fork_in_child() would then not close (a
    // registry lock the parent takes through probe_fd_ would outlive the parent).
    std::lock_guard<std::mutex> lock(fork_mutex());
    lock_fd_ = above_stdio(::open(path.c_str(), flags));
    if (lock_fd_ < 0) return from_errno(errno, what);
    probe_fd_ = above_stdio(::open(path.c_str(), flags));
    if (probe_fd_ < 0) {
      const int e = errno;
      ::close(lock_fd_);
      lock_fd_ = -1;
      return from_errno(e, what);
    }
    g_mappings.push_back(this);
  }
  struct stat a, b, c;
  if (fstat(hold_fd_, &a) != 0 || fstat(lock_fd_, &b) != 0 || fstat(probe_fd_, &c) != 0)
    return from_errno(errno, what);
  if (a.st_ino != b.st_ino || a.st_dev != b.st_dev || a.st_ino != c.st_ino || a.st_dev != c.st_dev)
    return make_error(Errc::kBusy, what + " was replaced while opening it; try again");
  return {};
}

StreamMapping::~StreamMapping() {
  {
    std::lock_guard<std::mutex> lock(fork_mutex());
    for (auto& p : g_mappings)
      if (p == this) {
        p = g_mappings.back();
        g_mappings.pop_back();
        break;
      }
    // Under the mutex too (see open_lock_fds()): a child forked between the unlisting
    // and the close would keep the holds taken through lock_fd_ alive.
    if (lock_fd_ >= 0) ::close(lock_fd_);
    if (probe_fd_ >= 0) ::close(probe_fd_);
  }
  if (guard_ >= 0) g_guarded[guard_].base.store(0, std::memory_order_release);
  if (base_) munmap(base_, map_bytes_);
  if (hold_fd_ >= 0) ::close(hold_fd_);
}

namespace {
bool ofd(int fd, int cmd, short type, uint64_t off, struct flock* out = nullptr) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(off);
  fl.l_len = 1;
  fl.l_pid = 0;
  int rc;
  do rc = fcntl(fd, cmd, &fl);
  while (rc != 0 && errno == EINTR && cmd == F_OFD_GETLK);
  if (out) *out = fl;
  return rc == 0;
}
}  // namespace

bool StreamMapping::hold(uint64_t off) const noexcept {
  return ofd(lock_fd_, F_OFD_SETLK, F_RDLCK, off);
}
void StreamMapping::release(uint64_t off) const noexcept {
  (void)ofd(lock_fd_, F_OFD_SETLK, F_UNLCK, off);
}
bool StreamMapping::held(uint64_t off) const noexcept {
  struct flock fl;
  if (!ofd(probe_fd_, F_OFD_GETLK, F_WRLCK, off, &fl)) return true;
  return fl.l_type != F_UNLCK;
}
bool StreamMapping::try_lock_registry() const noexcept {
  return ofd(probe_fd_, F_OFD_SETLK, F_WRLCK, offsetof(StreamHeader, registry_lock));
}
void StreamMapping::unlock_registry() const noexcept {
  (void)ofd(probe_fd_, F_OFD_SETLK, F_UNLCK, offsetof(StreamHeader, registry_lock));
}

bool StreamMapping::cursors_ok() const noexcept {
  // Read floor, head, claim, then floor again: each only grows, so a pair read in this
  // order obeys floor <= head <= claim and claim <= floor' + capacity even while they move.
  const PosSeq f = detail::read_posseq_bounded(&hdr_->floor);
  const PosSeq h = detail::read_posseq_bounded(&hdr_->head);
  const PosSeq c = detail::read_posseq_bounded(&hdr_->claim);
  const PosSeq f2 = detail::read_posseq_bounded(&hdr_->floor);
  const uint64_t align = kRecordAlign - 1;
  // (f2 may have passed c meanwhile: floor moved on after we read the claim.)
  return ((f.pos | h.pos | c.pos | f2.pos) & align) == 0 && c.pos < detail::kMaxPosition &&
         f2.pos < detail::kMaxPosition && f.pos <= h.pos && h.pos <= c.pos &&
         (f2.pos >= c.pos || c.pos - f2.pos <= capacity_) && f.seq <= c.seq && h.seq <= c.seq;
}

void StreamMapping::populate() noexcept {
  // Map every page now (rings up to 1 GiB), so that the first lap does not pay a page
  // fault per page on the hot path.  Best effort: older kernels lack these advices.
  constexpr int kPopulateRead = 22, kPopulateWrite = 23;  // MADV_POPULATE_{READ,WRITE}
  if (capacity_ > (1ULL << 30)) return;
  (void)madvise(base_, map_bytes_,
                read_only_ ? kPopulateRead : kPopulateWrite);
}

Result<void> StreamMapping::validate(uint64_t file_size) {
  const std::string what = describe(ns_, name_);
  uint32_t v = 0;
  const auto started = std::chrono::steady_clock::now();
  const auto deadline = std::min(started + kInitWait, init_wait_deadline());
  // A creator writes magic, then the rest, then releases version: wait for it while the
  // object is still all zeros.  acquire: pairs with the creator's release of version.
  while ((v = hdr_->version.load(std::memory_order_acquire)) == 0 &&
         (hdr_->magic == 0 || hdr_->magic == kMagic) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (v == 0) spend_init_wait(started);
  if (hdr_->magic != kMagic)
    return make_error(Errc::kIncompatible, what + " is not a shmbus stream (bad magic)");
  if (v == 0)
    return make_error(Errc::kCorrupt, what + " was never finished by its creator (it died while "
                                             "creating it); remove it with shmbus rm --force");
  if (v != kLayoutVersion && v != kLayoutVersion4)
    return make_error(Errc::kIncompatible, what + " has layout version " + std::to_string(v) +
                                               "; this build reads versions " +
                                               std::to_string(kLayoutVersion4) + " and " +
                                               std::to_string(kLayoutVersion));
  // Read once: the copy is what this handle honours, whatever the header says later.
  const uint32_t flags = hdr_->flags;
  if ((v == kLayoutVersion4 && flags != 0) || (flags & ~kKnownFlags) != 0)
    return make_error(Errc::kIncompatible, what + " has flags " + std::to_string(flags) +
                                               " that this build does not know (layout version " +
                                               std::to_string(v) + ")");
  flags_ = flags;
  version_ = v;
  // The fields this handle keeps, each read once (a single load each: a field the
  // compiler loaded again after the check could come back changed by another process,
  // and a max_record past the check let a durable batch's run take a size near 2^64: a
  // review).  The copies are what is checked and what is kept.
  const uint64_t cap = load_relaxed(&hdr_->capacity);
  const uint64_t max_record = load_relaxed(&hdr_->max_record);
  const uint64_t salt = load_relaxed(&hdr_->salt);
  const uint64_t total_bytes = load_relaxed(&hdr_->total_bytes);
  if (hdr_->header_bytes != kDataOff || cap < kMinCapacity || cap > kMaxCapacity ||
      !std::has_single_bit(cap) || max_record == 0 ||
      max_record > cap / 2 - sizeof(RecordHeader) || total_bytes != kDataOff + cap ||
      hdr_->max_producers != kMaxProducers || hdr_->max_consumers != kMaxConsumers ||
      (salt & 7) != 0)
    return make_error(Errc::kCorrupt, what + " has a corrupt header (sizes do not add up)");
  // The owner names' lengths read once too: checked, then used for the views below.
  const uint32_t ns_len = load_relaxed(&hdr_->ns_len), stream_len = load_relaxed(&hdr_->stream_len);
  if (ns_len > 100 || stream_len > 100)
    return make_error(Errc::kCorrupt, what + " has a corrupt header (owner names)");
  const std::string_view owner_ns(hdr_->ns, ns_len), owner_stream(hdr_->stream, stream_len);
  if (owner_ns != ns_ || owner_stream != name_) {
    // Names that do not even make this object's name: a damaged header, not another
    // stream's object (which `rm --force` must never remove; this one it may: a review
    // found a flipped length byte blamed on dots, and the object removable only by hand).
    if (object_name(owner_ns, owner_stream) != object_name(ns_, name_))
      return make_error(Errc::kCorrupt, what + " has a corrupt header (its owner names are not its own); "
                                               "remove it with shmbus rm --force");
    return make_error(Errc::kExists,
                      "shared-memory object " + object_name(ns_, name_) + " belongs to " +
                          describe(owner_ns, owner_stream) + ", not to " + what +
                          " (dots make the two names meet)");
  }
  if (file_size < total_bytes)
    return make_error(Errc::kTruncated, what + " is truncated: " + std::to_string(file_size) +
                                            " bytes, its header says " +
                                            std::to_string(total_bytes));
  data_ = reinterpret_cast<std::byte*>(hdr_) + kDataOff;
  capacity_ = cap;
  max_record_ = max_record;
  salt_ = salt;
  return {};
}

}  // namespace shmbus
