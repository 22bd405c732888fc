// commands.h: the subcommands of the `shmbus` command line tool.
//
// tools/ owns the `shmbus` executable: parsing the command line (main.cc, the only
// file that includes CLI11), one function per subcommand (cmd_stream.cc: create, rm,
// ls; cmd_stat.cc: stat; cmd_pub.cc: pub; cmd_tail.cc: tail; cmd_persist.cc: persist, fsck, delete;
// cmd_bench.cc: bench; cmd_bridge.cc: kafka-mock, bridge; cmd_metrics.cc: metrics;
// cmd_top.cc: top, drawing top_view.h's frames; collect.h: whole-namespace snapshots), option values
// (args.h), stop signals (signals.h), and the printing helpers (format.h, also linked by
// tests/tools).  tools/stat/ is the library shmbus::stat, which the Python module links
// too: the stat document (shmbus/stat.h) and the JSON writer (shmbus/json.h).  It uses
// only the public headers of shm/ and persist/.  This is an edge of the system: errors
// become one line "shmbus: <reason>" on stderr and an exit code; nothing here is used
// by the library.
//
// Exit codes: 0 success, 1 failure (the reason is on stderr), 2 bad usage or input
// (names, sizes, durations, options; CLI11's own syntax errors too, turned into one line
// with a "did you mean" by main.cc), 130 interrupted: by Ctrl-C (SIGINT) whatever the
// command, or a pub stopped by SIGTERM before its input ended.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shmbus/result.h"

namespace shmbus {
class JsonWriter;  // shmbus/json.h (tools/stat)
}  // namespace shmbus

namespace shmbus::tools {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitInterrupted = 130;

// kcat's -D DELIM: "\n", "\t", "\r", "\0", "\\" and "\xNN" become their bytes; nullopt
// (after a message naming `flag`) for an empty or badly escaped delimiter.
std::optional<std::string> delimiter_flag(std::string_view flag, std::string_view text);

// Prints "shmbus: <message>" on stderr (one line) and returns `code`.
int fail(std::string_view message, int code = kExitFailure);
// Prints "shmbus: <message>" on stderr: a note, the command goes on.
void warn(std::string_view message);
// The same as fail() for a library error: kInvalidArgument exits kExitUsage, the rest kExitFailure.
int fail(const Error& e);

// Namespaces with at least one stream (a ring in /dev/shm), sorted (namespaces.cc).
std::vector<std::string> all_namespaces();
// The namespaces that hold a stream named `stream`, sorted.
std::vector<std::string> namespaces_with(std::string_view stream);
// "; a stream 'S' is in namespace 'x' (did you mean --namespace x?)" (with several,
// "namespaces 'x', 'a', ...": the closest to `ns` first, at most five), or "" when no
// namespace other than `ns` holds a stream of that name.
std::string namespace_hint(std::string_view ns, std::string_view stream);
// The namespace a command works in: --namespace (`flag`), else SHMBUS_NAMESPACE, else
// "default" (shmbus::resolve_namespace).  nullopt after a usage message when the name came
// from SHMBUS_NAMESPACE and is not valid: the message names the variable (a name given
// with --namespace is checked, and reported, where it is used).  Commands that ignore the
// variable (fsck, ls --all, metrics --all, kafka-mock) do not call it.
std::optional<std::string> command_namespace(const std::string& flag);
// fail(e), with namespace_hint() added to a not-found error; one for a stream that has
// only its store (in DATA_DIR, default: SHMBUS_DATA_DIR or the default) says so.
int fail_stream(const Error& e, std::string_view ns, std::string_view stream,
                std::string_view data_dir = {});

// Every subcommand takes --namespace (but help and bench, which hands its arguments to
// shmbus-bench); empty means $SHMBUS_NAMESPACE, else "default" (fsck: every namespace).
struct CreateArgs {
  std::string ns, stream;
  std::string capacity = "1M";   // parse_size; the library's default (StreamOptions)
  std::string max_record;        // parse_size; empty: the library's default
  std::string mode = "0600";     // octal
  std::string abandon_timeout;   // parse_duration; empty: the library's default
  std::string consumer_timeout;  // parse_duration; empty: the library's default
  std::string consumer_retention;  // parse_duration ("0": for ever); empty: the default
  bool exist_ok = false;
  std::string trust_owner;       // user name or uid whose existing stream --exist-ok accepts
  std::string data_dir;          // where a store the new ring continues would be
  bool fresh = false;            // remove such a store first and start over at 0
  bool single_producer = false;  // StreamOptions::single_producer
};
int cmd_create(const CreateArgs& a);

struct RmArgs {
  std::string ns, stream;
  bool force = false;
  bool data = false;             // also remove the stream's store (segments)
  bool secure = false;           // overwrite store files before unlinking them
  std::string data_dir;          // where to look for the store when the stream is gone
};
int cmd_rm(const RmArgs& a);

struct LsArgs {
  std::string ns;
  bool json = false;
  bool all = false;              // every namespace (text: grouped; JSON: a "namespace" key)
  std::string data_dir;          // where stored-only streams are looked for
};
int cmd_ls(const LsArgs& a);

struct StatArgs {
  std::string ns, stream;        // stream: empty only with --format prometheus (every stream)
  bool json = false;
  std::string format;            // text | json | prometheus; empty: text (json with --json)
  std::string interval;          // parse_duration; empty or 0: one snapshot, no measured rates
  bool watch = false;            // --watch: print again every watch_every, like `iostat 1`
  std::string watch_every;       // parse_duration; empty: 1s
  bool watch_attached = false;   // given as --watch=D (else a word after --watch may be STREAM)
  bool stream_after_watch = false;  // STREAM came after `--watch WORD` (`stat --watch a b`)
  std::string stall = "1s";      // size the ring to ride out a consumer stall this long
  std::string data_dir;          // where a stream without a ring has its store
};
int cmd_stat(const StatArgs& a);

struct PubArgs {
  std::string ns, stream;
  uint32_t type = 0;
  uint64_t count = 0;            // > 0: synthetic records instead of stdin lines
  std::string size;              // synthetic record size (parse_size); needs count
  std::string full_timeout = "10s";  // how long a publish waits for room
  bool sync = false;             // wait until each record is durable in the store
  std::string sync_timeout = "10s";
  uint64_t rate = 0;             // synthetic records: at most this many per second
  std::string delimiter;         // -D: records end with this (escapes \n \t \r \0 \\ \xNN);
                                 // empty: lines
  bool delimiter_given = false;  // -D was given (an empty one is refused)
  bool nul = false;              // -0: records end with a NUL byte
  std::vector<std::string> files;  // --file: one record per file; "-": all of stdin, one record
};
int cmd_pub(const PubArgs& a);

struct TailArgs {
  std::string ns, stream;
  std::string from;              // parse_start; empty: group -> committed, else earliest
  uint64_t count = 0;            // 0: no limit, unless count_given (--count 0: none)
  bool count_given = false;
  bool follow = false;
  std::string group;             // durable consumer name; empty: anonymous reader
  std::string format = "text";   // text | json | hex | raw
  std::string delimiter;         // -D: text and raw: after each record (default "\n")
  bool delimiter_given = false;  // -D was given (an empty one: raw records back to back)
  std::string encoding;          // json: base64 | utf8 | hex forces one key; empty: data or
                                 // data_base64, whichever fits
  std::string data_dir;          // where the store is when the stream has no ring
  std::string reset_to;          // --group: move the group there (rewind or skip)
};
int cmd_tail(const TailArgs& a);

struct PersistArgs {
  std::string ns;
  std::vector<std::string> streams;
  std::string data_dir;          // empty: $SHMBUS_DATA_DIR, else ~/.local/share/shmbus
                                 // (root without HOME: /var/lib/shmbus)
  std::string store = "file";    // file | pmem
  std::string durability = "async";
  std::string flush_interval, retention_age, retention_bytes, segment_size, roll_age;
  bool let_go = false;           // producers go on if the persister dies (lost ranges)
  bool secure = false;           // retention overwrites segments before unlinking
  bool detach = false;           // end persistence of the streams (no persister runs)
  bool detach_on_stop = false;   // a clean stop ends persistence too
  bool move_store = false;       // the recorded store is elsewhere: move it here
  bool new_store = false;        // the recorded store is elsewhere: start a new one here
};
int cmd_persist(const PersistArgs& a);

struct FsckArgs {
  std::string ns;                // --namespace only (not $SHMBUS_NAMESPACE): check that
                                 // namespace's stores only; empty: every one in dir
  std::string dir;
  bool repair = false;
};
int cmd_fsck(const FsckArgs& a);

struct DeleteArgs {
  std::string ns, stream;
  uint64_t before = 0;
  std::string data_dir;          // where the store is (checked against the stream's header)
  bool secure = false;           // overwrite what is freed (the stream's setting also counts)
};
int cmd_delete(const DeleteArgs& a);

// cmd_bridge.cc: kafka-mock, bridge out, bridge in (bridge/, shmbus/kafka.h).
struct KafkaMockArgs {
  std::string ns;                // accepted as by every command; the mock has no streams
  int brokers = 1;
  std::vector<std::string> topics;  // NAME[:PARTITIONS]
};
int cmd_kafka_mock(const KafkaMockArgs& a);

struct BridgeOutArgs {
  std::string ns, stream, brokers, topic, name;
  std::string from = "earliest";  // earliest | latest | SEQ | @TIME (parse_start)
  std::string key = "none";       // none | type
  int32_t partition = 0;
  std::vector<std::string> props;  // -X PROP=VALUE
  bool exit_at_end = false;
  std::string data_dir;
  std::string connect_timeout = "10s";
};
int cmd_bridge_out(const BridgeOutArgs& a);

struct BridgeInArgs {
  std::string ns, topic, stream, brokers, group;
  std::string from = "earliest";  // a new group's start: earliest | latest
  uint32_t type = 0;
  bool sync = false;
  std::vector<std::string> props;
  bool exit_at_end = false;
  std::string commit_interval = "200ms";
  std::string connect_timeout = "10s";
  std::string sync_timeout = "30s";  // --sync: how long a commit waits for durability
};
int cmd_bridge_in(const BridgeInArgs& a);
// For stat: the bridges of NS/STREAM (their status files), as a "bridges" key written
// into the stat --json object open in `w` (an array; no key when there is none), and as
// text lines.
void write_bridges_json(const std::string& ns, const std::string& stream, JsonWriter& w);
void print_bridges_text(const std::string& ns, const std::string& stream);

// cmd_metrics.cc: `shmbus metrics`: the Prometheus text over HTTP at /metrics.
struct MetricsArgs {
  std::string ns;
  std::string listen;            // ADDR:PORT; empty: kDefaultMetricsListen
  bool all = false;              // every namespace
};
inline constexpr const char* kDefaultMetricsListen = "127.0.0.1:9464";
int cmd_metrics(const MetricsArgs& a);

// cmd_top.cc: `shmbus top`: a live view of every stream of a namespace.
struct TopArgs {
  std::string ns;
  bool once = false;             // one frame as plain text, then exit
  std::string interval = "1s";   // parse_duration: the refresh, and --once's measuring window
};
int cmd_top(const TopArgs& a);

// Replaces this process with shmbus-bench (next to this executable); returns only on
// failure.
int cmd_bench(const std::vector<std::string>& args);

}  // namespace shmbus::tools
