// start_point.cc: see start_point.h.
#include "start_point.h"

#include "shmbus/persist/reader.h"

namespace shmbus::persist::detail {

std::optional<uint64_t> store_start_seq(const std::string& root, std::string_view ns,
                                        std::string_view stream, StartFrom where) {
  if (root.empty()) return std::nullopt;
  if (where.kind != StartFrom::Kind::kEarliest && where.kind != StartFrom::Kind::kTime)
    return std::nullopt;
  auto r = SegmentReader::open(root, ns, stream);
  if (!r) return std::nullopt;
  if (auto s = where.kind == StartFrom::Kind::kTime ? r->seek_time(where.value) : r->seek_earliest(); !s)
    return std::nullopt;
  auto e = r->next();
  if (!e || e->kind == EntryKind::kEnd) return std::nullopt;
  return e->seq;
}

}  // namespace shmbus::persist::detail
