// mapping.cc: create, open and validate a stream's shared-memory object.
#include "mapping.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <thread>

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

namespace shmbus {
namespace bip = boost::interprocess;
using namespace detail;

namespace {

constexpr auto kInitWait = std::chrono::seconds(2);

Error from_boost(const bip::interprocess_exception& e, const std::string& what) {
  switch (e.get_error_code()) {
    case bip::already_exists_error: return make_error(Errc::kExists, what + " already exists");
    case bip::not_found_error: return make_error(Errc::kNotFound, what + " not found");
    case bip::security_error:
      return make_error(Errc::kPermission, what + ": permission denied (" + e.what() + ")");
    case bip::out_of_space_error: return make_error(Errc::kNoSpace, what + ": no space left");
    default: return make_error(Errc::kIo, what + ": " + e.what());
  }
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

ProducerSlot* StreamMapping::producer_slot(uint32_t i) const noexcept {
  return reinterpret_cast<ProducerSlot*>(reinterpret_cast<std::byte*>(hdr_) + kProducerSlotsOff) + i;
}
ConsumerSlot* StreamMapping::consumer_slot(uint32_t i) const noexcept {
  return reinterpret_cast<ConsumerSlot*>(reinterpret_cast<std::byte*>(hdr_) + kConsumerSlotsOff) + i;
}

Result<std::shared_ptr<StreamMapping>> StreamMapping::create(std::string_view ns,
                                                             std::string_view name,
                                                             const StreamOptions& opts) {
  if (auto r = validate_name("namespace", ns); !r) return r.error();
  if (auto r = validate_name("stream", name); !r) return r.error();
  const uint64_t cap = opts.capacity;
  if (cap < kMinCapacity || cap > kMaxCapacity || !std::has_single_bit(cap))
    return make_error(Errc::kInvalidArgument,
                      "capacity " + std::to_string(cap) +
                          " must be a power of two from 4K to 4G (examples: 64K, 16M, 1G)");
  const uint64_t max_rec = opts.max_record ? opts.max_record : cap / 8;
  if (max_rec > cap / 2 - sizeof(RecordHeader) || max_rec >= (1ULL << 31))
    return make_error(Errc::kInvalidArgument,
                      "max record " + std::to_string(max_rec) + " must be at most capacity/2 - 32 (" +
                          std::to_string(cap / 2 - sizeof(RecordHeader)) + ")");
  if ((opts.mode & ~0777u) != 0)
    return make_error(Errc::kInvalidArgument, "mode must be octal permission bits like 0600");

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
  try {
    bip::shared_memory_object shm(bip::create_only, obj.c_str(), bip::read_write,
                                  bip::permissions(opts.mode));
    // Reserve every page now: a full /dev/shm fails here, not as SIGBUS later.
    int rc = posix_fallocate(shm.get_mapping_handle().handle, 0, static_cast<off_t>(total));
    if (rc != 0) {
      bip::shared_memory_object::remove(obj.c_str());
      return make_error(rc == ENOSPC ? Errc::kNoSpace : Errc::kIo,
                        describe(ns, name) + ": cannot reserve " + human(total) + " in /dev/shm: " +
                            std::strerror(rc) + " (use a smaller --capacity or enlarge /dev/shm)");
    }
    m->region_ = bip::mapped_region(shm, bip::read_write);
  } catch (const bip::interprocess_exception& e) {
    return from_boost(e, describe(ns, name));
  }
  auto* h = static_cast<StreamHeader*>(m->region_.get_address());
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
  h->abandon_timeout_ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(opts.abandon_timeout).count());
  h->consumer_dead_timeout_ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(opts.consumer_dead_timeout).count());
  h->max_producers = kMaxProducers;
  h->max_consumers = kMaxConsumers;
  h->creator_pid = static_cast<uint32_t>(getpid());
  h->ns_len = static_cast<uint32_t>(ns.size());
  h->stream_len = static_cast<uint32_t>(name.size());
  std::memcpy(h->ns, ns.data(), ns.size());
  std::memcpy(h->stream, name.data(), name.size());
  // release: pairs with the acquire load in open(); everything above is visible first.
  h->version.store(kLayoutVersion, std::memory_order_release);
  m->hdr_ = h;
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
  const auto mode = read_only ? bip::read_only : bip::read_write;
  try {
    bip::shared_memory_object shm(bip::open_only, obj.c_str(), mode);
    bip::offset_t size = 0;
    const auto deadline = std::chrono::steady_clock::now() + kInitWait;
    // A creator may still be between shm_open and fallocate: wait for the size, unless
    // the object is older than the wait (its creator died).
    struct stat st;
    const bool young = fstat(shm.get_mapping_handle().handle, &st) == 0 &&
                       static_cast<uint64_t>(st.st_ctim.tv_sec) * 1000000000ULL +
                               static_cast<uint64_t>(st.st_ctim.tv_nsec) + 2000000000ULL >
                           now_ns();
    while (shm.get_size(size) && size == 0 && young &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (size < static_cast<bip::offset_t>(sizeof(StreamHeader)))
      return make_error(Errc::kTruncated,
                        describe(ns, name) + " is truncated: " + std::to_string(size) +
                            " bytes, less than its 4096-byte header (a creator died, or not a "
                            "shmbus stream; remove it with shmbus rm --force)");
    m->region_ = bip::mapped_region(shm, mode);
    m->hdr_ = static_cast<StreamHeader*>(m->region_.get_address());
    if (auto r = m->validate(static_cast<uint64_t>(size)); !r) return r.error();
  } catch (const bip::interprocess_exception& e) {
    Error err = from_boost(e, describe(ns, name));
    if (err.code == Errc::kNotFound)
      err.message += " (create it with: shmbus create " + std::string(name) + " --capacity 16M" +
                     (ns == "default" ? "" : " --namespace " + std::string(ns)) + ")";
    return err;
  }
  return m;
}

void StreamMapping::populate() noexcept {
  // Map every page now (rings up to 1 GiB), so that the first lap does not pay a page
  // fault per page on the hot path.  Best effort: older kernels lack these advices.
  constexpr int kPopulateRead = 22, kPopulateWrite = 23;  // MADV_POPULATE_{READ,WRITE}
  if (capacity_ > (1ULL << 30)) return;
  (void)madvise(region_.get_address(), region_.get_size(),
                read_only_ ? kPopulateRead : kPopulateWrite);
}

Result<void> StreamMapping::validate(uint64_t file_size) {
  const std::string what = describe(ns_, name_);
  uint32_t v = 0;
  const auto deadline = std::chrono::steady_clock::now() + kInitWait;
  // A creator writes magic, then the rest, then releases version: wait for it while the
  // object is still all zeros.  acquire: pairs with the creator's release of version.
  while ((v = hdr_->version.load(std::memory_order_acquire)) == 0 &&
         (hdr_->magic == 0 || hdr_->magic == kMagic) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (hdr_->magic != kMagic)
    return make_error(Errc::kIncompatible, what + " is not a shmbus stream (bad magic)");
  if (v == 0)
    return make_error(Errc::kCorrupt, what + " was never finished by its creator (it died while "
                                             "creating it); remove it with shmbus rm --force");
  if (v != kLayoutVersion)
    return make_error(Errc::kIncompatible, what + " has layout version " + std::to_string(v) +
                                               "; this build reads version " +
                                               std::to_string(kLayoutVersion));
  const uint64_t cap = hdr_->capacity;
  if (hdr_->header_bytes != kDataOff || cap < kMinCapacity || cap > kMaxCapacity ||
      !std::has_single_bit(cap) || hdr_->max_record == 0 ||
      hdr_->max_record > cap / 2 - sizeof(RecordHeader) || hdr_->total_bytes != kDataOff + cap ||
      hdr_->max_producers != kMaxProducers || hdr_->max_consumers != kMaxConsumers ||
      (hdr_->salt & 7) != 0)
    return make_error(Errc::kCorrupt, what + " has a corrupt header (sizes do not add up)");
  if (hdr_->ns_len > 100 || hdr_->stream_len > 100)
    return make_error(Errc::kCorrupt, what + " has a corrupt header (owner names)");
  if (std::string_view(hdr_->ns, hdr_->ns_len) != ns_ ||
      std::string_view(hdr_->stream, hdr_->stream_len) != name_)
    return make_error(Errc::kExists,
                      "shared-memory object " + object_name(ns_, name_) + " belongs to " +
                          describe(std::string_view(hdr_->ns, hdr_->ns_len),
                                   std::string_view(hdr_->stream, hdr_->stream_len)) +
                          ", not to " + what + " (dots make the two names meet)");
  if (file_size < hdr_->total_bytes)
    return make_error(Errc::kTruncated, what + " is truncated: " + std::to_string(file_size) +
                                            " bytes, its header says " +
                                            std::to_string(hdr_->total_bytes));
  data_ = reinterpret_cast<std::byte*>(hdr_) + kDataOff;
  capacity_ = cap;
  max_record_ = hdr_->max_record;
  salt_ = hdr_->salt;
  return {};
}

}  // namespace shmbus
