// fuzz_cli_parsers: every text parser of the `shmbus` command on arbitrary text.
//
// parse_size (--capacity, --max-record, --size, --retention-bytes, --segment-size),
// parse_duration (--abandon-timeout, --full-timeout, --interval, --retention-age, ...),
// parse_start (tail --from), validate_name (stream, namespace, --group),
// tools::mode_flag (create --mode, in tools/args.cc) and the segment/index file names
// (persist's parse_numbered_name).  Beyond "no crash": what each accepts must round-trip
// through its canonical spelling, and what validate_name accepts must be a legal name.
// mode_flag prints a line on stderr for every refusal: run with -close_fd_mask=2.
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "args.h"
#include "format.h"
#include "shmbus/shmbus.h"

namespace {

[[noreturn]] void broken(const char* parser, std::string_view input, const char* why) {
  std::fprintf(stderr, "fuzz_cli_parsers: %s('%.*s'): %s\n", parser, static_cast<int>(input.size()),
               input.data(), why);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shmbus;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  if (auto r = parse_size(text)) {
    auto again = parse_size(std::to_string(r.value()));
    if (!again || again.value() != r.value()) broken("parse_size", text, "value does not round-trip");
  }

  if (auto r = parse_duration(text)) {
    const auto ns = r.value().count();
    if (ns < 0) broken("parse_duration", text, "negative duration");
    auto again = parse_duration(std::to_string(ns) + "ns");
    if (!again || again.value() != r.value())
      broken("parse_duration", text, "value does not round-trip");
  }

  if (auto r = parse_start(text)) {
    const StartFrom s = r.value();
    std::string canon;
    switch (s.kind) {
      case StartFrom::Kind::kEarliest: canon = "earliest"; break;
      case StartFrom::Kind::kLatest: canon = "latest"; break;
      case StartFrom::Kind::kSeq: canon = std::to_string(s.value); break;
      case StartFrom::Kind::kTime: canon = "@" + std::to_string(s.value) + "ns"; break;
      case StartFrom::Kind::kCommitted: broken("parse_start", text, "returned kCommitted");
    }
    auto again = parse_start(canon);
    if (!again || again->kind != s.kind || again->value != s.value)
      broken("parse_start", text, "value does not round-trip");
  }

  if (validate_name("stream", text)) {
    if (text.empty() || text.size() > 100 || text == "." || text == "..")
      broken("validate_name", text, "accepted an empty, long, '.' or '..' name");
    for (char c : text)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
        broken("validate_name", text, "accepted a character outside [A-Za-z0-9._-]");
  }

  if (auto m = tools::mode_flag("--mode", text); m && *m > 0777)
    broken("mode_flag", text, "accepted bits above 0777");

  uint64_t first = 0;
  if (persist::detail::parse_numbered_name(text, ".seg", &first) &&
      persist::detail::segment_file_name(first) != text)
    broken("parse_numbered_name", text, "name does not round-trip");
  return 0;
}
