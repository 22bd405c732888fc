// cmd_io.cc: pub and tail: records in from stdin, records out to stdout.
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
#include "shmbus/shmbus.h"
#include "signals.h"

namespace shmbus::tools {
namespace {

using namespace std::chrono_literals;

Bytes as_bytes(std::string_view s) {
  return Bytes(reinterpret_cast<const std::byte*>(s.data()), s.size());
}
std::string_view as_chars(Bytes b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}

// ---- pub -------------------------------------------------------------------

std::string publish_error(PubStatus st, uint64_t size, const Producer& p, const PubArgs& a,
                          std::string_view ns, std::chrono::nanoseconds full_timeout) {
  switch (st) {
    case PubStatus::kTooLarge:
      return "record of " + std::to_string(size) + " bytes is larger than the stream's maximum " +
             std::to_string(p.max_record());
    case PubStatus::kFull: {
      std::string why;
      if (auto info = stream_info(ns, a.stream); info) why = explain_held_back(info.value());
      return "stream '" + a.stream + "' stayed full for " +
             std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(full_timeout).count()) +
             " ms (--full-timeout): " +
             (why.empty() ? "a consumer group is holding producers back (see: shmbus stat " + a.stream +
                                (ns == "default" ? "" : " --namespace " + std::string(ns)) + ")"
                          : why);
    }
    case PubStatus::kAbandoned:
      return "a record was declared abandoned by another process: this producer stalled "
             "longer than the stream's abandon timeout";
    case PubStatus::kClosed: return "the producer was closed";
    case PubStatus::kTimeout: return "timed out";
    case PubStatus::kCorrupt:
      return "stream '" + a.stream + "' is damaged (its cursors do not add up, or its shared memory "
             "shrank): remove it (shmbus rm --force) and create it again";
    case PubStatus::kNotPersisted: return "not persisted";
    case PubStatus::kOk: break;
  }
  return "unknown publish status";
}

// The synthetic payload of record `i`: its 8-byte little-endian counter, repeated.
void fill_synthetic(std::string* buf, uint64_t i) {
  unsigned char le[8];
  for (int k = 0; k < 8; ++k) le[k] = static_cast<unsigned char>(i >> (8 * k));
  for (size_t off = 0; off < buf->size(); off += 8)
    std::memcpy(buf->data() + off, le, std::min<size_t>(8, buf->size() - off));
}

int wait_durable(Producer& p, uint64_t seq, const PubArgs& a) {
  auto t = duration_flag("--sync-timeout", a.sync_timeout);
  if (!t) return kExitUsage;
  PubStatus st = p.wait_durable(seq, *t);
  if (st == PubStatus::kOk) return kExitOk;
  if (st == PubStatus::kNotPersisted)
    return fail("record " + std::to_string(seq) + " was not persisted: the persister recorded it as "
                "lost (a --let-go stream whose persister was away while the ring moved on)");
  return fail("record " + std::to_string(seq) + " was published but is not durable after " +
              a.sync_timeout + ": is `shmbus persist " + a.stream + "` running?");
}

int pub_synthetic(Producer& p, const PubArgs& a, uint64_t size, std::string_view ns,
                  std::chrono::nanoseconds full_timeout) {
  if (size > p.max_record())
    return fail(publish_error(PubStatus::kTooLarge, size, p, a, ns, full_timeout));
  std::string buf(size, '\0');
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t n = 0, last_seq = 0;
  std::vector<uint64_t> ours;  // --sync: the sequences to check once durable
  for (; n < a.count && !stop_requested(); ++n) {
    if (a.rate > 0 && n % 16 == 0) {  // pace: record n is due at t0 + n / rate
      const auto due = t0 + std::chrono::nanoseconds(static_cast<int64_t>(n * 1e9 / static_cast<double>(a.rate)));
      if (due > std::chrono::steady_clock::now()) std::this_thread::sleep_until(due);
    }
    fill_synthetic(&buf, n);
    PubResult r = p.publish(as_bytes(buf), a.type);
    if (!r.ok()) return fail(publish_error(r.status, size, p, a, ns, full_timeout));
    last_seq = r.seq;
    if (a.sync) ours.push_back(r.seq);
  }
  // --sync: the durable position is a prefix, so waiting for the last record waits for
  // all; then none of ours may lie in a range the persister recorded as lost.
  if (a.sync && n > 0) {
    if (int rc = wait_durable(p, last_seq, a); rc != kExitOk) return rc;
    for (uint64_t seq : ours)
      if (p.wait_durable(seq, std::chrono::nanoseconds(0)) == PubStatus::kNotPersisted)
        return fail("record " + std::to_string(seq) + " was not persisted: the persister recorded "
                    "it as lost (a --let-go stream whose persister was away while the ring moved on)");
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double rate = s > 0 ? static_cast<double>(n) / s : 0.0;
  std::fprintf(stderr, "published %llu records of %llu bytes in %.3f s (%.0f rec/s, %.1f MiB/s)\n",
               static_cast<unsigned long long>(n), static_cast<unsigned long long>(size), s, rate,
               rate * static_cast<double>(size) / (1 << 20));
  if (n < a.count) return fail("interrupted after " + std::to_string(n) + " records", kExitInterrupted);
  return kExitOk;
}

int pub_lines(Producer& p, const PubArgs& a, std::string_view ns,
              std::chrono::nanoseconds full_timeout) {
  char* line = nullptr;
  size_t cap = 0;
  uint64_t n = 0;
  int rc = kExitOk;
  for (;;) {
    errno = 0;
    ssize_t len = getline(&line, &cap, stdin);
    if (len < 0) {
      if (stop_requested()) {
        rc = fail("interrupted after " + std::to_string(n) + " records", kExitInterrupted);
      } else if (std::ferror(stdin)) {
        if (errno == EINTR) {  // another signal: go on reading
          std::clearerr(stdin);
          continue;
        }
        rc = fail(std::string("cannot read stdin: ") + std::strerror(errno));
      }
      break;  // end of input
    }
    std::string_view rec(line, static_cast<size_t>(len));
    if (!rec.empty() && rec.back() == '\n') rec.remove_suffix(1);
    PubResult r = p.publish(as_bytes(rec), a.type);
    if (!r.ok()) {
      rc = fail(publish_error(r.status, rec.size(), p, a, ns, full_timeout) + " (line " +
                std::to_string(n + 1) + ")");
      break;
    }
    if (a.sync && (rc = wait_durable(p, r.seq, a)) != kExitOk) break;
    ++n;
  }
  std::free(line);
  return rc;
}

// Reads up to `max` more bytes of stdin into *buf; 0 at end of input, -1 on an error or a
// stop signal (*rc set).
ssize_t read_stdin(std::string* buf, size_t max, uint64_t n, int* rc) {
  char chunk[65536];
  for (;;) {
    if (stop_requested()) {
      *rc = fail("interrupted after " + std::to_string(n) + " records", kExitInterrupted);
      return -1;
    }
    const ssize_t got = ::read(STDIN_FILENO, chunk, std::min(sizeof chunk, max));
    if (got >= 0) {
      buf->append(chunk, static_cast<size_t>(got));
      return got;
    }
    if (errno == EINTR) continue;  // a stop signal is checked above
    *rc = fail(std::string("cannot read stdin: ") + std::strerror(errno));
    return -1;
  }
}

// pub -D DELIM / -0: records end with `delim` (the last one may lack it).
int pub_delimited(Producer& p, const PubArgs& a, const std::string& delim, std::string_view ns,
                  std::chrono::nanoseconds full_timeout) {
  std::string buf;
  size_t start = 0, scanned = 0;  // buf[start..] is not published; no delim in [start, scanned)
  uint64_t n = 0;
  int rc = kExitOk;
  bool eof = false;
  while (rc == kExitOk) {
    const size_t at = buf.find(delim, scanned);
    std::string_view rec;
    if (at != std::string::npos) {
      rec = std::string_view(buf).substr(start, at - start);
    } else if (eof) {
      if (start == buf.size()) break;
      rec = std::string_view(buf).substr(start);
    } else {
      // Bounded: a record can be at most max_record bytes.
      if (buf.size() - start > p.max_record() + delim.size())
        return fail(publish_error(PubStatus::kTooLarge, buf.size() - start, p, a, ns, full_timeout) +
                    " (record " + std::to_string(n + 1) + ", before its delimiter)");
      buf.erase(0, start);
      start = 0;
      scanned = buf.size() >= delim.size() ? buf.size() - delim.size() + 1 : 0;
      const ssize_t got = read_stdin(&buf, 65536, n, &rc);
      if (got < 0) break;
      if (got == 0) eof = true;
      continue;
    }
    PubResult r = p.publish(as_bytes(rec), a.type);
    if (!r.ok())
      return fail(publish_error(r.status, rec.size(), p, a, ns, full_timeout) + " (record " +
                  std::to_string(n + 1) + ")");
    if (a.sync && (rc = wait_durable(p, r.seq, a)) != kExitOk) break;
    ++n;
    start = at == std::string::npos ? buf.size() : at + delim.size();
    scanned = start;
  }
  return rc;
}

// pub --file F...: one record per file; "-" is all of stdin.
int pub_files(Producer& p, const PubArgs& a, std::string_view ns,
              std::chrono::nanoseconds full_timeout) {
  uint64_t n = 0;
  for (const auto& f : a.files) {
    std::string data;
    int rc = kExitOk;
    if (f == "-") {
      for (;;) {
        const ssize_t got = read_stdin(&data, 65536, n, &rc);
        if (got < 0) return rc;
        if (got == 0) break;
        if (data.size() > p.max_record())
          return fail(publish_error(PubStatus::kTooLarge, data.size(), p, a, ns, full_timeout) +
                      " (standard input)");
      }
    } else {
      FILE* in = std::fopen(f.c_str(), "rb");
      if (!in) return fail("--file " + f + ": " + std::strerror(errno));
      char chunk[65536];
      size_t got;
      while ((got = std::fread(chunk, 1, sizeof chunk, in)) > 0) {
        data.append(chunk, got);
        if (data.size() > p.max_record()) {
          std::fclose(in);
          return fail(publish_error(PubStatus::kTooLarge, data.size(), p, a, ns, full_timeout) +
                      " (--file " + f + ")");
        }
      }
      const bool bad = std::ferror(in);
      std::fclose(in);
      if (bad) return fail("--file " + f + ": cannot read it");
    }
    PubResult r = p.publish(as_bytes(data), a.type);
    if (!r.ok()) return fail(publish_error(r.status, data.size(), p, a, ns, full_timeout));
    if (a.sync && (rc = wait_durable(p, r.seq, a)) != kExitOk) return rc;
    ++n;
  }
  return kExitOk;
}

// ---- tail ------------------------------------------------------------------

// Writes records to stdout in one of the formats; remembers the first write error.
class RecordPrinter {
 public:
  enum class Format { kText, kJson, kHex, kRaw };
  // Text records reach a terminal escaped (terminal_text): a payload must not be able to
  // drive it.  Into a pipe or file they go as they are, unless they contain the delimiter:
  // then escaped too, so that one record stays one line.  Raw records go as they are.
  RecordPrinter(Format f, std::string delimiter, std::string encoding)
      : format_(f), to_terminal_(::isatty(STDOUT_FILENO) == 1), delimiter_(std::move(delimiter)),
        encoding_(std::move(encoding)) {}

  bool print(const Record& rec) {
    const std::string_view data = as_chars(rec.data);
    switch (format_) {
      case Format::kText:
        if (to_terminal_ || data.find(delimiter_) != std::string_view::npos)
          line_ = terminal_text(data);
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

  // After a failed write: the exit code, with a message unless the reader went away.
  int write_error() const {
    if (errno_ == EPIPE) return kExitOk;  // like `head`: the reader has what it wanted
    if (errno_ == EINTR && stop_requested()) return kExitOk;  // stopped while blocked
    return fail(std::string("cannot write to stdout: ") + std::strerror(errno_));
  }

 private:
  bool failed() {
    errno_ = errno;
    // Drop what is still buffered: exit() must not print records that were not
    // committed (the next tail --group prints them).
    __fpurge(stdout);
    return false;
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
  if (!a.delimiter.empty()) {
    if (a.format != "text" && a.format != "raw") {
      fail("-D goes with --format text or raw", kExitUsage);
      return std::nullopt;
    }
    auto d = delimiter_flag("-D", a.delimiter);
    if (!d) return std::nullopt;
    delim = *d;
  }
  if (!a.encoding.empty() && a.format != "json") {
    fail("--encoding goes with --format json", kExitUsage);
    return std::nullopt;
  }
  return RecordPrinter(parse_format(a.format), delim, a.encoding);
}

}  // namespace

int cmd_pub(const PubArgs& a) {
  const std::string ns = resolve_namespace(a.ns);
  uint64_t size = 64;
  if (!a.size.empty()) {
    if (a.count == 0) return fail("--size needs --count N (it sets the synthetic records' size)", kExitUsage);
    auto s = size_flag("--size", a.size);
    if (!s) return kExitUsage;
    size = *s;
  }
  auto full_timeout = duration_flag("--full-timeout", a.full_timeout);
  if (!full_timeout) return kExitUsage;
  // Where records come from: --count (synthetic), --file, -D / -0, else lines of stdin.
  const int sources = (a.count > 0) + !a.files.empty() + (!a.delimiter.empty() || a.nul);
  if (sources > 1) return fail("choose one of --count, --file and -D / -0", kExitUsage);
  if (!a.delimiter.empty() && a.nul) return fail("choose one of -D and -0", kExitUsage);
  std::optional<std::string> delim;
  if (a.nul) delim = std::string(1, '\0');
  if (!a.delimiter.empty() && !(delim = delimiter_flag("-D", a.delimiter))) return kExitUsage;
  ProducerOptions po;
  po.when_full = FullPolicy::kWait;
  po.full_timeout = *full_timeout;
  install_stop_handlers();
  auto p = Producer::open(ns, a.stream, po);
  if (!p) return fail_stream(p.error(), ns, a.stream);
  if (a.count > 0) return pub_synthetic(p.value(), a, size, ns, *full_timeout);
  if (!a.files.empty()) return pub_files(p.value(), a, ns, *full_timeout);
  if (delim) return pub_delimited(p.value(), a, *delim, ns, *full_timeout);
  return pub_lines(p.value(), a, ns, *full_timeout);
}

// tail of a persisted stream without --group: from the store, then live; lapped readers
// fall back to the store instead of losing records.
int tail_replay(const TailArgs& a, const std::string& ns, const StartFrom& start,
                RecordPrinter& out) {
  persist::ReplayOptions o;
  o.start = start;
  o.data_dir = a.data_dir;
  auto c = persist::ReplayConsumer::open(ns, a.stream, o);
  if (!c && c.error().code == Errc::kPermission) {
    o.read_only = true;
    c = persist::ReplayConsumer::open(ns, a.stream, o);
  }
  if (!c) return fail(c.error());
  uint64_t printed = 0;
  // Follow the name, as tail -F: a ring removed (rm --force) is said, and waited for; the
  // stream created again is followed (its store, if kept, continues the sequence).
  auto name_check = std::chrono::steady_clock::now();
  bool removed = false;
  auto reopen = [&]() -> int {
    if (!removed) warn("stream '" + a.stream + "' was removed; waiting for it to be created again");
    removed = true;
    persist::ReplayOptions from_here = o;
    from_here.start = StartFrom::seq(c->next_seq());
    while (!stop_requested()) {
      auto n = persist::ReplayConsumer::open(ns, a.stream, from_here);
      if (n && n->name_state() == NameState::kSame) {  // a ring again
        c.value() = std::move(n.value());
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
  while (!stop_requested() && (a.count == 0 || printed < a.count)) {
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
        warn("records " + std::to_string(g.from) + ".." + std::to_string(g.to - 1) + ": " + g.reason);
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

int cmd_tail(const TailArgs& a) {
  const std::string ns = resolve_namespace(a.ns);
  auto printer = make_printer(a);
  if (!printer) return kExitUsage;
  if (a.group.empty()) {
    // A persisted stream, or one whose ring is gone but whose store is in the data dir.
    if (persist::reads_through_store(ns, a.stream, a.data_dir)) {
      StartFrom start = StartFrom::earliest();
      if (!a.from.empty() && !from_flag(a.from, &start)) return kExitUsage;
      install_stop_handlers();
      return tail_replay(a, ns, start, *printer);
    }
  }
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
  auto c = open(o);
  if (!c && c.error().code == Errc::kPermission && !a.group.empty())
    return fail(c.error().message +
                "; --group needs write access to the stream (tail without --group can read it)");
  if (!c && c.error().code == Errc::kBusy && !a.group.empty())
    return fail(c.error().message + " (one reader per group at a time; another tail --group " +
                a.group + " is running)");
  if (!c) return fail_stream(c.error(), ns, a.stream);
  std::optional<persist::GroupConsumer> gc(std::move(c.value()));
  const bool durable = gc->ring().durable();

  RecordPrinter& out = *printer;
  uint64_t printed = 0;
  LapNotes laps;
  int rc = kExitOk;
  bool write_failed = false;
  auto name_check = std::chrono::steady_clock::now();
  while (!stop_requested() && (a.count == 0 || printed < a.count)) {
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
        if (gc->ring().name_state() == NameState::kSame) continue;
        warn("stream '" + a.stream + "' was removed; waiting for it to be created again");
        laps = LapNotes();
        gc.reset();  // detach from the old one
        // The new stream is read from its start (a group is new there).
        ConsumerOptions fresh = o;
        fresh.start = StartFrom::earliest();
        fresh.reset = false;
        fresh.read_only = false;
        while (!stop_requested()) {
          auto n = open(fresh);
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
