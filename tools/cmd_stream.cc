// cmd_stream.cc: create, rm and ls: the life cycle of streams in a namespace.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

#include "args.h"
#include "commands.h"
#include "shmbus/persister.h"
#include "format.h"
#include "shmbus/json.h"
#include "shmbus/shmbus.h"

namespace shmbus::tools {

int cmd_create(const CreateArgs& a) {
  const auto ns_or = command_namespace(a.ns);
  if (!ns_or) return kExitUsage;
  const std::string ns = *ns_or;
  StreamOptions o;
  auto capacity = size_flag("--capacity", a.capacity);
  if (!capacity) return kExitUsage;
  if (*capacity >= 4096 && *capacity <= (4ULL << 30) && (*capacity & (*capacity - 1)) != 0) {
    // Not a power of two: name the two nearest that are.
    uint64_t below = 4096;
    while (below * 2 <= *capacity) below *= 2;
    return fail("--capacity: " + a.capacity + " (" + std::to_string(*capacity) +
                    " bytes) is not a power of two: use " + format_size(below) + " or " +
                    format_size(below * 2),
                kExitUsage);
  }
  o.capacity = *capacity;
  if (!a.max_record.empty()) {
    auto m = size_flag("--max-record", a.max_record);
    if (!m) return kExitUsage;
    if (*m == 0) return fail("--max-record: must be at least 1 byte", kExitUsage);
    o.max_record = *m;
  }
  auto mode = mode_flag("--mode", a.mode);
  if (!mode) return kExitUsage;
  o.mode = *mode;
  o.exist_ok = a.exist_ok;
  o.single_producer = a.single_producer;
  if (!a.trust_owner.empty()) {
    auto uid = user_flag("--trust-owner", a.trust_owner);
    if (!uid) return kExitUsage;
    o.trusted_owner = *uid;
  }
  auto timeout_ms = [](std::string_view flag, const std::string& text,
                       std::chrono::milliseconds* out) {
    if (text.empty()) return true;
    auto d = duration_flag(flag, text);
    if (!d) return false;
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
    if (ms.count() < 1) {
      fail(std::string(flag) + ": must be at least 1ms", kExitUsage);
      return false;
    }
    *out = ms;
    return true;
  };
  if (!timeout_ms("--abandon-timeout", a.abandon_timeout, &o.abandon_timeout) ||
      !timeout_ms("--consumer-timeout", a.consumer_timeout, &o.consumer_dead_timeout))
    return kExitUsage;
  if (!a.consumer_retention.empty()) {
    auto d = duration_flag("--consumer-retention", a.consumer_retention);
    if (!d) return kExitUsage;
    o.consumer_retention = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
  }
  persist::AdminOptions admin;
  admin.data_dir = a.data_dir;
  auto r = persist::create_stream_over_store(ns, a.stream, o, a.fresh, admin);
  if (!r) return fail(r.error());
  if (r->resumed)
    std::fprintf(stderr, "shmbus: stream '%s' continues its store %s: the next record gets sequence %llu\n",
                 a.stream.c_str(), terminal_text(r->store_dir).c_str(),
                 static_cast<unsigned long long>(r->first_seq));
  if (r->removed.existed)
    std::fprintf(stderr, "shmbus: removed the old store %s (%llu bytes)\n",
                 terminal_text(r->removed.dir).c_str(), static_cast<unsigned long long>(r->removed.bytes));
  return kExitOk;
}

int cmd_rm(const RmArgs& a) {
  const auto ns_or = command_namespace(a.ns);
  if (!ns_or) return kExitUsage;
  const std::string ns = *ns_or;
  if (a.secure && !a.data) return fail("--secure goes with --data", kExitUsage);
  persist::AdminOptions o;
  o.data_dir = a.data_dir;
  o.secure = a.secure;
  // Check where the store is (derived from the data dir, cross-checked with the header)
  // before the header is gone; and that the store may go (no persister writes it, only
  // the caller's store files) before the ring does, also with --force (a survey: the
  // ring went, then the store was refused).
  if (a.data) {
    if (auto loc = persist::locate_store(ns, a.stream, a.data_dir); !loc) return fail(loc.error());
    persist::AdminOptions check = o;
    check.dry_run = true;
    if (auto ok = persist::remove_store(ns, a.stream, check); !ok) return fail(ok.error());
  }
  // With --force, records the persister had not stored are lost: recorded so in the store,
  // so that a ring created over it does not number new records as them (--data: the store
  // goes too).  Only when the ring is otherwise removable by force.
  // The header, read once before a forced removal (for both uses below).
  std::optional<StreamInfo> forced;
  if (a.force)
    if (auto info = stream_info(ns, a.stream); info) forced = std::move(info.value());
  if (a.force && !a.data) {
    const std::optional<StreamInfo>& info = forced;
    if (info && info->persist && info->durable_seq < info->next_seq) {
      // --data-dir names another store than the header: removing the ring would let a
      // ring created over the header's store number new records as the unstored ones.
      if (!a.data_dir.empty()) {
        namespace fs = std::filesystem;
        std::error_code ec;
        auto root = persist::resolve_data_dir(a.data_dir);
        auto want = root ? persist::store_dir_for(*root, ns, a.stream) : Result<std::string>(root.error());
        if (want && fs::weakly_canonical(*want, ec) != fs::weakly_canonical(info->persist->store_dir, ec))
          return fail("stream '" + a.stream + "' holds records its persister has not stored, and its store is " +
                      terminal_text(info->persist->store_dir) + ", not " + terminal_text(*want) +
                      ": give the --data-dir its header names so that they are recorded as lost there, "
                      "or --data");
      }
      auto lost = persist::record_unstored_as_lost(ns, a.stream, o);
      if (!lost) {
        // (Busy: a persister holds the store; it stores them from its mapping if it can.)
        warn("records " + std::to_string(info->durable_seq) + ".." + std::to_string(info->next_seq - 1) +
             " were not stored yet and could not be recorded as lost (" + lost.error().message + ")" +
             (lost.error().code == Errc::kBusy ? ": the persister holding the store stores them if it can; "
                                                 "if it stops first, a ring created over the store may number "
                                                 "new records as them"
                                               : ": a ring created over the store may number new records as them"));
      } else if (lost->count() != 0) {
        // (The range it recorded, from its own read of the header: records published since
        // the check above are in it.)
        warn(std::to_string(lost->count()) + " records up to sequence " + std::to_string(lost->to - 1) +
             " were never stored: recorded as lost in the store, so a ring created over it "
             "continues at " + std::to_string(lost->to));
      }
    }
  }
  // Who still has the ring open (--force): they keep it after its name is gone, so a
  // producer's records go where no new reader looks (`pub` notices and fails, `tail -f`
  // waits for the name), and the user is told who.
  std::string live;
  if (forced) {
    for (const auto& p : forced->producers)
      if (p.alive) live += std::string(live.empty() ? "" : ",") + " producer pid " + std::to_string(p.pid);
    for (const auto& c : forced->consumers)
      if (c.alive)
        live += std::string(live.empty() ? "" : ",") +
                (c.durable ? " consumer '" + terminal_text(c.name) + "'" : std::string(" a tailing reader")) +
                " pid " + std::to_string(c.pid);
  }
  auto r = remove_stream(ns, a.stream, a.force);
  if (!r && !(a.data && r.error().code == Errc::kNotFound))
    return fail_stream(r.error(), ns, a.stream, a.data_dir);
  if (r && !live.empty())
    warn("removed while in use by" + live + ": they keep the removed ring, where what a producer "
         "publishes reaches no new reader (shmbus pub stops with an error; tail -f waits for the name; a "
         "persister stores what it read and stops)");
  if (a.data) {
    auto removed = persist::remove_store(ns, a.stream, o);
    if (!removed) return fail(removed.error());
    if (!removed->existed) {
      if (!r) return fail(r.error());  // neither a stream nor a store
      std::fprintf(stderr, "shmbus: the stream had no store (nothing in %s)\n",
                   terminal_text(removed->dir).c_str());
    } else {
      std::fprintf(stderr, "shmbus: removed the store %s (%llu files, %llu bytes%s)\n",
                   terminal_text(removed->dir).c_str(), static_cast<unsigned long long>(removed->files),
                   static_cast<unsigned long long>(removed->bytes),
                   removed->secure ? ", overwritten first" : "");
    }
  }
  return kExitOk;
}

namespace {

struct LsRow {
  std::string ns;
  std::string stream;
  std::string error;  // non-empty: stream_info failed
  StreamInfo info;
  uint64_t live_producers = 0;
  uint64_t max_lag = 0;
  bool ring = true;      // false: the stream exists only as a store
  std::string store;     // the store directory, or empty
};

LsRow describe(const std::string& ns, const std::string& stream) {
  LsRow row;
  row.ns = ns;
  row.stream = stream;
  auto info = stream_info(ns, stream);
  if (!info) {
    row.error = info.error().message;
    return row;
  }
  row.info = std::move(info.value());
  for (const auto& p : row.info.producers) row.live_producers += p.alive ? 1 : 0;
  // Evicted consumers no longer hold producers back; their lag is history.
  for (const auto& c : row.info.consumers)
    if (!c.evicted) row.max_lag = std::max(row.max_lag, c.lag);
  return row;
}

// The rows of one namespace: its rings, then the streams that exist only as a store.
Result<std::vector<LsRow>> namespace_rows(const std::string& ns, const std::string& data_dir) {
  auto names = list_streams(ns);
  if (!names) return names.error();
  std::vector<LsRow> rows;
  for (const auto& s : names.value()) rows.push_back(describe(ns, s));
  for (auto& r : rows)
    if (r.error.empty() && r.info.persist) r.store = r.info.persist->store_dir;
  // Streams that outlived their ring (a reboot): only a store in the data dir.
  if (auto stored = persist::stored_streams(ns, data_dir); stored) {
    auto root = persist::resolve_data_dir(data_dir);
    for (const auto& s : stored.value()) {
      LsRow row;
      row.ns = ns;
      row.stream = s;
      row.ring = false;
      row.store = root.value() + "/" + ns + "/" + s;
      rows.push_back(std::move(row));
    }
    std::sort(rows.begin(), rows.end(), [](const LsRow& x, const LsRow& y) { return x.stream < y.stream; });
  }
  return rows;
}

}  // namespace

int cmd_ls(const LsArgs& a) {
  std::vector<LsRow> rows;
  if (a.all) {
    if (!a.ns.empty()) return fail("--all lists every namespace: leave out --namespace", kExitUsage);
    for (const auto& ns : all_namespaces()) {
      auto r = namespace_rows(ns, a.data_dir);
      if (!r) continue;  // gone meanwhile
      for (auto& row : r.value()) rows.push_back(std::move(row));
    }
  } else {
    const auto ns_or = command_namespace(a.ns);
    if (!ns_or) return kExitUsage;
    const std::string ns = *ns_or;
    auto r = namespace_rows(ns, a.data_dir);
    if (!r) return fail(r.error());
    rows = std::move(r.value());
    if (rows.empty()) {
      // An empty listing of a namespace that does not exist (a typo?) says so.
      const auto known = all_namespaces();
      std::string note = "namespace '" + ns + "' has no streams";
      if (auto near = closest_match(ns, known); !near.empty())
        note += " (did you mean --namespace " + near + "?)";
      if (!known.empty()) note += "; shmbus ls --all lists every namespace";
      warn(note);
    }
  }

  if (a.json) {
    JsonWriter w;
    w.begin_array();
    for (const auto& r : rows) {
      w.begin_object();
      if (a.all) w.field("namespace", r.ns);  // only with --all: the shape without it stays
      w.field("stream", r.stream);
      if (r.ring && !r.error.empty()) {
        w.field("error", r.error);
      } else if (r.ring) {
        w.field("capacity", r.info.capacity)
            .field("next_seq", r.info.next_seq)
            .field("oldest_seq", r.info.oldest_seq)
            .field("producers", r.live_producers)
            .field("consumers", static_cast<uint64_t>(r.info.consumers.size()))
            .field("max_lag", r.max_lag);
      }
      // ring false: the stream exists only as its store (after a reboot).
      w.field("ring", r.ring);
      if (r.store.empty()) w.key("store").null();
      else w.field("store", r.store);
      w.end_object();
    }
    w.end_array();
    std::printf("%s\n", w.str().c_str());
    return kExitOk;
  }

  size_t width = 6, ns_width = 9;
  for (const auto& r : rows) width = std::max(width, r.stream.size());
  for (const auto& r : rows) ns_width = std::max(ns_width, r.ns.size());
  const int wd = static_cast<int>(width);
  auto ns_column = [&](const std::string& ns) {
    if (a.all) std::printf("%-*s ", static_cast<int>(ns_width), ns.c_str());
  };
  ns_column("NAMESPACE");
  std::printf("%-*s %9s %12s %12s %9s %9s %12s\n", wd, "STREAM", "CAPACITY", "NEXT_SEQ",
              "OLDEST_SEQ", "PRODUCERS", "CONSUMERS", "MAX_LAG");
  for (const auto& r : rows) {
    ns_column(r.ns);
    if (!r.ring) {
      std::printf("%-*s stored (no ring): %s\n", wd, r.stream.c_str(), terminal_text(r.store).c_str());
      continue;
    }
    if (!r.error.empty()) {
      std::printf("%-*s error: %s\n", wd, r.stream.c_str(), terminal_text(r.error).c_str());
      continue;
    }
    std::printf("%-*s %9s %12llu %12llu %9llu %9zu %12llu\n", wd, r.stream.c_str(),
                format_size(r.info.capacity).c_str(),
                static_cast<unsigned long long>(r.info.next_seq),
                static_cast<unsigned long long>(r.info.oldest_seq),
                static_cast<unsigned long long>(r.live_producers), r.info.consumers.size(),
                static_cast<unsigned long long>(r.max_lag));
  }
  return kExitOk;
}

}  // namespace shmbus::tools
