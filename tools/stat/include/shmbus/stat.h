// shmbus/stat.h (tools/stat, library shmbus::stat): what `shmbus stat` reports beyond
// one StreamInfo snapshot.
//
// Owns the presentation of the stream statistics, in one place for every caller (the
// CLI's `stat`, the Python `shmbus.stat()`): compute_stat() turns one snapshot, or two
// taken an interval apart, into a StreamStat: the rates between them (lambda: published,
// rho: deleted from the store, mu: consumed per consumer) and the capacity plan derived
// from them; stat_json() renders it as the document of `shmbus stat --json`, whose keys
// and value formats scripts depend on.  The store's frame overhead, its kind and
// granularity names are persist/'s (shmbus/persist.h); shm/ only counts.  Taking the
// snapshots (and waiting between them) is the caller's: each waits its own way.
// Thread: any; these are pure functions of their arguments.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shmbus/json.h"
#include "shmbus/persist.h"
#include "shmbus/shmbus.h"

namespace shmbus {

// What one record costs besides its payload, on average: in the ring
// shmbus::kRingBytesPerRecord (shmbus/stream.h), in the store
// persist::store_bytes_per_record() of the mean record size (shmbus/persist/store.h:
// small records share batch frames); each layer's own.

// Rates between two snapshots of one stream.  A counter that went backwards (the stream
// was recreated in between) counts as 0.
struct StatRates {
  double interval_s = 0;             // the measured time between the snapshots
  double lambda_records_per_s = 0;   // growth of next_seq
  double lambda_bytes_per_s = 0;     // growth of bytes_published
  double rho_records_per_s = 0;      // records deleted from the store
  double rho_bytes_per_s = 0;        // bytes deleted from the store
  // Per consumer of the `after` snapshot, in its order: growth of its next_seq, or
  // nullopt when no consumer of that name and kind was in `before`.
  std::vector<std::optional<double>> mu_records_per_s;
};

// `seconds` > 0: the time that passed between the two snapshots.
StatRates measure_rates(const StreamInfo& before, const StreamInfo& after, double seconds);

// Capacity planning from measured rates.
struct CapacityPlan {
  double retention_s = 0;  // the store's retention age (0: none, or not persisted)
  double stall_s = 0;      // the consumer stall the ring should ride out
  // A = lambda x T: the store's size at steady state at the measured rate over the
  // retention age, capped by the retention bytes.  nullopt without rates, on a stream
  // that is not persisted, or with no retention limit (it grows without bound).
  std::optional<double> projected_store_bytes;
  // Ring bytes that absorb a consumer stall of stall_s at the measured rate.  nullopt
  // without rates.
  std::optional<double> ring_bytes_for_stall;
};

// `rates` may be null (one snapshot, no rates).
CapacityPlan plan_capacity(const StreamInfo& s, const StatRates* rates, double stall_s);

// Everything `stat` shows of one stream.
struct StreamStat {
  StreamInfo info;                 // the (last) snapshot
  std::optional<StatRates> rates;  // with two snapshots: measure_rates(before, info, _)
  CapacityPlan plan;               // plan_capacity(info, rates, stall_s)
  // The store's kind ("file", "pmem") and pmem granularity ("byte", "cache-line",
  // "page") in persist/'s spelling; "" when not persisted / not pmem.
  std::string store;
  std::string pmem_granularity;
  // stored_stream_stat(): why the store's range could not be read ("" when it was).
  std::string store_range_error;
};

// The one function behind `shmbus stat` and Python's shmbus.stat(): `after` alone
// (`before` null: no rates), or `after` taken `seconds` (> 0) after `before`, with the
// ring sized to ride out a consumer stall of `stall_s`.
StreamStat compute_stat(StreamInfo after, const StreamInfo* before, double seconds, double stall_s);

// The one-line JSON object of `shmbus stat --json` (no trailing newline): the snapshot,
// the persistence fields, the plan, the rates (null without rates; interval_s 0.0),
// producers and consumers (each with mu_records_per_s).  Strings are escaped (RFC 8259;
// bytes that are not UTF-8 become U+FFFD); doubles are printed with three decimals,
// non-finite ones as null.  `more`, if given, writes further keys (key(), value()) at the
// end of the object (the CLI's "bridges").
std::string stat_json(const StreamStat& st, const std::function<void(JsonWriter&)>& more = {});

// A stream that exists only as its store in DATA_DIR (the data dir flag, else
// SHMBUS_DATA_DIR or the default; `ls`: "stored (no ring)"): its names, the store's place,
// size and range (next_seq = durable_seq = oldest_seq = one past its last record, where a
// ring created over it continues; oldest_persisted_seq; deleted_below); every ring figure
// 0.  kNotFound when there is no store either.  `shmbus stat` and Python's stat() print it
// with "ring": false, and "store_range_error" when the range could not be read.
Result<StreamStat> stored_stream_stat(const std::string& ns, const std::string& stream,
                                      std::string_view data_dir_flag = {});
// The keys a stored-only stream's document adds: "ring": false, and "store_range_error"
// when its range could not be read.
void write_stored_keys(const StreamStat& st, JsonWriter& w);

}  // namespace shmbus
