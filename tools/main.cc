// main.cc: the `shmbus` command line: CLI11 wiring only (the one file that includes
// CLI11, which is slow to compile).  Each subcommand fills an argument struct and calls
// its function in commands.h.
#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "commands.h"
#include "format.h"
#include "shmbus/shmbus.h"
#include "signals.h"

namespace {

using namespace shmbus::tools;

constexpr const char* kNamespaceHelp =
    "Namespace of the streams (default: $SHMBUS_NAMESPACE, else \"default\")";

// CLI11 reads "-1" into a uint64_t as 2^64 - 1, and saturates values above 2^64 - 1:
// only plain decimal numbers that fit are counts.
const CLI::Validator kNotNegative(
    [](std::string& s) {
      if (s.find('-') != std::string::npos) return std::string("must not be negative");
      const std::string max = "18446744073709551615";
      if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos)
        return "'" + s + "' is not a whole number";
      const size_t lead = std::min(s.find_first_not_of('0'), s.size() - 1);  // "000" -> "0"
      const std::string digits = s.substr(lead);
      if (digits.size() > max.size() || (digits.size() == max.size() && digits > max))
        return "'" + s + "' is out of range (at most " + max + ")";
      return std::string();
    },
    "N>=0");

// "bridge out" for that subcommand, "" for the app itself: what `shmbus help` takes.
std::string command_path(const CLI::App* sub) {
  std::string path;
  for (; sub != nullptr && sub->get_parent() != nullptr; sub = sub->get_parent())
    path = path.empty() ? sub->get_name() : sub->get_name() + " " + path;
  return path;
}

std::vector<std::string> command_names(CLI::App* app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app->get_subcommands([](CLI::App*) { return true; }))
    names.push_back(sub->get_name());
  return names;
}

// "did you mean X?" for `word` among `names`, with a leading space, or "".
std::string did_you_mean(const std::string& word, const std::vector<std::string>& names) {
  const std::string m = closest_match(word, names);
  return m.empty() ? "" : " (did you mean " + m + "?)";
}

// A CLI11 parse error as one line "shmbus: ...", with "did you mean" for an unknown flag
// or command (nested ones too: bridge ot), and exit code 2 (bad usage).
int usage_error(CLI::App& app, const CLI::ParseError& e, int argc, char** argv) {
  std::string msg = e.what();
  for (char& ch : msg)
    if (ch == '\n') ch = ' ';
  while (!msg.empty() && msg.back() == ' ') msg.pop_back();
  CLI::App* where = &app;
  while (!where->get_subcommands().empty()) where = where->get_subcommands().back();
  const std::string path = command_path(where);
  if (const std::vector<std::string> commands = command_names(where); !commands.empty()) {
    // No command recognised after `path`: the first word past the path's own words that
    // is not a global option's is the typo.
    std::vector<std::string> words;
    for (size_t at = 0, sp; at < path.size(); at = sp + 1) {
      sp = std::min(path.find(' ', at), path.size());
      words.push_back(path.substr(at, sp - at));
    }
    size_t matched = 0;
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--namespace") {
        ++i;
        continue;
      }
      if (arg.empty() || arg[0] == '-') continue;
      if (matched < words.size() && arg == words[matched]) {
        ++matched;
        continue;
      }
      if (std::find(commands.begin(), commands.end(), arg) != commands.end()) break;
      msg = "unknown command '" + arg + "'" + (path.empty() ? "" : " for " + path) +
            did_you_mean(arg, commands);
      break;
    }
    if (msg.find("subcommand is required") != std::string::npos) {
      if (path.empty()) {
        msg = "a command is required";
      } else {
        msg = path + " needs a command: ";
        for (size_t i = 0; i < commands.size(); ++i) msg += (i == 0 ? "" : " or ") + commands[i];
      }
    }
  }
  if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr) {
    std::vector<std::string> flags;
    for (const CLI::Option* o : where->get_options()) {
      for (const auto& l : o->get_lnames()) flags.push_back("--" + l);
      for (const auto& n : o->get_snames()) flags.push_back("-" + n);
    }
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg.size() < 2 || arg[0] != '-') continue;
      if (const size_t eq = arg.find('='); eq != std::string::npos) arg.resize(eq);
      if (std::find(flags.begin(), flags.end(), arg) != flags.end() || arg == "--namespace")
        continue;
      // A flag of another case first (tail -F: -f, not the nearer -h).
      std::string hint;
      for (const auto& f : flags)
        if (f.size() == arg.size() && std::equal(f.begin(), f.end(), arg.begin(), [](char x, char y) {
              return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
            }))
          hint = " (did you mean " + f + "?)";
      msg = "unknown option " + arg + (path.empty() ? "" : " for " + path) +
            (hint.empty() ? did_you_mean(arg, flags) : hint);
      break;
    }
  }
  // CLI11's "Could not convert: --type = abc": which option, what it takes.
  if (dynamic_cast<const CLI::ConversionError*>(&e) != nullptr) {
    const std::string head = "Could not convert: ";
    if (const size_t eq = msg.find(" = "); msg.rfind(head, 0) == 0 && eq != std::string::npos) {
      const std::string name = msg.substr(head.size(), eq - head.size());
      const std::string value = msg.substr(eq + 3);
      std::string wants;
      for (const CLI::Option* o : where->get_options())
        for (const auto& l : o->get_lnames())
          if ("--" + l == name) wants = o->get_type_name();
      const std::string kind = wants == "UINT" || wants == "INT" ? "a whole number in range" : wants.empty() ? "" : wants;
      msg = name + ": '" + value + "' is not " + (kind.empty() ? "a valid value" : kind);
    }
  }
  msg += path.empty() ? " (see: shmbus help)" : " (see: shmbus help " + path + ")";
  return fail(msg, kExitUsage);
}

// The command listing of `shmbus help` and of a command with commands of its own
// (`help bridge`): one line per command, its nested commands listed under their full
// name ("bridge out"), so that every name `shmbus help` takes is there.
class HelpFormatter : public CLI::Formatter {
 public:
  std::string make_subcommand(const CLI::App* sub) const override {
    std::stringstream out;
    list(out, sub, sub->get_name());
    return out.str();
  }

 private:
  static constexpr size_t kNameWidth = 16;
  static void list(std::stringstream& out, const CLI::App* sub, const std::string& name) {
    CLI::detail::format_help(out, name, sub->get_description(), kNameWidth);
    for (const CLI::App* child : sub->get_subcommands({}))
      list(out, child, name + " " + child->get_name());
  }
};

// A subcommand's longer description: before the footer it inherited from the app
// (examples, sizes, durations, times, exit codes).  Its one-line description is what
// `shmbus help` lists.
void add_details(CLI::App* sub, const std::string& details) {
  sub->footer(details + "\n\n" + sub->get_footer());
}

// --namespace is accepted before the subcommand too; the subcommand's own one wins.
std::vector<std::string*> g_namespaces;

void add_namespace(CLI::App* sub, std::string* ns, const char* help = kNamespaceHelp) {
  sub->add_option("--namespace", *ns, help);
  g_namespaces.push_back(ns);
}

// A standard stream the caller closed (`shmbus pub S <&-`, `shmbus tail S >&-`) leaves its
// descriptor free, and the next open takes it: the stream's shared memory, then read as
// pub's input or written over by tail's output (`tail S >&-` wrote its records over the
// ring's header: "bad magic"; a review), or a store's file, or a lock.  Each closed one is
// held by /dev/null opened the other way (reads of stdin, writes of stdout and stderr
// still fail with EBADF, as on a closed descriptor, and nothing of ours lands there).
// Inherited by children (shmbus-bench) on purpose.  False when one cannot be held.
bool hold_standard_fds() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    const int got = ::open("/dev/null", fd == 0 ? O_WRONLY : O_RDONLY);
    if (got < 0) return false;
    if (got != fd) {  // (the lowest free descriptor: fd, unless a lower one was closed too)
      const int ok = ::dup2(got, fd);
      ::close(got);
      if (ok != fd) return false;
    }
  }
  return true;
}

// Flushes stdout; false (and said on stderr) when something written to it was lost.  A
// pipe whose reader left (`shmbus top | head -n 1`) is not a failure: such a command ends
// quietly with 0, as tail and top do themselves (the write error is then EPIPE, and the
// pipe's write end polls POLLERR).
bool stdout_flushed() {
  errno = 0;
  const bool flushed = std::fflush(stdout) == 0;
  const int e = errno;
  if (flushed && !std::ferror(stdout)) return true;
  pollfd p{STDOUT_FILENO, POLLOUT, 0};
  if (e == EPIPE || (::poll(&p, 1, 0) == 1 && (p.revents & POLLERR) != 0)) return true;
  fail(std::string("cannot write to stdout") + (e ? std::string(": ") + std::strerror(e) : std::string()));
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (!hold_standard_fds()) {
    const char msg[] = "shmbus: a standard descriptor (0, 1 or 2) is closed and /dev/null cannot hold it\n";
    (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
    return 1;
  }
  // Named: usage lines say "shmbus", not the path it was run by.
  CLI::App app{"shmbus: streams of records in shared memory", "shmbus"};
  app.formatter(std::make_shared<HelpFormatter>());  // before the subcommands: they share it
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("shmbus ") + SHMBUS_VERSION);
  std::string global_ns;
  app.add_option("--namespace", global_ns, kNamespaceHelp);
  app.footer(
      "Examples:\n"
      "  shmbus create ticks --capacity 16M   (default 1M)\n"
      "  seq 10 | shmbus pub ticks\n"
      "  shmbus tail ticks -f --format json\n"
      "  shmbus tail ticks --group audit\n"
      "  shmbus ls; shmbus stat ticks; shmbus rm ticks\n"
      "  shmbus help tail\n"
      "Sizes: 4096, 64K, 16M, 1G, 64KiB (1024-based); 10KB, 10MB, 1GB (1000-based).\n"
      "Durations: 500ms, 1.5 (seconds), 0.2s, 2s, 1m, 1h.\n"
      "Times (@TIME): @2026-11-25T13:00:00Z, @2026-11-25T14:00:00+01:00 (no zone: UTC),\n"
      "@2026-11-25, @now, @-10s (ago), epoch values with a unit: @1796015187s, ms, us,\n"
      "ns; a bare epoch number gets its unit from its size (a note on stderr says which).\n"
      "Exit codes: 0 ok, 1 failure, 2 bad usage or input (unknown options included),\n"
      "130 interrupted by Ctrl-C (SIGINT), whatever the command but kafka-mock and\n"
      "bridge (0).  SIGTERM stops tail -f, stat --watch, persist, metrics, top,\n"
      "kafka-mock and bridge cleanly with 0.  Errors are one line\n"
      "\"shmbus: ...\" on stderr.");

  // The one that ran sets this.
  std::function<int()> run;

  CreateArgs create;
  auto* c = app.add_subcommand("create", "Create a stream");
  c->add_option("STREAM", create.stream, "Stream name ([A-Za-z0-9._-]{1,100})")->required();
  c->add_option("--capacity", create.capacity,
                "Ring size: a power of two from 4K to 4G, e.g. 64K, 16M, 1G (default 1M, as in "
                "Python)");
  c->add_option("--max-record", create.max_record, "Largest record payload (default capacity/8)");
  c->add_option("--mode", create.mode, "Permission bits, octal (default 0600)");
  c->add_flag("--single-producer", create.single_producer,
              "One producer at a time (a second one is refused while the first lives); it "
              "publishes without locked instructions, 1.1-3x the rate for small records");
  auto* exist_ok = c->add_flag("--exist-ok", create.exist_ok,
                               "Succeed if a compatible stream of yours already exists");
  // (needs: accepted alone, it did nothing: a first-hour review.)
  c->add_option("--trust-owner", create.trust_owner,
                "With --exist-ok: also accept a stream created by this user (name or uid)")
      ->needs(exist_ok);
  c->add_option("--data-dir", create.data_dir,
                "Where the stream's store is (a new ring continues its numbering)");
  c->add_flag("--fresh", create.fresh,
              "Remove the stream's old store first and start over at sequence 0");
  c->add_option("--abandon-timeout", create.abandon_timeout,
                "Uncommitted claims of dead producers become gaps after this (default 1s)");
  c->add_option("--consumer-timeout", create.consumer_timeout,
                "A durable group whose reader is gone stops holding producers back after this "
                "(default 2s); producers may then overwrite what it has not read, and it is told "
                "how many records it lost when it reads again");
  c->add_option("--consumer-retention", create.consumer_retention,
                "How long a durable group's position is kept after its reader went away "
                "(default 7d, as Kafka's offsets retention; 0: for ever); after it the group is "
                "forgotten and starts anew where --from says");
  add_namespace(c, &create.ns);
  c->callback([&] { run = [&] { return cmd_create(create); }; });

  PubArgs pub;
  auto* p = app.add_subcommand("pub", "Publish one record per line of stdin (or synthetic ones)");
  p->add_option("STREAM", pub.stream, "Stream name")->required();
  p->add_option("--type", pub.type, "Record type stored with each record (default 0)");
  p->add_option("--count", pub.count, "Publish N synthetic records instead of reading stdin")
      ->check(kNotNegative);
  p->add_option("--size", pub.size, "Size of each synthetic record (default 64)");
  p->add_option("--full-timeout", pub.full_timeout,
                "How long a publish waits for room in a full stream (default 10s)");
  auto* sync = p->add_flag("--sync", pub.sync,
              "Return only once the records are durable in the store (needs shmbus persist: "
              "fails at once if no persister is attached to STREAM within 1s); it waits for "
              "the records published so far whenever stdin has nothing more to read yet, and "
              "at the end, not once per record");
  p->add_option("--sync-timeout", pub.sync_timeout, "How long each --sync wait may take (default 10s)")
      ->needs(sync);
  p->add_option("--rate", pub.rate, "Synthetic records: at most N per second (default: no limit)")
      ->check(kNotNegative);
  auto* pub_delim = p->add_option("-D,--delimiter", pub.delimiter,
                "Records end with DELIM instead of a newline (kcat's -D; \\n \\t \\r \\0 \\\\ "
                "\\xNN are escapes)");
  p->add_flag("-0", pub.nul, "Records end with a NUL byte (find -print0, xargs -0)");
  p->add_option("--file", pub.files,
                "Publish each FILE as one record (repeatable); --file - publishes all of stdin "
                "as one record")
      ->allow_extra_args(false);  // one FILE per --file: STREAM may follow
  add_namespace(p, &pub.ns);
  p->callback([&] {
    pub.delimiter_given = pub_delim->count() > 0;
    run = [&] { return cmd_pub(pub); };
  });

  TailArgs tail;
  auto* t = app.add_subcommand("tail", "Print a stream's records (-f: and follow it)");
  t->add_option("STREAM", tail.stream, "Stream name")->required();
  t->add_option("--from", tail.from,
                "earliest, latest, a sequence number, or @TIME (see Times below): where a "
                "tailing reader or a NEW --group starts (default: earliest; an existing group "
                "continues where it left off; see --reset-to); a start below the oldest record "
                "in the ring says so on stderr (N records lost), unless the stream's store has "
                "them");
  t->add_option("--reset-to", tail.reset_to,
                "With --group: move the group to earliest, latest, SEQ or @TIME (rewind or skip "
                "it), then read from there (default: the group continues where it left off)");
  auto* tail_count = t->add_option("--count", tail.count, "Stop after N records, 0 for none (default: no limit)")
                         ->check(kNotNegative);
  t->add_flag("-f,--follow", tail.follow,
              "Wait for new records until --count or SIGINT/SIGTERM; follows the name as tail -F "
              "does: a stream removed (rm --force) is waited for, and one created again under "
              "the name is read from its start (a persisted stream created again over its store "
              "continues where the reader was)");
  t->add_option("--data-dir", tail.data_dir,
                "Where the store is when the stream has no ring, e.g. after a reboot (default: "
                "$SHMBUS_DATA_DIR, else ~/.local/share/shmbus, as for persist)");
  t->add_option("--group", tail.group,
                "Durable consumer name (default: none, an anonymous reader that keeps no "
                "position): the next tail --group NAME continues after the last "
                "record printed (written to stdout: at least once, a record printed just "
                "before a kill -9 may come again); a group evicted while away (gone longer than the stream's "
                "--consumer-timeout while producers overwrote what it had not read) says on "
                "stderr how many records it lost (N records lost), or on a persisted stream "
                "reads them from the store");
  t->add_option("--format", tail.format,
                "text (payload per line; a record that holds the delimiter, or any record to a "
                "terminal, is escaped: \\xNN, \\\\), raw (payload bytes as they are, then the "
                "delimiter), json or hex (default text)")
      ->transform(CLI::IsMember({"text", "json", "hex", "raw"}, CLI::ignore_case));
  auto* tail_delim = t->add_option("-D,--delimiter", tail.delimiter,
                "text, raw: write DELIM after each record (default \\n; escapes as for pub -D); "
                "raw with -D '': records back to back");
  t->add_option("--encoding", tail.encoding,
                "json: always this key: base64 (data_base64), utf8 (data; bytes that are not "
                "UTF-8 become U+FFFD) or hex (data_hex); default: data if UTF-8, else data_base64")
      ->transform(CLI::IsMember({"base64", "utf8", "hex"}, CLI::ignore_case));
  add_namespace(t, &tail.ns);
  t->callback([&] {
    tail.count_given = tail_count->count() > 0;
    tail.delimiter_given = tail_delim->count() > 0;
    run = [&] { return cmd_tail(tail); };
  });

  LsArgs ls;
  auto* l = app.add_subcommand("ls", "List the streams of a namespace");
  l->add_flag("--json", ls.json, "One JSON array");
  l->add_flag("--all", ls.all,
              "Every namespace (a NAMESPACE column; JSON: a \"namespace\" key per stream)");
  l->add_option("--data-dir", ls.data_dir, "Where to look for streams that exist only as a store");
  add_namespace(l, &ls.ns);
  l->callback([&] { run = [&] { return cmd_ls(ls); }; });

  StatArgs stat;
  auto* s = app.add_subcommand("stat", "Describe a stream, its producers and consumers, and rates");
  s->add_option("STREAM", stat.stream,
                "Stream name (required but with --format prometheus, which without it shows every "
                "stream of the namespace)");
  s->add_flag("--json", stat.json, "One JSON object (the same as --format json)");
  s->add_option("--format", stat.format,
                "text (default), json, or prometheus (the text exposition format 0.0.4, as "
                "shmbus metrics serves it; one snapshot)")
      ->transform(CLI::IsMember({"text", "json", "prometheus"}, CLI::ignore_case));
  s->add_option("--interval", stat.interval,
                "Measure rates over this long, e.g. 1s or 0.5 (default: none, one instant "
                "snapshot with the average rates since creation)");
  auto* watch = s->add_option("--watch", stat.watch_every,
                              "Print again every DURATION (default 1s) with the rates over it, "
                              "until Ctrl-C; a word after --watch that is not a duration is the "
                              "STREAM when none came before (stat --watch ticks watches ticks; "
                              "--watch=D always sets D)")
                    ->expected(0, 1);
  s->add_option("--stall", stat.stall,
                "Size the ring to ride out a consumer stall this long (default 1s)");
  s->add_option("--data-dir", stat.data_dir,
                "Where a stream without a ring has its store (default: $SHMBUS_DATA_DIR, else "
                "~/.local/share/shmbus), as for ls");
  add_namespace(s, &stat.ns);
  s->callback([&, watch, argc, argv] {
    stat.watch = watch->count() > 0;
    // CLI11 gives an optional value the next word whatever it is: `stat --watch ticks`
    // made "ticks" the period, and STREAM missing.  Unless given as --watch=D, a value
    // that is not a duration is the STREAM, when there is none.
    // `--watch WORD ... STREAM`: WORD may have been meant as a second stream, when STREAM
    // is first named after it (not `stat s --watch x --data-dir s`) and WORD does not
    // look like a mistyped duration (`--watch 2secs s`: a bad duration) (a review).
    bool attached = false;
    for (int i = 1; i < argc; ++i) {
      const std::string_view arg(argv[i]);
      attached = attached || arg.substr(0, 8) == "--watch=";
      if (arg != "--watch" || i + 2 >= argc) continue;
      const char* const* named = std::find(argv + 1, argv + argc, stat.stream);
      const char c = argv[i + 1][0];
      stat.stream_after_watch =
          named > argv + i + 1 && named != argv + argc && !(c >= '0' && c <= '9') && c != '.' && c != '-';
    }
    stat.watch_attached = attached;
    if (stat.watch && stat.stream.empty() && !attached && !stat.watch_every.empty() &&
        !shmbus::parse_duration(stat.watch_every)) {
      stat.stream = std::move(stat.watch_every);
      stat.watch_every.clear();
    }
    run = [&] { return cmd_stat(stat); };
  });

  RmArgs rm;
  auto* r = app.add_subcommand("rm", "Remove a stream");
  r->add_option("STREAM", rm.stream, "Stream name")->required();
  r->add_flag("--force", rm.force, "Remove it even while processes are attached");
  r->add_flag("--data", rm.data, "Also remove the stream's store (its segment files)");
  r->add_flag("--secure", rm.secure, "With --data: overwrite the files before unlinking them");
  r->add_option("--data-dir", rm.data_dir,
                "The store root (default: $SHMBUS_DATA_DIR, else ~/.local/share/shmbus, root "
                "without HOME: /var/lib/shmbus); must agree with the stream's header");
  add_namespace(r, &rm.ns);
  r->callback([&] { run = [&] { return cmd_rm(rm); }; });

  PersistArgs persist;
  auto* pe = app.add_subcommand("persist", "Persist streams to segment files until SIGINT/SIGTERM");
  pe->add_option("STREAM", persist.streams, "Stream names")->required();
  pe->add_option("--data-dir", persist.data_dir,
                 "Store root (default: $SHMBUS_DATA_DIR, else ~/.local/share/shmbus); a stream's "
                 "segments go to DATA_DIR/NAMESPACE/STREAM/");
  pe->add_option("--store", persist.store, "file (NVMe, disks) or pmem (PMDK libpmem2)")
      ->transform(CLI::IsMember({"file", "pmem"}, CLI::ignore_case));
  pe->add_option("--durability", persist.durability,
                 "async (durable within --flush-interval) or sync (flush as soon as the ring is drained)")
      ->transform(CLI::IsMember({"async", "sync"}, CLI::ignore_case));
  pe->add_option("--flush-interval", persist.flush_interval, "async: the loss window (default 10ms)");
  pe->add_option("--retention-age", persist.retention_age, "Delete segments older than this, e.g. 1h");
  pe->add_option("--retention-bytes", persist.retention_bytes, "Keep at most this much, e.g. 10G");
  pe->add_option("--segment-size", persist.segment_size, "Roll segments at this size (default 64M)");
  pe->add_option("--roll-age", persist.roll_age, "Roll segments at this age (default 1h)");
  pe->add_flag("--let-go", persist.let_go,
               "If the persister dies, let producers go on (the store records the lost range) "
               "instead of holding them back");
  pe->add_flag("--secure", persist.secure,
               "Overwrite segments before retention unlinks them (recorded with the store: later "
               "persisters keep it)");
  pe->add_flag("--detach", persist.detach,
               "Do not persist: end persistence of the streams (a stopped persister holds "
               "producers back until one returns; this frees them). The store stays on disk");
  pe->add_flag("--move-store", persist.move_store,
               "The stream's store is in another data dir: move it into this one");
  pe->add_flag("--new-store", persist.new_store,
               "The stream's store is in another data dir: start a new store here (the old one stays)");
  pe->add_flag("--detach-on-stop", persist.detach_on_stop,
               "On SIGINT/SIGTERM, end persistence instead of holding producers back until a "
               "persister returns");
  add_namespace(pe, &persist.ns);
  pe->callback([&] { run = [&] { return cmd_persist(persist); }; });

  FsckArgs fsck;
  auto* fk = app.add_subcommand("fsck", "Check (and repair) the segment files of a data dir");
  add_details(fk, "A store a running persister writes is marked live and read as far as written "
                  "(its tail in flux is not judged).");
  fk->add_option("DIR", fsck.dir, "A data dir, or one stream's store folder")->required();
  fk->add_flag("--repair", fsck.repair, "Truncate torn tails, rewrite indexes, set aside bad segments");
  add_namespace(fk, &fsck.ns,
                "Check only this namespace's stores in DIR (DIR/NAMESPACE/*), or refuse a "
                "store folder DIR of another namespace (default: every namespace in DIR; "
                "$SHMBUS_NAMESPACE does not narrow a check)");
  fk->callback([&] { run = [&] { return cmd_fsck(fsck); }; });

  DeleteArgs del;
  auto* de = app.add_subcommand("delete", "Delete a stream's records below a sequence number");
  de->add_option("STREAM", del.stream, "Stream name")->required();
  de->add_option("--before", del.before, "Records below SEQ are never served again")
      ->required()
      ->check(kNotNegative);
  de->add_option("--data-dir", del.data_dir,
                 "The store root (default as for persist); must agree with the stream's header");
  de->add_flag("--secure", del.secure,
               "Overwrite the deleted records' bytes before their space is released");
  add_namespace(de, &del.ns);
  de->callback([&] { run = [&] { return cmd_delete(del); }; });

  // kafka-mock and bridge run until SIGINT or SIGTERM and exit 0 either way.
  bool sigint_is_clean = false;
  KafkaMockArgs kmock;
  auto* km = app.add_subcommand("kafka-mock", "Run a mock Kafka cluster on loopback (demos, tests)");
  add_details(km, "A librdkafka mock cluster, its data in memory, until SIGINT/SIGTERM; prints the "
                  "bootstrap list first.");
  km->add_option("--brokers", kmock.brokers, "Number of brokers (default 1)")->check(CLI::Range(1, 64));
  km->add_option("--topic", kmock.topics, "Create topic NAME[:PARTITIONS] (repeatable)")
      ->allow_extra_args(false);
  add_namespace(km, &kmock.ns,
                "Accepted as by every command; the mock cluster has no streams, so it changes "
                "nothing");
  km->callback([&] {
    sigint_is_clean = true;
    run = [&] { return cmd_kafka_mock(kmock); };
  });

  auto* br = app.add_subcommand("bridge", "Carry a stream to Kafka (out) or a topic into a stream (in)");
  br->require_subcommand(1);
  BridgeOutArgs bout;
  auto* bo = br->add_subcommand("out", "Carry STREAM to a Kafka topic, exactly once, in order");
  add_details(bo, "Every record of STREAM becomes one Kafka message.");
  bo->add_option("STREAM", bout.stream, "Stream name")->required();
  bo->add_option("--brokers", bout.brokers, "Bootstrap brokers HOST:PORT[,...]")->required();
  bo->add_option("--topic", bout.topic, "Target topic (must exist)")->required();
  bo->add_option("--name", bout.name,
                 "Durable consumer name on a stream without persister (default _bridge.TOPIC)");
  bo->add_option("--from", bout.from,
                 "Where a bridge with nothing in Kafka yet starts: earliest (default), latest, SEQ or "
                 "@TIME; afterwards it continues after the highest shmbus.seq in the topic");
  bo->add_option("--key", bout.key, "none (default: one partition, total order) or type (key = type)")
      ->transform(CLI::IsMember({"none", "type"}, CLI::ignore_case));
  bo->add_option("--partition", bout.partition, "--key none: the target partition (default 0)");
  bo->add_option("-X", bout.props, "librdkafka property PROP=VALUE (repeatable), as kcat's -X")
      ->allow_extra_args(false);
  bo->add_flag("--exit-at-end", bout.exit_at_end,
               "Exit 0 once every record that existed at start is delivered");
  bo->add_option("--data-dir", bout.data_dir, "Where the store is (as for tail --data-dir)");
  bo->add_option("--connect-timeout", bout.connect_timeout,
                 "How long to wait for the brokers at start (default 10s)");
  add_namespace(bo, &bout.ns);
  bo->callback([&] {
    sigint_is_clean = true;
    run = [&] { return cmd_bridge_out(bout); };
  });
  BridgeInArgs bin;
  auto* bi = br->add_subcommand("in", "Carry a Kafka topic into a stream, at least once");
  add_details(bi, "Every message of TOPIC (all partitions) becomes one record, in order per "
                  "partition.");
  bi->add_option("TOPIC", bin.topic, "Source topic (must exist)")->required();
  bi->add_option("--brokers", bin.brokers, "Bootstrap brokers HOST:PORT[,...]")->required();
  bi->add_option("--stream", bin.stream, "Target stream (must exist)")->required();
  bi->add_option("--group", bin.group, "Kafka consumer group (default shmbus.STREAM)");
  bi->add_option("--from", bin.from, "Where a new group starts: earliest (default) or latest")
      ->transform(CLI::IsMember({"earliest", "latest"}, CLI::ignore_case));
  bi->add_option("--type", bin.type, "Type of messages without a shmbus.type header (default 0)");
  auto* bin_sync =
      bi->add_flag("--sync", bin.sync, "Commit offsets only once the records are durable (needs shmbus persist)");
  bi->add_option("-X", bin.props, "librdkafka property PROP=VALUE (repeatable), as kcat's -X")
      ->allow_extra_args(false);
  bi->add_flag("--exit-at-end", bin.exit_at_end, "Exit 0 at the end of every partition");
  bi->add_option("--sync-timeout", bin.sync_timeout,
                 "--sync: how long a commit waits for the records to be durable (default 30s)")
      ->needs(bin_sync);
  bi->add_option("--commit-interval", bin.commit_interval,
                 "Commit offsets at least this often (default 200ms): the most a crash repeats");
  bi->add_option("--connect-timeout", bin.connect_timeout,
                 "How long to wait for the brokers at start (default 10s)");
  add_namespace(bi, &bin.ns);
  bi->callback([&] {
    sigint_is_clean = true;
    run = [&] { return cmd_bridge_in(bin); };
  });

  MetricsArgs metrics;
  auto* me = app.add_subcommand("metrics", "Serve the streams' Prometheus metrics over HTTP");
  add_details(me, "Serves the Prometheus text of the namespace's streams at "
                  "http://ADDR:PORT/metrics until SIGINT/SIGTERM; prints the bound address first.");
  me->add_option("--listen", metrics.listen,
                 std::string("ADDR:PORT to listen on (default, also for a bare --listen: ") +
                     kDefaultMetricsListen +
                     ", loopback only; 0.0.0.0:PORT for every interface; port 0: any free port)")
      ->expected(0, 1);
  me->add_flag("--all", metrics.all, "Every namespace, not only one");
  add_namespace(me, &metrics.ns);
  me->callback([&] { run = [&] { return cmd_metrics(metrics); }; });

  TopArgs top;
  auto* tp = app.add_subcommand("top", "Live view of every stream of the namespace");
  add_details(tp, "Keys: q quit, s sort, / filter, arrows and Enter: a stream's consumers.  Plain "
                  "text frames when stdout is not a terminal.");
  tp->add_flag("--once", top.once,
               "Print one frame as plain text and exit (rates measured over --interval)");
  tp->add_option("--interval", top.interval,
                 "Refresh every DURATION, e.g. 1s or 0.5 (default 1s); --once measures over it");
  add_namespace(tp, &top.ns);
  tp->callback([&] { run = [&] { return cmd_top(top); }; });

  std::vector<std::string> help_topic;
  auto* h = app.add_subcommand("help", "Describe the commands, or one: shmbus help [COMMAND...]");
  h->add_option("COMMAND", help_topic, "A command, and one of its own: help bridge out");
  h->callback([&] {
    run = [&]() -> int {
      // App::help() describes the subcommand parsed, `help` itself for the app (no command
      // was listed): the formatter is asked directly.
      CLI::App* at = &app;
      for (const std::string& word : help_topic) {
        if (at->get_name() == "bench") break;  // shmbus-bench describes itself
        const std::vector<std::string> names = command_names(at);
        if (names.empty())
          return fail("help: " + command_path(at) + " has no command '" + word +
                          "' (see: shmbus help " + command_path(at) + ")",
                      kExitUsage);
        CLI::App* next = nullptr;
        for (CLI::App* sub : at->get_subcommands([](CLI::App*) { return true; }))
          if (sub->get_name() == word) next = sub;
        if (next == nullptr) {
          const std::string where = command_path(at);
          return fail("help: unknown command '" + word + "'" + (where.empty() ? "" : " for " + where) +
                          did_you_mean(word, names),
                      kExitUsage);
        }
        at = next;
      }
      if (at->get_name() == "bench") return cmd_bench({"--help"});
      const CLI::App* parent = at->get_parent();
      const std::string prev =
          parent == nullptr ? "" : "shmbus" + (parent == &app ? "" : " " + command_path(parent));
      std::fputs(parent == nullptr ? app.get_formatter()->make_help(&app, "shmbus", CLI::AppFormatMode::Normal).c_str()
                                   : at->help(prev).c_str(),
                 stdout);
      return kExitOk;
    };
  });

  // Everything after `bench` (--help included) goes to shmbus-bench.
  auto* b = app.add_subcommand("bench", "Run shmbus-bench with the remaining arguments");
  b->prefix_command();
  b->set_help_flag();
  b->callback([&] { run = [b] { return cmd_bench(b->remaining()); }; });

  // An empty value of these is bad input (exit 2), not "not given": `--namespace "$NS"`
  // with NS unset worked on $SHMBUS_NAMESPACE's streams, `--from ''` read from the
  // default start (a review).
  const CLI::Validator non_empty(
      [](std::string& v) { return v.empty() ? std::string("an empty value is not allowed") : std::string(); },
      "");
  const std::function<void(CLI::App*)> refuse_empty = [&](CLI::App* a) {
    for (CLI::Option* o : a->get_options({}))
      for (const char* name : {"namespace", "from", "reset-to", "group", "data-dir", "listen"})
        if (o->check_lname(name)) o->check(non_empty);
    for (CLI::App* sub : a->get_subcommands([](CLI::App*) { return true; })) refuse_empty(sub);
  };
  refuse_empty(&app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {  // --help, --version
      const int rc = app.exit(e);
      return stdout_flushed() ? rc : kExitFailure;
    }
    return usage_error(app, e, argc, argv);
  }
  for (std::string* ns : g_namespaces)
    if (ns->empty()) *ns = global_ns;
  int rc = kExitUsage;
  try {
    rc = run ? run() : kExitUsage;
  } catch (const std::exception& e) {
    return fail(std::string("internal error: ") + e.what());
  }
  // Output that never arrived is a failure, as coreutils' close_stdout() makes it: `shmbus
  // ls > /dev/full`, or with stdout closed, exited 0 (a review).  Commands that check
  // their own writes (tail) have failed already.
  if (rc == kExitOk && !stdout_flushed()) rc = kExitFailure;
  // Ctrl-C exits 130 whatever the command (like a shell's child killed by SIGINT), once
  // the command has stopped cleanly; a failure keeps its own code.
  if (stop_signal() == SIGINT && rc == kExitOk && !sigint_is_clean) rc = kExitInterrupted;
  return rc;
}
