// control.cc: the persistence fields of the stream header (StreamControl) and the
// producer's wait for durability.
#include <cstring>

#include "mapping.h"
#include "shmbus/detail/stream_control.h"
#include "ring.h"

namespace shmbus {
using namespace detail;

StreamControl::StreamControl(StreamControl&&) noexcept = default;
StreamControl& StreamControl::operator=(StreamControl&&) noexcept = default;
StreamControl::~StreamControl() = default;

Result<StreamControl> StreamControl::open(std::string_view ns, std::string_view name,
                                          bool read_only) {
  auto m = StreamMapping::open(ns, name, read_only);
  if (!m) return m.error();
  StreamControl c;
  c.m_ = std::move(m.value());
  c.others_write_ = c.m_->others_can_write();
  return c;
}

const std::string& StreamControl::ns() const noexcept { return m_->ns(); }
const std::string& StreamControl::name() const noexcept { return m_->name(); }

std::optional<PersistSettings> detail::read_persist_settings(const StreamHeader* h) {
  // acquire: pairs with the release of persist_enabled in set_persist().
  if (load_acquire(h->persist_enabled) == 0) return std::nullopt;
  PersistSettings s;
  uint32_t len = std::min<uint32_t>(h->store_dir_len, sizeof h->store_dir);
  s.store_dir.assign(h->store_dir, len);
  // Any writer of the ring can write the path: one that set_persist() would refuse (not
  // absolute, which a reader would resolve against its own working directory, or with a
  // NUL, which its system calls would cut short) names no store.
  if (!store_path_ok(s.store_dir)) s.store_dir.clear();
  s.store_kind = h->store_kind == 1 ? StoreKind::kPmem : StoreKind::kFile;
  s.hold_producers = h->on_persister_dead == 0;
  s.sync = h->durability == 1;
  s.flush_interval = std::chrono::nanoseconds(h->flush_interval_ns);
  s.retention_age = std::chrono::nanoseconds(h->retention_age_ns);
  s.retention_bytes = h->retention_bytes;
  s.segment_bytes = h->segment_bytes;
  s.secure_delete = (h->persist_flags & 1) != 0;
  return s;
}

std::optional<PersistSettings> StreamControl::persist() const {
  return read_persist_settings(m_->header());
}

bool detail::store_path_ok(std::string_view dir) noexcept {
  return !dir.empty() && dir[0] == '/' && dir.size() <= sizeof StreamHeader::store_dir &&
         dir.find('\0') == std::string_view::npos;
}

Result<void> detail::check_persist_settings(const PersistSettings& s) {
  if (!store_path_ok(s.store_dir))
    return make_error(Errc::kInvalidArgument,
                      "store directory must be an absolute path of at most 2048 bytes, without NUL");
  if (s.store_kind != StoreKind::kFile && s.store_kind != StoreKind::kPmem)
    return make_error(Errc::kInvalidArgument, "store kind must be file or pmem");
  return {};
}

Result<void> StreamControl::set_persist(const PersistSettings& s) {
  if (m_->read_only()) return make_error(Errc::kPermission, "stream control opened read-only");
  StreamHeader* h = m_->header();
  if (auto r = check_persist_settings(s); !r) return r;
  RegistryLock lock(*m_);
  if (!lock.ok()) return lock.error();
  // Readers take the settings when persist_enabled is 1: withdraw it while rewriting.
  store_relaxed(h->persist_enabled, 0);
  write_persist_fields(h, s);
  // release: pairs with the acquire in read_persist_settings().
  store_release(h->persist_enabled, 1);
  return {};
}

void detail::write_persist_fields(StreamHeader* h, const PersistSettings& s) {
  std::memset(h->store_dir, 0, sizeof h->store_dir);
  std::memcpy(h->store_dir, s.store_dir.data(), s.store_dir.size());
  h->store_dir_len = static_cast<uint32_t>(s.store_dir.size());
  h->store_kind = static_cast<uint32_t>(s.store_kind);  // the enum's values are the codes
  h->on_persister_dead = s.hold_producers ? 0 : 1;
  h->durability = s.sync ? 1 : 0;
  h->flush_interval_ns = static_cast<uint64_t>(s.flush_interval.count());
  h->retention_age_ns = static_cast<uint64_t>(s.retention_age.count());
  h->retention_bytes = s.retention_bytes;
  h->segment_bytes = s.segment_bytes;
  h->persist_flags = s.secure_delete ? 1 : 0;
}

Result<void> StreamControl::clear_persist() {
  if (m_->read_only()) return make_error(Errc::kPermission, "stream control opened read-only");
  StreamHeader* h = m_->header();
  RegistryLock lock(*m_);
  if (!lock.ok()) return lock.error();
  // release: readers that see 0 stop taking the settings (pairs with the acquire in
  // read_persist_settings()).
  store_release(h->persist_enabled, 0);
  return {};
}

Result<bool> StreamControl::remove_group(std::string_view group) {
  if (m_->read_only()) return make_error(Errc::kPermission, "stream control opened read-only");
  if (group.empty() || group.size() >= kNameBytes)
    return make_error(Errc::kInvalidArgument, "consumer group name must be 1 to " +
                                                  std::to_string(kNameBytes - 1) + " bytes");
  StreamHeader* h = m_->header();
  RegistryLock lock(*m_);
  if (!lock.ok()) return lock.error();
  const uint32_t n = consumer_slots_in_use(h);
  for (uint32_t i = 0; i < n; ++i) {
    ConsumerSlot* s = m_->consumer_slot(i);
    if (load_acquire(s->state) != kSlotReady ||
        load_relaxed(s->kind) == kKindTailing ||
        std::strncmp(s->name, std::string(group).c_str(), kNameBytes) != 0)
      continue;
    if (consumer_alive(*m_, i))
      return make_error(Errc::kBusy, "consumer group '" + std::string(group) + "' is held by pid " +
                                         std::to_string(owner_pid(load_acquire(s->owner))));
    // seq_cst, both: pair with the seq_cst loads of evicted/state in compute_floor(); a
    // producer that still sees the slot ready sees it evicted and skips it.
    store_seq_cst(s->evicted, 1);
    // (What the group owed goes with it: a slot taken by an earlier build keeps these bytes.)
    store_relaxed(s->owed_kind, kOwedNone);
    store_seq_cst(s->state, kSlotFree);
    store_release(s->owner, 0);
    wake_space(*m_);  // producers waiting for room may have it now
    return true;
  }
  return false;
}

bool StreamControl::set_durable_seq(uint64_t seq) noexcept {
  if (m_->read_only()) return false;  // setters need a writable mapping
  StreamHeader* h = m_->header();
  // seq_cst: pairs with the seq_cst fetch_or into durable_sleepers in wait_durable().
  store_seq_cst(h->durable_seq, seq);
  if (load_seq_cst(h->durable_sleepers) != 0)
    wake_sleepers(*m_, Sleepers::kDurable);
  return true;
}
uint64_t StreamControl::durable_seq() const noexcept {
  return load_acquire(m_->header()->durable_seq);
}
bool StreamControl::record_lost(uint64_t from, uint64_t to) noexcept {
  if (m_->read_only() || to <= from) return false;
  StreamHeader* h = m_->header();
  const uint64_t n = load_relaxed(h->lost_count);  // single writer
  LostRange& e = h->lost_log[n % kLostLog];
  store_relaxed(e.from, from);
  store_relaxed(e.to, to);
  // release: pairs with the acquire in lost_state(); the entry is visible with the count.
  store_release(h->lost_count, n + 1);
  return true;
}

bool StreamControl::set_oldest_persisted_seq(uint64_t seq) noexcept {
  if (m_->read_only()) return false;  // setters need a writable mapping
  store_relaxed(m_->header()->oldest_persisted_seq, seq);  // relaxed: stats
  return true;
}
bool StreamControl::raise_deleted_below(uint64_t seq) noexcept {
  if (m_->read_only()) return false;  // setters need a writable mapping
  auto& w = m_->header()->deleted_below;
  uint64_t cur = load_acquire(w);
  // release: readers that see the watermark also see what the deleter did before.
  while (cur < seq && !cas_weak_release(w, cur, seq)  /* failure: relaxed, as a lone release implies */) {
  }
  return true;
}
uint64_t StreamControl::deleted_below() const noexcept {
  return load_acquire(m_->header()->deleted_below);
}
StreamControl::RingWindow StreamControl::ring_window() const noexcept {
  // read_posseq: consistent {pos, seq} pairs (ring.h), as stream_info() reads them.
  const PosSeq claim = read_posseq(&m_->header()->claim);
  return RingWindow{oldest_seq(*m_, claim), claim.seq, claim.pos};
}
NameState StreamControl::name_state() const noexcept { return m_->name_state(); }
bool StreamControl::others_can_write() const noexcept {
  if (!others_write_) others_write_ = m_->others_can_write();
  return others_write_;
}
uint64_t StreamControl::deleted_below_for_store() const noexcept {
  return others_write_ ? 0 : deleted_below();
}
bool StreamControl::beat() noexcept {
  if (m_->read_only()) return false;  // setters need a writable mapping
  store_relaxed(m_->header()->persister_beat_ns, now_ns());  // relaxed: stats
  return true;
}

bool StreamControl::set_store_stats(uint64_t disk_bytes, uint64_t segments,
                                    uint64_t deleted_records, uint64_t deleted_bytes,
                                    uint32_t granularity, uint32_t store_errors) noexcept {
  if (m_->read_only()) return false;  // setters need a writable mapping
  StreamHeader* h = m_->header();
  // relaxed: statistics for `stat`, read racily by design.
  store_relaxed(h->disk_bytes, disk_bytes);
  store_relaxed(h->segments, segments);
  store_relaxed(h->deleted_records, deleted_records);
  store_relaxed(h->deleted_bytes, deleted_bytes);
  store_relaxed(h->pmem_granularity, granularity);
  store_relaxed(h->store_errors, store_errors);
  return true;
}

}  // namespace shmbus
