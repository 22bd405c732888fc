// cmd_pub.cc: pub: records in from stdin (lines, -D / -0 delimited, --file, or
// synthetic --count records) into a stream.
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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
#include "shmbus/persister.h"
#include "shmbus/shmbus.h"
#include "signals.h"

namespace shmbus::tools {
namespace {

using namespace std::chrono_literals;

Bytes as_bytes(std::string_view s) {
  return Bytes(reinterpret_cast<const std::byte*>(s.data()), s.size());
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

// A stop before the input ended: exit 130, saying how many records went out (`note`:
// with --sync, how many of them were confirmed durable).
int interrupted_after(uint64_t n, const std::string& note = {}) {
  return fail("interrupted after " + std::to_string(n) + " records" + note, kExitInterrupted);
}

// --sync: is a persister attached to the stream (one that starts within the grace, or
// within `timeout` if shorter, counts)?  Without one a wait could only time out.  A stop
// signal ends the wait for one (false then too: the caller checks stop_requested()).
bool persister_attached(std::string_view stream, std::string_view ns, std::chrono::nanoseconds timeout) {
  return persist::persister_registered(ns, stream,
                                       std::min<std::chrono::nanoseconds>(timeout, persist::kPersisterRegisterGrace),
                                       [] { return stop_requested(); });
}

// --sync: the records published since the last wait, waited for together.  Waiting for
// each record in turn cost a persister round trip per record (`seq 1000 | shmbus pub S
// --sync`: 10.5 s, one flush of ~10 ms a line); a Kafka producer with acks=all pipelines
// the same way and flushes at the end.  wait() waits for the last one (the durable
// position is a prefix), then checks that none of them lies in a range the persister
// recorded as lost.  Callers wait before they block for more input, at the end, before
// they report a failure to publish (what came before it is then durable, as when each
// record was waited for), and every kMaxPending records (which bounds the memory:
// --count 10^9 kept them all).  A stop signal ends a wait (exit 130), and the message
// says how many records were confirmed durable.
class SyncWait {
 public:
  static constexpr size_t kMaxPending = 65536;
  SyncWait(Producer& p, const PubArgs& a, std::string_view ns, std::chrono::nanoseconds timeout)
      : p_(p), a_(a), ns_(ns), timeout_(timeout) {}
  // A record published: kExitOk, or wait()'s code when kMaxPending were due.
  int add(uint64_t seq) {
    if (!a_.sync) return kExitOk;
    ++published_;
    pending_.push_back(seq);
    return pending_.size() >= kMaxPending ? wait() : kExitOk;
  }
  int wait() {
    if (pending_.empty()) return kExitOk;
    const uint64_t seq = pending_.back();
    // A persister that went away since the start: said at once, as at the start.
    if (!persister_attached(a_.stream, ns_, timeout_)) {
      if (stop_requested()) return interrupted();
      return fail("record " + std::to_string(seq) + " was published, but no persister is attached to "
                  "stream '" + a_.stream + "', so --sync cannot wait for it to be durable (start one: " +
                  persist_command(ns_, a_.stream) + ")" + confirmed());
    }
    // In slices, so that Ctrl-C or SIGTERM ends the wait within 100 ms.
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    PubStatus st;
    for (;;) {
      if (stop_requested()) return interrupted();
      const auto left = deadline - std::chrono::steady_clock::now();
      st = p_.wait_durable(seq, std::max<std::chrono::nanoseconds>(
                                    std::chrono::nanoseconds(0), std::min<std::chrono::nanoseconds>(left, 100ms)));
      if (st != PubStatus::kTimeout || left <= 100ms) break;
    }
    if (st == PubStatus::kNotPersisted)
      return fail("record " + std::to_string(seq) + " was not persisted: the persister recorded it as "
                  "lost (a --let-go stream whose persister was away while the ring moved on)" + confirmed());
    if (st != PubStatus::kOk)
      return fail("record " + std::to_string(seq) + " was published but is not durable after " +
                  a_.sync_timeout + ": is `" + persist_command(ns_, a_.stream) + "` running?" + confirmed());
    for (uint64_t q : pending_)
      if (p_.wait_durable(q, std::chrono::nanoseconds(0)) == PubStatus::kNotPersisted)
        return fail("record " + std::to_string(q) + " was not persisted: the persister recorded "
                    "it as lost (a --let-go stream whose persister was away while the ring moved on)" +
                    confirmed());
    durable_ += pending_.size();
    pending_.clear();
    return kExitOk;
  }
  // For a message: how many of the records published were confirmed durable ("" without
  // --sync, or when all were).
  std::string confirmed() const {
    if (!a_.sync || durable_ == published_) return {};
    return " (--sync: " + std::to_string(durable_) + " of the " + std::to_string(published_) +
           " records published were confirmed durable)";
  }

 private:
  int interrupted() { return interrupted_after(published_, ", waiting for them to be durable" + confirmed()); }
  Producer& p_;
  const PubArgs& a_;
  std::string_view ns_;
  std::chrono::nanoseconds timeout_;
  std::vector<uint64_t> pending_;
  uint64_t published_ = 0, durable_ = 0;
};

// The stream's name, checked against the ring pub publishes into (Producer::name_state()):
// a producer keeps the ring it opened, so after `shmbus rm --force` pub went on
// publishing into the removed ring, where no reader sees a record, and exited 0 (a
// review; also after the name was created again).  Asked whenever the input pauses,
// every kEvery records and at the end (two system calls each): the records published
// since the last look that found the name still ours are the ones that may be lost.
class NameWatch {
 public:
  static constexpr uint64_t kEvery = 4096;
  NameWatch(const Producer& p, const std::string& stream) : p_(p), stream_(stream) {}
  // kExitOk, or a failure (1) once the name no longer refers to our ring; `n`: the
  // records published so far.
  int check(uint64_t n) {
    const NameState s = p_.name_state();
    if (s == NameState::kSame) {
      ours_ = n;
      return kExitOk;
    }
    const std::string what = "stream '" + stream_ + "' was removed" +
                             (s == NameState::kReplaced ? " and created again" : "") + " while pub ran";
    if (n == ours_)
      return fail(what + ": " +
                  (n == 0   ? std::string("nothing was published")
                   : n == 1 ? std::string("the 1 record before was published into it, nothing after")
                            : "the " + std::to_string(n) + " records before were published into it, nothing after"));
    const uint64_t maybe = n - ours_;
    return fail(what + ": of the " + std::to_string(n) + " records published, the last " +
                (maybe == 1 ? std::string("one") : std::to_string(maybe)) +
                " may have gone into the removed stream, which no new reader opens (a persister "
                "still attached to it may store them)");
  }
  int every(uint64_t n) { return n % kEvery == 0 ? check(n) : kExitOk; }

 private:
  const Producer& p_;
  const std::string& stream_;
  uint64_t ours_ = 0;  // records published before the last look that found the name ours
};

// A record not published (`why` says why): with --sync the records before it are waited
// for first, so that they are durable when the command stops (as when each was waited
// for) and one line says what went wrong.  A stop while the publish waited for room
// (it then returns kFull: shmbus::set_stop_check()) is an interruption, not a full
// stream, and a stream removed meanwhile is said instead (a publish held by a full ring
// whose name went: "stayed full" blamed a consumer group, review of the name checks).
int not_published(PubStatus st, const std::string& why, uint64_t n, SyncWait& sync, NameWatch& name) {
  if (st == PubStatus::kFull && stop_requested())
    return interrupted_after(n, sync.confirmed());
  if (int rc = name.check(n); rc != kExitOk) return rc;
  if (int rc = sync.wait(); rc != kExitOk) return rc;
  return fail(why);
}

// True when a read of stdin would wait (nothing to read yet: an interactive writer, or a
// pipe whose writer is slower than us).  A file, or the end of input, reads at once.
bool stdin_would_block() {
  pollfd pfd{STDIN_FILENO, POLLIN, 0};
  for (;;) {
    const int n = ::poll(&pfd, 1, 0);
    if (n >= 0) return n == 0;
    if (errno != EINTR) return false;  // (the read that follows reports it)
  }
}

int pub_synthetic(Producer& p, const PubArgs& a, uint64_t size, std::string_view ns,
                  std::chrono::nanoseconds full_timeout, SyncWait& sync, NameWatch& name) {
  if (size > p.max_record())  // the flag's value: bad usage, as any other (it exited 1)
    return fail("--size: " + publish_error(PubStatus::kTooLarge, size, p, a, ns, full_timeout) +
                    " (nothing published)",
                kExitUsage);
  std::string buf(size, '\0');
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t n = 0;
  for (; n < a.count && !stop_requested(); ++n) {
    if (a.rate > 0 && n % 16 == 0) {  // pace: record n is due at t0 + n / rate
      const auto due = t0 + std::chrono::nanoseconds(static_cast<int64_t>(n * 1e9 / static_cast<double>(a.rate)));
      if (due > std::chrono::steady_clock::now()) {
        if (int rc = name.check(n); rc != kExitOk) return rc;  // a pause (a slow --rate)
        std::this_thread::sleep_until(due);
      }
    }
    fill_synthetic(&buf, n);
    PubResult r = p.publish(as_bytes(buf), a.type);
    // (How many went in before it: a first-hour review; lines and files name theirs.)
    if (!r.ok())
      return not_published(r.status,
                           publish_error(r.status, size, p, a, ns, full_timeout) + " (record " +
                               std::to_string(n + 1) + " of " + std::to_string(a.count) + ": " +
                               std::to_string(n) + " published before it)",
                           n, sync, name);
    if (int rc = sync.add(r.seq); rc != kExitOk) return rc;
    if (int rc = name.every(n + 1); rc != kExitOk) return rc;
  }
  if (int rc = name.check(n); rc != kExitOk) return rc;
  // (Stopped: no wait; the message says how many were confirmed durable.)
  if (n == a.count)
    if (int rc = sync.wait(); rc != kExitOk) return rc;
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double rate = s > 0 ? static_cast<double>(n) / s : 0.0;
  std::fprintf(stderr, "published %llu records of %llu bytes in %.3f s (%.0f rec/s, %.1f MiB/s)\n",
               static_cast<unsigned long long>(n), static_cast<unsigned long long>(size), s, rate,
               rate * static_cast<double>(size) / (1 << 20));
  if (n < a.count) return interrupted_after(n, sync.confirmed());
  return kExitOk;
}

// Reads up to `max` more bytes of stdin into *buf; 0 at end of input, -1 on an error or a
// stop signal (*rc set; `note` ends the message).
ssize_t read_stdin(std::string* buf, size_t max, uint64_t n, int* rc, const std::string& note = {}) {
  char chunk[65536];
  for (;;) {
    if (stop_requested()) {
      *rc = interrupted_after(n, note);
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

// pub (lines: `delim` "\n", `unit` "line"), -D DELIM and -0 (`unit` "record"): records end
// with `delim` (the last one may lack it).  Read in chunks, so a line is never longer in
// memory than a record may be (getline() held any line whole).  --sync waits whenever a
// read would wait, and at the end.
int pub_delimited(Producer& p, const PubArgs& a, const std::string& delim, const char* unit,
                  std::string_view ns, std::chrono::nanoseconds full_timeout, SyncWait& sync,
                  NameWatch& name) {
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
        return not_published(PubStatus::kTooLarge,
                             "record of at least " + std::to_string(buf.size() - start) +
                                 " bytes is larger than the stream's maximum " + std::to_string(p.max_record()) +
                                 " (" + unit + " " + std::to_string(n + 1) + ", before its " +
                                 (delim == "\n" ? "newline" : "delimiter") + ")",
                             n, sync, name);
      buf.erase(0, start);
      start = 0;
      scanned = buf.size() >= delim.size() ? buf.size() - delim.size() + 1 : 0;
      // Before waiting for more input: is the name still ours?  And with --sync, what was
      // published is made durable (an interactive writer sees each line durable before it
      // types the next).  After the pause the name is looked at again, before what came
      // is published (a removal while pub waited loses nothing).
      const bool pause = stdin_would_block();
      if (pause && ((rc = name.check(n)) != kExitOk || (a.sync && (rc = sync.wait()) != kExitOk))) break;
      const ssize_t got = read_stdin(&buf, 65536, n, &rc, sync.confirmed());
      if (got < 0) break;
      if (pause && got > 0 && (rc = name.check(n)) != kExitOk) break;
      if (got == 0) eof = true;
      continue;
    }
    PubResult r = p.publish(as_bytes(rec), a.type);
    if (!r.ok())
      return not_published(r.status,
                           publish_error(r.status, rec.size(), p, a, ns, full_timeout) + " (" + unit + " " +
                               std::to_string(n + 1) + ")",
                           n, sync, name);
    if ((rc = sync.add(r.seq)) != kExitOk) break;
    ++n;
    if ((rc = name.every(n)) != kExitOk) break;
    start = at == std::string::npos ? buf.size() : at + delim.size();
    scanned = start;
  }
  if (rc == kExitOk) rc = name.check(n);
  if (rc == kExitOk) rc = sync.wait();
  return rc;
}

// pub --file F...: one record per file; "-" is all of stdin.  Every file is read (each at
// most a record's size) before the first record is published: one that cannot be opened
// or read, or is larger than a record, fails the command with nothing published (a
// walkthrough: `--file A --file /missing` published A, then failed; a review: a
// directory, a FIFO, /proc files, stdin).  Each file is opened once, so a FIFO's writer
// is read, not dropped.
int pub_files(Producer& p, const PubArgs& a, std::string_view ns,
              std::chrono::nanoseconds full_timeout, SyncWait& sync, NameWatch& name) {
  std::vector<std::string> records;
  records.reserve(a.files.size());
  for (const auto& f : a.files) {
    std::string data;
    int rc = kExitOk;
    if (f == "-") {
      for (;;) {
        const ssize_t got = read_stdin(&data, 65536, 0, &rc);
        if (got < 0) return rc;
        if (got == 0) break;
        if (data.size() > p.max_record())  // (read so far: the input may go on)
          return fail("record of at least " + std::to_string(data.size()) +
                      " bytes is larger than the stream's maximum " + std::to_string(p.max_record()) +
                      " (standard input; nothing published)");
      }
    } else {
      FILE* in = std::fopen(f.c_str(), "rb");
      if (!in) return fail("--file " + f + ": " + std::strerror(errno) + " (nothing published)");
      char chunk[65536];
      size_t got;
      while ((got = std::fread(chunk, 1, sizeof chunk, in)) > 0) {
        data.append(chunk, got);
        if (data.size() > p.max_record()) {
          // The file's size when it is a regular one; else (a FIFO, /proc) what was read
          // so far (the number used to be that for every file: a 1 MB file was "65536").
          struct stat st {};
          const bool sized = ::fstat(::fileno(in), &st) == 0 && S_ISREG(st.st_mode) &&
                             static_cast<uint64_t>(st.st_size) >= data.size();
          std::fclose(in);
          return fail("record of " + std::string(sized ? "" : "at least ") +
                      std::to_string(sized ? static_cast<uint64_t>(st.st_size) : data.size()) +
                      " bytes is larger than the stream's maximum " + std::to_string(p.max_record()) +
                      " (--file " + f + "; nothing published)");
        }
      }
      const int err = std::ferror(in) ? errno : 0;
      std::fclose(in);
      if (err)
        return fail("--file " + f + ": cannot read it: " + std::strerror(err) + " (nothing published)");
    }
    if (stop_requested()) return fail("interrupted before publishing", kExitInterrupted);
    records.push_back(std::move(data));
  }
  // Read to the end first (a FIFO or stdin may have made it wait): the name, looked at
  // before anything is published (review of the name checks).
  if (int rc = name.check(0); rc != kExitOk) return rc;
  uint64_t n = 0;
  for (const auto& data : records) {
    PubResult r = p.publish(as_bytes(data), a.type);
    if (!r.ok())
      return not_published(r.status,
                           publish_error(r.status, data.size(), p, a, ns, full_timeout) +
                               (n ? " (" + std::to_string(n) + " of the files published)" : std::string()),
                           n, sync, name);
    if (int rc = sync.add(r.seq); rc != kExitOk) return rc;
    ++n;
  }
  if (int rc = name.check(n); rc != kExitOk) return rc;
  return sync.wait();
}

}  // namespace

int cmd_pub(const PubArgs& a) {
  const auto ns_or = command_namespace(a.ns);
  if (!ns_or) return kExitUsage;
  const std::string ns = *ns_or;
  // (Ignored without it, as --size was refused: a review.)
  if (a.rate > 0 && a.count == 0)
    return fail("--rate needs --count N (it paces the synthetic records)", kExitUsage);
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
  // (An unset variable in -D "$SEP" published lines, or all of the input as one record.)
  if (a.delimiter_given && a.delimiter.empty())
    return fail("-D: the delimiter is empty (--file - publishes all of stdin as one record)", kExitUsage);
  if (std::count(a.files.begin(), a.files.end(), "-") > 1)
    return fail("--file -: standard input can be given once (it is read to its end)", kExitUsage);
  std::optional<std::string> delim;
  if (a.nul) delim = std::string(1, '\0');
  if (!a.delimiter.empty() && !(delim = delimiter_flag("-D", a.delimiter))) return kExitUsage;
  // Checked before anything is published (a bad value used to fail only at the first
  // wait, after the records before it).
  auto sync_timeout = duration_flag("--sync-timeout", a.sync_timeout);
  if (!sync_timeout) return kExitUsage;
  if (a.sync && sync_timeout->count() <= 0)
    return fail("--sync-timeout must be more than 0 (a wait of 0 could never see a record durable)", kExitUsage);
  ProducerOptions po;
  po.when_full = FullPolicy::kWait;
  po.full_timeout = *full_timeout;
  install_stop_handlers();
  auto p = Producer::open(ns, a.stream, po);
  if (!p) return fail_stream(p.error(), ns, a.stream);
  // --sync without a persister could only time out: said before anything is published
  // (one that starts within a second is waited for).
  if (a.sync && !persister_attached(a.stream, ns, *sync_timeout)) {
    if (stop_requested()) return fail("interrupted before publishing", kExitInterrupted);
    return fail("no persister is attached to stream '" + a.stream + "', so --sync cannot wait for "
                "records to be durable (start one: " + persist_command(ns, a.stream) + "); nothing published");
  }
  SyncWait sync(p.value(), a, ns, *sync_timeout);
  NameWatch name(p.value(), a.stream);
  if (a.count > 0) return pub_synthetic(p.value(), a, size, ns, *full_timeout, sync, name);
  if (!a.files.empty()) return pub_files(p.value(), a, ns, *full_timeout, sync, name);
  if (delim) return pub_delimited(p.value(), a, *delim, "record", ns, *full_timeout, sync, name);
  return pub_delimited(p.value(), a, "\n", "line", ns, *full_timeout, sync, name);
}

}  // namespace shmbus::tools
