// test_format.cc: the JSON writer and the byte formats of tools/ (no processes).
#include <gtest/gtest.h>

#include <chrono>
#include <limits>
#include <vector>
#include <string>

#include "format.h"
#include "shmbus/json.h"
#include "shmbus/shmbus.h"

namespace shmbus::tools {
namespace {
using shmbus::JsonWriter;
using shmbus::json_escape;
using shmbus::is_valid_utf8;

std::string escaped(std::string_view s) {
  std::string out;
  json_escape(s, &out);
  return out;
}

TEST(JsonEscape, QuotesBackslashAndControls) {
  EXPECT_EQ(escaped("plain"), "plain");
  EXPECT_EQ(escaped("a\"b"), "a\\\"b");
  EXPECT_EQ(escaped("a\\b"), "a\\\\b");
  EXPECT_EQ(escaped("\n\r\t\b\f"), "\\n\\r\\t\\b\\f");
  EXPECT_EQ(escaped(std::string("\x01\x1f\x7f", 3)), "\\u0001\\u001f\\u007f");
  EXPECT_EQ(escaped(std::string("a\0b", 3)), "a\\u0000b");
  EXPECT_EQ(escaped("/"), "/");
}

TEST(JsonEscape, Utf8PassesThroughAndBadBytesBecomeReplacement) {
  EXPECT_EQ(escaped("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"), "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
  EXPECT_EQ(escaped("\xff"), "\\ufffd");
  EXPECT_EQ(escaped("a\xc3"), "a\\ufffd");            // truncated sequence
  EXPECT_EQ(escaped("\xed\xa0\x80"), "\\ufffd\\ufffd\\ufffd");  // a surrogate: 3 bad bytes
  EXPECT_EQ(escaped("\xc0\xaf"), "\\ufffd\\ufffd");   // overlong '/'
}

TEST(JsonWriter, NestingAndCommas) {
  JsonWriter w;
  w.begin_object()
      .field("s", "x\"y")
      .field("n", uint64_t{18446744073709551615ULL})
      .field("i", int64_t{-3})
      .field("b", true)
      .field("d", 1.5);
  w.key("z").null();
  w.key("a").begin_array().value(1).value("two").begin_object().end_object().begin_array().end_array();
  w.end_array();
  w.key("inf").value(std::numeric_limits<double>::infinity());
  w.end_object();
  EXPECT_EQ(w.str(),
            R"({"s":"x\"y","n":18446744073709551615,"i":-3,"b":true,"d":1.500,"z":null,)"
            R"("a":[1,"two",{},[]],"inf":null})");
}

TEST(JsonWriter, KeysAreEscapedToo) {
  JsonWriter w;
  w.begin_object().field("k\n\"", "v").end_object();
  EXPECT_EQ(w.str(), R"({"k\n\"":"v"})");
}

TEST(JsonWriter, ReleaseStartsOver) {
  JsonWriter w;
  w.begin_array().value(1).end_array();
  EXPECT_EQ(w.release(), "[1]");
  w.begin_array().value(2).end_array();
  EXPECT_EQ(w.str(), "[2]");
}

TEST(Utf8, Validation) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("ascii"));
  EXPECT_TRUE(is_valid_utf8(std::string("nul\0inside", 10)));
  EXPECT_TRUE(is_valid_utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf"));  // U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xff\xfe"));
  EXPECT_FALSE(is_valid_utf8("\x80"));             // stray continuation
  EXPECT_FALSE(is_valid_utf8("\xc1\xbf"));         // overlong
  EXPECT_FALSE(is_valid_utf8("\xe0\x80\xaf"));     // overlong
  EXPECT_FALSE(is_valid_utf8("\xed\xb0\x80"));     // surrogate
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xe2\x82"));         // truncated
}

TEST(Base64, Rfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode("\xff\xfe"), "//4=");
  EXPECT_EQ(base64_encode(std::string("\0\0\0", 3)), "AAAA");
}

TEST(Hex, LowerCase) {
  EXPECT_EQ(hex_encode(""), "");
  EXPECT_EQ(hex_encode(std::string("\x00\x0f\xa5\xff", 4)), "000fa5ff");
}

TEST(FormatSize, InverseOfParseSize) {
  EXPECT_EQ(format_size(0), "0");
  EXPECT_EQ(format_size(1000), "1000");
  EXPECT_EQ(format_size(4096), "4K");
  EXPECT_EQ(format_size(65536), "64K");
  EXPECT_EQ(format_size(16ULL << 20), "16M");
  EXPECT_EQ(format_size(1ULL << 30), "1G");
  EXPECT_EQ(format_size((1ULL << 20) + 1024), "1025K");
}

TEST(FormatTime, Utc) {
  EXPECT_EQ(format_time_ns(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_time_ns(1795615169773509437ULL), "2026-11-25T13:59:29.773Z");
}

}  // namespace
}  // namespace shmbus::tools

namespace shmbus::tools {
namespace {

TEST(TerminalText, EscapesEverythingATerminalWouldObey) {
  EXPECT_EQ(terminal_text("plain name_1.2-3"), "plain name_1.2-3");
  EXPECT_EQ(terminal_text("caf\xc3\xa9 \xe2\x82\xac"), "caf\xc3\xa9 \xe2\x82\xac");  // UTF-8 passes
  EXPECT_EQ(terminal_text("\x1b[2J"), "\\x1b[2J");                               // CSI
  EXPECT_EQ(terminal_text("\x1b]0;owned\x07"), "\\x1b]0;owned\\x07");           // window title
  EXPECT_EQ(terminal_text(std::string("a\nb\rc\0d", 7)), "a\\x0ab\\x0dc\\x00d");
  EXPECT_EQ(terminal_text("\x7f"), "\\x7f");
  EXPECT_EQ(terminal_text("\xc2\x9b" "2J"), "\\xc2\\x9b2J");  // C1 CSI in UTF-8 form
  EXPECT_EQ(terminal_text("\x9b" "2J"), "\\x9b2J");           // a lone C1 byte
  EXPECT_EQ(terminal_text("\xff\xfe"), "\\xff\\xfe");         // not UTF-8
  EXPECT_EQ(terminal_text("back\\slash"), "back\\\\slash");   // escapes stay unambiguous
  EXPECT_EQ(terminal_text("\xc2\xa0"), "\xc2\xa0");           // U+00A0 is printable
}

TEST(ClosestMatch, FindsTyposAndPrefixesOnly) {
  const std::vector<std::string> flags = {"--follow", "--format", "--from", "--count"};
  EXPECT_EQ(closest_match("--folow", flags), "--follow");
  EXPECT_EQ(closest_match("--fromat", flags), "--format");  // a swap is one edit
  EXPECT_EQ(closest_match("--cou", flags), "--count");      // a prefix
  EXPECT_EQ(closest_match("--zzzzzz", flags), "");
  EXPECT_EQ(closest_match("tial", {"tail", "ls", "rm"}), "tail");
  EXPECT_EQ(closest_match("", flags), "");
}

TEST(Parsers, SizesSayTheirBase) {
  EXPECT_EQ(parse_size("10MB").value(), 10000000u);
  EXPECT_EQ(parse_size("10mb").value(), 10000000u);
  EXPECT_EQ(parse_size("1KB").value(), 1000u);
  EXPECT_EQ(parse_size("1GB").value(), 1000000000u);
  EXPECT_EQ(parse_size("10M").value(), 10u << 20);
  EXPECT_EQ(parse_size("10MiB").value(), 10u << 20);
  EXPECT_EQ(parse_size("64k").value(), 65536u);
  EXPECT_EQ(parse_size("4096B").value(), 4096u);
  for (const char* bad : {"B", "KB", "iB", "1.5MB", "10XB", "MiB"}) EXPECT_FALSE(parse_size(bad)) << bad;
}

TEST(Parsers, DecimalDurations) {
  using namespace std::chrono;
  EXPECT_EQ(parse_duration("1.5").value(), milliseconds(1500));
  EXPECT_EQ(parse_duration("0.2s").value(), milliseconds(200));
  EXPECT_EQ(parse_duration("1.5m").value(), seconds(90));
  EXPECT_EQ(parse_duration("0.5ms").value(), microseconds(500));
  EXPECT_EQ(parse_duration("1.0000000001").value(), seconds(1));  // below 1 ns dropped
  for (const char* bad : {"1.", ".5", "1..5", "1.5.2", "-1.5", "1e3", "0x10"})
    EXPECT_FALSE(parse_duration(bad)) << bad;
}

TEST(Parsers, StartTimes) {
  std::string note;
  EXPECT_EQ(parse_start("@1796015187", &note).value().value, 1796015187000000000u);
  EXPECT_NE(note.find("seconds"), std::string::npos) << note;
  EXPECT_EQ(parse_start("@1796015187000", &note).value().value, 1796015187000000000u);
  EXPECT_NE(note.find("milliseconds"), std::string::npos) << note;
  EXPECT_EQ(parse_start("@1796015187000000", &note).value().value, 1796015187000000000u);
  EXPECT_NE(note.find("microseconds"), std::string::npos) << note;
  EXPECT_EQ(parse_start("@1796015187000000000", &note).value().value, 1796015187000000000u);
  EXPECT_NE(note.find("nanoseconds"), std::string::npos) << note;
  EXPECT_EQ(parse_start("@1796015187s", &note).value().value, 1796015187000000000u);
  EXPECT_EQ(note, "");
  EXPECT_EQ(parse_start("@1.5s").value().value, 1500000000u);
  EXPECT_EQ(parse_start("@2026-11-25T13:00:00Z").value().value, 1795611600000000000u);
  EXPECT_EQ(parse_start("@2026-11-25T14:00:00+01:00").value().value, 1795611600000000000u);
  EXPECT_EQ(parse_start("@2026-11-25T08:00:00-0500").value().value, 1795611600000000000u);
  EXPECT_EQ(parse_start("@2026-11-25T14:00+01").value().value, 1795611600000000000u);
  EXPECT_EQ(parse_start("@2026-11-25T13:00:00.25").value().value, 1795611600250000000u);
  EXPECT_EQ(parse_start("@2026-11-25").value().value, 1795564800000000000u);
  const uint64_t now = now_ns();
  const uint64_t ago = parse_start("@-10s").value().value;
  EXPECT_LE(ago, now - 10000000000u + 60000000000u);  // generous: the clock moves on
  EXPECT_GE(ago + 10000000000u, now);
  EXPECT_EQ(parse_start("@now-10s").value().kind, StartFrom::Kind::kTime);
  EXPECT_GE(parse_start("@now").value().value, now);
  for (const char* bad : {"@", "@-", "@now-", "@2026-11-25T", "@2026-11-25T13", "@2026-13-01",
                          "@2026-11-25T13:00:00+24:00", "@2026-11-25T13:00:00+01:0",
                          "@2026-11-25T13:00:00.1234567891", "@1ks", "@yesterday", "@18446744073709551616"})
    EXPECT_FALSE(parse_start(bad)) << bad;
}

}  // namespace
}  // namespace shmbus::tools
