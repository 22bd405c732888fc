// cmd_tail.cc: tail: records out of a stream to stdout (text, raw, json, hex), as a
// tailing reader, a replaying one (persisted streams: store, then ring) or a durable group.
#include <stdio_ext.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "args.h"
#include "commands.h"
#include "format.h"
#include "shmbus/json.h"
#include "shmbus/persister.h"
#include "shmbus/tail.h"
#include "shmbus/shmbus.h"
#include "signals.h"

namespace shmbus::tools {
namespace {

using namespace std::chrono_literals;

std::string_view as_chars(Bytes b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}

// ---- tail ------------------------------------------------------------------

// Writes records to stdout in one of the formats; remembers the first write error.
class RecordPrinter {
 public:
  enum class Format { kText, kJson, kHex, kRaw };
  // Text records reach a terminal escaped (terminal_text): a payload must not be able to
  // drive it.  Into a pipe or file they go as they are, unless they contain the delimiter
  // or a backslash: then escaped too, the delimiter's bytes included (\xNN), so that one
  // record stays one line and every line decodes back to its record (a printable -D like
  // ',' stayed in the record, and "a\x0ab" as text printed as a record holding a
  // newline did: a review).  Raw records go as they are.
  RecordPrinter(Format f, std::string delimiter, std::string encoding)
      : format_(f), to_terminal_(::isatty(STDOUT_FILENO) == 1), delimiter_(std::move(delimiter)),
        encoding_(std::move(encoding)) {}

  bool print(const Record& rec) {
    const std::string_view data = as_chars(rec.data);
    switch (format_) {
      case Format::kText:
        if (to_terminal_ || delimiter_before_end(data) || data.find('\\') != std::string_view::npos)
          escape_delimiter(terminal_text(data));
        else line_.assign(data);
        break;
      case Format::kRaw:
        line_.assign(data);
        break;
      case Format::kJson: {
        JsonWriter w;
        w.begin_object()
            .field("seq", rec.seq)
            .field("ts_ns", rec.ts_ns)
            .field("type", rec.type)
            .field("size", static_cast<uint64_t>(data.size()));
        if (encoding_ == "hex") w.field("data_hex", hex_encode(data));
        else if (encoding_ == "base64") w.field("data_base64", base64_encode(data));
        else if (encoding_ == "utf8" || is_valid_utf8(data)) w.field("data", data);  // U+FFFD
        else w.field("data_base64", base64_encode(data));
        w.end_object();
        line_ = w.release();
        break;
      }
      case Format::kHex:
        line_ = std::to_string(rec.seq) + ' ' + std::to_string(rec.ts_ns) + ' ' +
                std::to_string(rec.type) + ' ' + std::to_string(data.size()) + ' ' +
                (data.empty() ? std::string("-") : hex_encode(data));
        break;
    }
    if (format_ == Format::kText || format_ == Format::kRaw) line_ += delimiter_;
    else line_ += '\n';
    if (std::fwrite(line_.data(), 1, line_.size(), stdout) != line_.size()) return failed();
    return true;
  }

  bool flush() {
    if (std::fflush(stdout) != 0) return failed();
    return true;
  }

  // After a failed write: the exit code, with a message unless the reader went away or
  // a stop interrupted it (stdout_write_error()).
  int write_error() const { return stdout_write_error(errno_); }

 private:
  bool failed() {
    errno_ = errno;
    // Drop what is still buffered: exit() must not print records that were not
    // committed (the next tail --group prints them).
    __fpurge(stdout);
    return false;
  }

  // Whether `text` followed by the delimiter holds the delimiter anywhere before that
  // one: inside the text, or across its end (a delimiter like "--" after a text ending
  // in "-": "a-" then "b" printed as "a" then "-b" do, a review).
  bool delimiter_before_end(std::string_view text) const {
    if (delimiter_.empty()) return false;
    if (text.find(delimiter_) != std::string_view::npos) return true;
    const size_t d = delimiter_.size();
    for (size_t i = text.size() > d - 1 ? text.size() - (d - 1) : 0; i < text.size(); ++i)
      if (text.substr(i) == std::string_view(delimiter_).substr(0, text.size() - i)) return true;
    return false;
  }

  // line_ = `escaped` with the first byte of every occurrence of the delimiter that
  // starts inside it (in `escaped` followed by the delimiter, each position looked at)
  // written \xNN: the first occurrence in line_ + delimiter is then the last.  An escape
  // cannot take part in an occurrence (a text delimiter holds no backslash, x or hex
  // digit, make_printer()), and an escaped byte only breaks the ones it was in.
  void escape_delimiter(const std::string& escaped) {
    line_.clear();
    if (delimiter_.empty()) {
      line_ = escaped;
      return;
    }
    static constexpr char kHex[] = "0123456789abcdef";
    const std::string with = escaped + delimiter_;
    for (size_t i = 0; i < escaped.size(); ++i) {
      if (with.compare(i, delimiter_.size(), delimiter_) != 0) {
        line_ += escaped[i];
        continue;
      }
      const auto c = static_cast<unsigned char>(escaped[i]);
      line_ += "\\x";
      line_ += kHex[c >> 4];
      line_ += kHex[c & 15];
    }
  }

  Format format_;
  bool to_terminal_;
  std::string delimiter_;  // text, raw: after each record
  std::string encoding_;   // json: "", base64, utf8 or hex
  std::string line_;
  int errno_ = 0;
};

// "shmbus: lapped: N records lost" notes for a tailing reader that producers overran.
// A reader that is lapped again and again would print one note per lap; they are
// summed and printed at most once a second, and whenever the reader catches up.
class LapNotes {
 public:
  // After kLapped; `lost` is Consumer::lost().
  void lapped(uint64_t lost) {
    pending_ += lost - seen_;
    seen_ = lost;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ >= std::chrono::seconds(1)) report();
  }
  void report() {
    if (pending_ == 0) return;
    warn("lapped: " + std::to_string(pending_) + " records lost");
    pending_ = 0;
    last_ = std::chrono::steady_clock::now();
  }

 private:
  uint64_t seen_ = 0, pending_ = 0;
  std::chrono::steady_clock::time_point last_{};
};

// The one stderr line for records a reader skipped: a group evicted while away, or a start
// below the oldest record in the ring; whether the store has them, or how many are lost.
std::string loss_note(ReadStatus st, const persist::GroupConsumer::Loss& l, const TailArgs& a,
                      std::string_view ns) {
  const std::string range = l.to - l.from == 1 ? "record " + std::to_string(l.from)
                                               : "records " + std::to_string(l.from) + ".." +
                                                     std::to_string(l.to - 1);
  std::string what;
  if (st == ReadStatus::kEvicted) {
    uint64_t timeout_ms = 0;
    if (auto info = stream_info(ns, a.stream); info) timeout_ms = info->consumer_dead_timeout_ms;
    what = "consumer group '" + a.group + "' was evicted (its reader was away longer than the " +
           "stream's consumer timeout of " + std::to_string(timeout_ms) + " ms): " + range +
           " left the ring";
  } else {
    what = range + (l.to - l.from == 1 ? " is" : " are") + " no longer in the ring (it starts at " +
           std::to_string(l.to) + ")";
  }
  if (l.deleted > 0) {
    // Below the deletion watermark (or deleted by retention meanwhile): not a loss.
    const uint64_t last = l.from + l.deleted - 1;
    what += "; " + (l.deleted == 1 ? "record " + std::to_string(l.from) + " was"
                                   : "records " + std::to_string(l.from) + ".." +
                                         std::to_string(last) + " were") +
            " deleted (not a loss)";
    if (l.lost == 0) return l.from_store ? what + "; reading the rest from the store" : what;
  }
  if (l.lost == 0) return what + "; reading them from the store (nothing lost)";
  if (l.from_store)
    return what + ": " + std::to_string(l.lost) + " records lost; the rest comes from the store";
  return what + ": " + std::to_string(l.lost) + " records lost";
}

// --from: false after printing why; a bare epoch number gets a note with the unit assumed.
bool from_flag(const std::string& text, StartFrom* out) {
  std::string note;
  auto s = parse_start(text, &note);
  if (!s) {
    fail("--from: " + s.error().message, kExitUsage);
    return false;
  }
  if (!note.empty()) warn("--from: " + note + " (" + format_time_ns(s->value) + ")");
  *out = s.value();
  return true;
}

RecordPrinter::Format parse_format(const std::string& f) {
  if (f == "json") return RecordPrinter::Format::kJson;
  if (f == "hex") return RecordPrinter::Format::kHex;
  if (f == "raw") return RecordPrinter::Format::kRaw;
  return RecordPrinter::Format::kText;
}

// tail's printer from --format, -D and --encoding; nullopt after a usage message.
std::optional<RecordPrinter> make_printer(const TailArgs& a) {
  std::string delim = "\n";
  if (a.delimiter_given && a.format != "text" && a.format != "raw") {
    fail("-D goes with --format text or raw", kExitUsage);
    return std::nullopt;
  }
  // An empty -D: raw records back to back (a payload split over records, reassembled);
  // text records need a delimiter between them (it used to be ignored: newlines came out).
  if (a.delimiter_given && a.delimiter.empty()) {
    if (a.format != "raw") {
      fail("-D: the delimiter is empty (text records need one between them; --format raw -D '' "
           "writes the records back to back)", kExitUsage);
      return std::nullopt;
    }
    delim.clear();
  }
  if (!a.delimiter.empty()) {
    auto d = delimiter_flag("-D", a.delimiter);
    if (!d) return std::nullopt;
    delim = *d;
    // Text output escapes a delimiter found inside a record as \xNN: a delimiter made
    // partly of those characters could come out of the escapes themselves.
    if (a.format == "text" && delim.find_first_of("\\x0123456789abcdef") != std::string::npos) {
      fail("-D " + a.delimiter + ": text output escapes a delimiter found inside a record with a backslash, an "
           "x and two hex digits, so the delimiter cannot hold any of those (0-9, a-f); use another, or "
           "--format raw (records as they are)", kExitUsage);
      return std::nullopt;
    }
  }
  if (!a.encoding.empty() && a.format != "json") {
    fail("--encoding goes with --format json", kExitUsage);
    return std::nullopt;
  }
  return RecordPrinter(parse_format(a.format), delim, a.encoding);
}

// Where `tail -f` (with or without --group) reads a stream created again under its name,
// having read the one removed up to `was`: from the new stream's first sequence, or from
// `was` if that lies beyond it.
// - Created over its store, the new stream begins at the store's end: at or past `was`,
//   it continues what the reader read (the rest, if any, is in the store); below it (the
//   removed ring's last records were never stored, and the new one gives their numbers
//   to new records), its own records from there are new to the reader.
// - A new sequence (--fresh, or not persisted) begins at 0: read from there, so that what
//   the reader cannot have is said (records that left a ring that is not persisted, or
//   left it before a persister attached: "not in the store").
// (A review: the reader read from the store's earliest record, or from 0, whenever it
// could not find record was-1 stamped before the new stream's creation: a lost range
// recorded at `rm --force`, or a `delete --before`, printed the whole store again or
// said "deleted" of printed records; records a late persister never stored were skipped
// unsaid.  And the two stamps came from different clocks.)
StartFrom new_stream_start(uint64_t was, const StreamInfo& info) {
  return StartFrom::seq(std::min(was, info.first_seq));
}

// Whether the stream named `stream` is still the one created at `created_ns`: a reader
// whose start was decided from a look at a stream, and then opened it, checks that it
// opened that one (one removed and created again in between, or created only after the
// look found none, would be read from a start meant for another).
bool same_stream(const std::string& ns, const std::string& stream, uint64_t created_ns) {
  auto now = stream_info(ns, stream);
  return now && now->created_ns == created_ns;
}

// tail of a persisted stream without --group (open_tail chose the store, then the
// ring): lapped readers fall back to the store instead of losing records.
int tail_replay(const TailArgs& a, const std::string& ns, persist::ReplayConsumer consumer,
                RecordPrinter& out, uint64_t printed = 0) {
  std::optional<persist::ReplayConsumer> c(std::move(consumer));
  // Follow the name, as tail -F: a ring removed (rm --force) is said, and waited for; the
  // stream created again is followed (its store, if kept, continues the sequence).
  auto name_check = std::chrono::steady_clock::now();
  bool removed = false;
  auto reopen = [&]() -> int {
    if (!removed) warn("stream '" + a.stream + "' was removed; waiting for it to be created again");
    removed = true;
    const uint64_t was = c->next_seq();
    persist::ReplayOptions from_here;
    from_here.start = StartFrom::seq(was);
    from_here.data_dir = a.data_dir;
    // (A reader gone meanwhile ends the wait: the caller's next name check ends the tail.)
    while (!stop_requested() && !stdout_reader_gone()) {
      // A ring again: from where new_stream_start() says (its first sequence, or `was`
      // beyond it), as with `--group`.  From `was` always, a stream created again with
      // fewer numbers than this reader saw (records published into the removed ring and
      // never stored) had its first records skipped unsaid (a review).
      auto info = stream_info(ns, a.stream);
      if (info) from_here.start = new_stream_start(was, info.value());
      auto n = persist::ReplayConsumer::open(ns, a.stream, from_here);
      if (!n && n.error().code == Errc::kPermission && !from_here.read_only) {
        from_here.read_only = true;  // e.g. a mode 0640 stream of another user
        continue;
      }
      if (n && n->name_state() == NameState::kSame) {  // a ring again
        // The start was decided on the stream `info` saw; the one opened must be that one
        // (CI: this process paused between the look, no stream yet, and the open, the new
        // stream was read from `was`, its first records skipped unsaid).
        if (!info || !same_stream(ns, a.stream, info->created_ns)) {
          std::this_thread::sleep_for(1ms);  // (no spin should the look keep failing)
          continue;
        }
        c.emplace(std::move(n.value()));
        removed = false;
        warn("stream '" + a.stream + "' was created again; following the new stream");
        return kExitOk;
      }
      if (!n && n.error().code == Errc::kNotFound) from_here.start = StartFrom::earliest();  // store gone too: a new stream
      else if (!n) return fail("stream '" + a.stream + "' was created again but cannot be read: " + n.error().message);
      std::this_thread::sleep_for(100ms);  // stop signals are seen within 100 ms
      if (!stop_requested()) std::this_thread::sleep_for(100ms);
    }
    return kExitOk;
  };
  while (!stop_requested() && ((a.count == 0 && !a.count_given) || printed < a.count)) {
    Record rec;
    persist::ReplayStatus st = c->poll(&rec, 0ns);
    if (st == persist::ReplayStatus::kTimeout) {
      if (!a.follow) break;
      if (!out.flush()) return out.write_error();
      st = c->poll(&rec, 100ms);
      if (st == persist::ReplayStatus::kTimeout) {
        const auto now = std::chrono::steady_clock::now();
        if (now - name_check < 200ms) continue;
        name_check = now;
        // `tail -f | head -1`: the reader left, nothing is pending (flushed above).
        if (stdout_reader_gone()) return kExitOk;
        if (c->name_state() == NameState::kSame) continue;
        if (const int rc = reopen(); rc != kExitOk) return rc;
        continue;
      }
    }
    switch (st) {
      case persist::ReplayStatus::kOk:
        if (!out.print(rec)) return out.write_error();
        ++printed;
        break;
      case persist::ReplayStatus::kGap: {
        const auto& g = c->gap();
        // Nothing was published under these numbers (claims aborted or abandoned): no
        // record is missing, and a tail of the ring says nothing of them either.
        if (g.never_published) break;
        warn((g.to - g.from == 1 ? "record " + std::to_string(g.from)
                                    : "records " + std::to_string(g.from) + ".." + std::to_string(g.to - 1)) +
             ": " + g.reason);
        break;
      }
      case persist::ReplayStatus::kError:
        if (a.follow && c->error().code == Errc::kNotFound) {  // the ring went while we read the store
          if (!out.flush()) return out.write_error();
          if (const int rc = reopen(); rc != kExitOk) return rc;
          break;
        }
        out.flush();
        return fail(c->error());
      default:
        out.flush();
        return fail("stream '" + a.stream + "': the consumer was closed");
    }
  }
  if (!out.flush()) return out.write_error();
  return kExitOk;
}

}  // namespace

int cmd_tail(const TailArgs& a) {
  const auto ns_or = command_namespace(a.ns);
  if (!ns_or) return kExitUsage;
  const std::string ns = *ns_or;
  auto printer = make_printer(a);
  if (!printer) return kExitUsage;
  const uint64_t started_ns = now_ns();  // (before --from is read: @now is at or after it)
  ConsumerOptions o;
  o.group = a.group;
  // A record counts as consumed only once it reached stdout: commit by hand after flushing.
  o.auto_commit = false;
  if (!a.reset_to.empty()) {
    // Rewinding (or skipping) an existing group is explicit.
    if (a.group.empty()) return fail("--reset-to goes with --group (a tailing reader: use --from)", kExitUsage);
    if (!a.from.empty()) return fail("--reset-to and --from exclude each other", kExitUsage);
    if (!from_flag(a.reset_to, &o.start)) return kExitUsage;
    o.reset = true;
  } else if (!a.from.empty()) {
    if (!from_flag(a.from, &o.start)) return kExitUsage;  // a group: only where a new one starts
  } else {
    o.start = a.group.empty() ? StartFrom::earliest() : StartFrom{};  // {}: committed
  }
  // The stream before the reader attaches, read once when a note needs it: whether the
  // group exists already (it then ignores --from, and says so below) and, without -f,
  // whether the start lies past the end.
  const bool start_note =
      !a.follow && (o.start.kind == StartFrom::Kind::kSeq || o.start.kind == StartFrom::Kind::kTime);
  std::optional<StreamInfo> before;
  if (auto info = stream_info(ns, a.stream); info) before = std::move(info.value());
  const ConsumerInfo* existing = nullptr;  // the group's entry, if it exists
  if (before && !a.group.empty())
    for (const auto& c : before->consumers)
      if (c.durable && c.name == a.group) existing = &c;
  // A group forgotten by the consumer retention starts anew: said (it restarted silently
  // from the earliest record: a review).
  if (existing && existing->expired && !o.reset) {
    warn("group '" + a.group + "' expired: nobody held it for longer than the stream's consumer retention (" +
         std::to_string(before->consumer_retention_ms) + " ms), so its position (next sequence " +
         std::to_string(existing->next_seq) + ") is forgotten; it starts anew at " +
         (a.from.empty() ? std::string("earliest") : a.from));
    existing = nullptr;  // a new group from here on
  }
  // Without -f, a start past the stream's end prints nothing and exits 0: said, so that a
  // mistyped sequence or time is not taken for an empty stream (a tailing reader, a group
  // moved there, or a new group that starts there).
  if (start_note && (a.group.empty() || o.reset || (before && !existing))) {
    const std::string flag = o.reset ? "--reset-to " + a.reset_to : "--from " + a.from;
    if (o.start.kind == StartFrom::Kind::kTime) {
      if (o.start.value > now_ns())
        warn(flag + " is in the future (" + format_time_ns(o.start.value) +
             "): nothing to print without -f, which waits for it");
    } else if (before && o.start.value > before->next_seq) {
      warn(flag + " is past the stream's end (its next sequence is " + std::to_string(before->next_seq) +
           "): nothing to print without -f, which waits for it");
    }
  }
  install_stop_handlers();  // before attaching: whoever sees us attached may signal us
  // A group takes from the store what the ring lost while it was away (persisted streams).
  auto open = [&](ConsumerOptions& o) {
    auto c = persist::GroupConsumer::open(ns, a.stream, o, a.data_dir);
    if (!c && c.error().code == Errc::kPermission && a.group.empty()) {
      o.read_only = true;  // e.g. a mode 0640 stream of another user: read without registering
      c = persist::GroupConsumer::open(ns, a.stream, o, a.data_dir);
    }
    return c;
  };
  std::optional<persist::GroupConsumer> gc;
  if (a.group.empty()) {
    // persist/ decides how a reader without a group reads: a persisted stream (or a store
    // whose ring is gone) from the store, then live; any other from the ring.
    persist::TailOptions to;
    to.start = o.start;
    to.read_only_if_denied = true;  // e.g. a mode 0640 stream of another user
    to.data_dir = a.data_dir;
    auto t = persist::open_tail(ns, a.stream, to);
    if (!t) return fail_stream(t.error(), ns, a.stream, a.data_dir);
    if (t->replay) return tail_replay(a, ns, std::move(*t->replay), *printer);
    gc.emplace(std::move(*t->ring));
  } else {
    // --from says where a new group starts; an existing group continues after its last
    // commit (as Kafka's auto.offset.reset).  Said, not silently ignored.
    const bool existed = !a.from.empty() && existing, evicted = existed && existing->evicted;
    auto c = open(o);
    if (c && existed)
      warn("--from " + a.from + " is where a new group starts: group '" + a.group + "' exists and " +
           (evicted ? std::string("continues after what it read (it was evicted: see below)")
                    : "continues at sequence " + std::to_string(c->ring().next_seq())) +
           " (--reset-to " + a.from + " moves it)");
    if (!c && c.error().code == Errc::kPermission)
      return fail(c.error().message +
                  "; --group needs write access to the stream (tail without --group can read it)");
    if (!c && c.error().code == Errc::kBusy)
      return fail(c.error().message + " (one reader per group at a time; another tail --group " +
                  a.group + " is running)");
    if (!c) return fail_stream(c.error(), ns, a.stream, a.data_dir);
    gc.emplace(std::move(c.value()));
  }
  // Records below the deletion watermark (shmbus delete) are skipped, deleted on purpose:
  // said, as a persisted stream's replay says it (a plain stream's tail --from 0 started
  // past them without a word: a review).  A persisted stream's group says it itself.
  // A start at a time (@-1h) counts only where the reader starts at it: a tailing reader,
  // a new group, --reset-to (an existing group continues at its sequence, and is told as
  // any).  Every deleted record was published before tail started: a time at or after
  // that (@now) has none of them past it, no note.  An earlier one: when a record was
  // kept, the note waits for the first record stamped at or after the time, and comes
  // only when that is the first kept one (`below`) (else the deleted are older than the
  // time); when none was kept, said at once (`--from @now` said "deleted" of records
  // older than now; all deleted, @-1h said nothing: reviews).
  std::string deleted_note;
  uint64_t deleted_below = 0;
  if (before && !before->persist) {
    const uint64_t from = gc->ring().next_seq(), below = before->deleted_below;
    if (from < below)
      deleted_note = (below - from == 1 ? "record " + std::to_string(from)
                                        : "records " + std::to_string(from) + ".." +
                                              std::to_string(below - 1)) +
                     ": deleted";
    deleted_below = below;
  }
  const bool at_time = o.start.kind == StartFrom::Kind::kTime && (a.group.empty() || o.reset || !existing);
  const uint64_t next_at_open = before ? before->next_seq : 0;
  const bool kept_one = deleted_below < next_at_open;
  if (at_time && o.start.value >= started_ns) deleted_note.clear();
  const bool note_at_first = at_time && kept_one && !deleted_note.empty();
  if (!note_at_first && !deleted_note.empty()) warn(deleted_note);
  const bool durable = gc->ring().durable();

  RecordPrinter& out = *printer;
  uint64_t printed = 0;
  LapNotes laps;
  int rc = kExitOk;
  bool write_failed = false;
  auto name_check = std::chrono::steady_clock::now();
  while (!stop_requested() && ((a.count == 0 && !a.count_given) || printed < a.count)) {
    Record rec;
    ReadStatus st = gc->poll(&rec, 0ns);
    if (st == ReadStatus::kTimeout) {
      laps.report();  // caught up: say what was lost on the way
      if (!a.follow) break;
      // About to wait: let the reader see what we have, then nap briefly so that a stop
      // signal is noticed within 100 ms.
      if (!out.flush()) {
        write_failed = true;
        break;
      }
      st = gc->poll(&rec, 100ms);
      if (st == ReadStatus::kTimeout) {
        // Follow the name, as tail -F: every 200 ms, is it still the stream we read?
        const auto now = std::chrono::steady_clock::now();
        if (now - name_check < 200ms) continue;
        name_check = now;
        // `tail -f | head -1`: the reader left, nothing is pending (flushed above); what
        // was printed is committed as at any end.
        if (stdout_reader_gone()) break;
        if (gc->ring().name_state() == NameState::kSame) continue;
        warn("stream '" + a.stream + "' was removed; waiting for it to be created again");
        laps = LapNotes();
        const uint64_t was = gc->ring().next_seq();
        gc.reset();  // detach from the old one
        ConsumerOptions fresh = o;
        fresh.reset = false;
        fresh.read_only = false;
        while (!stop_requested() && !stdout_reader_gone()) {  // (`| head`: its reader left)
          auto info = stream_info(ns, a.stream);
          if (!info && info.error().code == Errc::kNotFound) {
            std::this_thread::sleep_for(100ms);  // stop signals are seen within 100 ms
            continue;
          }
          fresh.start = info ? new_stream_start(was, info.value()) : StartFrom::earliest();
          if (a.group.empty() && info && info->persist) {
            // Without a group a persisted stream is read through its store, as at the
            // start (open_tail()): a reader that began on a stream that was not persisted
            // goes on as one that began on this one (a review: it stayed a ring reader,
            // and a lap said "lapped: 2048 records lost" of records the store held).
            persist::TailOptions to;
            to.start = fresh.start;
            to.read_only_if_denied = true;
            to.data_dir = a.data_dir;
            auto t = persist::open_tail(ns, a.stream, to);
            if (t && t->replay) {
              if (!same_stream(ns, a.stream, info->created_ns)) continue;
              warn("stream '" + a.stream + "' was created again; following the new stream");
              return tail_replay(a, ns, std::move(*t->replay), out, printed);
            }
          }
          auto n = open(fresh);
          if (n && info && !same_stream(ns, a.stream, info->created_ns)) {
            // Another stream than the one looked at (removed and created again in
            // between): the start was meant for that one.  Looked at again; the group,
            // registered here at that start, is moved to the new one (reset).
            fresh.reset = true;
            continue;
          }
          if (n) {
            gc.emplace(std::move(n.value()));
            break;
          }
          if (n.error().code != Errc::kNotFound) {  // e.g. created by another user
            rc = fail("stream '" + a.stream + "' was created again but cannot be read: " +
                      n.error().message);
            break;
          }
          std::this_thread::sleep_for(100ms);  // stop signals are seen within 100 ms
          if (!stop_requested()) std::this_thread::sleep_for(100ms);
        }
        if (!gc) break;
        warn("stream '" + a.stream + "' was created again; following the new stream");
        continue;
      }
    }
    if (st == ReadStatus::kOk) {
      if (note_at_first && printed == 0 && rec.seq == deleted_below) warn(deleted_note);
      if (!out.print(rec) || (durable && !out.flush())) {
        write_failed = true;
        break;
      }
      ++printed;
      if (durable) gc->commit();
    } else if (st == ReadStatus::kLapped) {
      laps.lapped(gc->ring().lost());
    } else if (st == ReadStatus::kEvicted || st == ReadStatus::kBeforeOldest) {
      warn(loss_note(st, gc->loss(), a, ns));
    } else if (st == ReadStatus::kCorrupt && !gc->error().message.empty()) {
      rc = fail("stream '" + a.stream + "': reading its store: " + gc->error().message);
      break;
    } else if (st == ReadStatus::kCorrupt) {
      rc = fail("stream '" + a.stream + "' is corrupt at sequence " + std::to_string(gc->ring().next_seq()) +
                ": the ring holds bytes no shmbus producer wrote");
      break;
    } else {  // kClosed
      rc = fail("stream '" + a.stream + "': the consumer was closed");
      break;
    }
  }
  laps.report();
  if (!write_failed && !out.flush()) write_failed = true;
  if (write_failed) rc = out.write_error();
  if (gc) gc->ring().close();
  return rc;
}

}  // namespace shmbus::tools
