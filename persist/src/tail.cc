// tail.cc: open_tail(), see shmbus/tail.h.
#include "shmbus/tail.h"

#include "shmbus/store_admin.h"

namespace shmbus::persist {

namespace {

// A tailing reader: "committed" means nothing to it, the earliest does.
StartFrom tail_start(const StartFrom& s) {
  return s.kind == StartFrom::Kind::kCommitted ? StartFrom::earliest() : s;
}

Result<ReplayConsumer> open_replay(std::string_view ns, std::string_view stream, const TailOptions& opts,
                                   bool read_only) {
  ReplayOptions ro;
  ro.start = tail_start(opts.start);
  ro.wait = opts.wait;
  ro.read_only = read_only;
  ro.data_dir = opts.data_dir;
  return ReplayConsumer::open(ns, stream, ro);
}

Result<GroupConsumer> open_ring(std::string_view ns, std::string_view stream, const TailOptions& opts,
                                bool read_only) {
  ConsumerOptions co;  // no group
  co.start = tail_start(opts.start);
  co.wait = opts.wait;
  co.auto_commit = false;
  co.read_only = read_only;
  return GroupConsumer::open(ns, stream, co, opts.data_dir);
}

}  // namespace

Result<Tail> open_tail(std::string_view ns, std::string_view stream, const TailOptions& opts) {
  Tail t;
  const bool retry_read_only = opts.read_only_if_denied && !opts.read_only;
  if (reads_through_store(ns, stream, opts.data_dir)) {
    auto r = open_replay(ns, stream, opts, opts.read_only);
    if (!r && r.error().code == Errc::kPermission && retry_read_only)
      r = open_replay(ns, stream, opts, true);
    if (!r) return r.error();
    t.replay.emplace(std::move(r.value()));
    return t;
  }
  auto r = open_ring(ns, stream, opts, opts.read_only);
  if (!r && r.error().code == Errc::kPermission && retry_read_only) r = open_ring(ns, stream, opts, true);
  if (!r) return r.error();
  t.ring.emplace(std::move(r.value()));
  return t;
}

}  // namespace shmbus::persist
