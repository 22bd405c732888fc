// Producer::publish's convenience forms (std::string_view, pointer and size) write the
// same record as the Bytes form, and overload resolution picks the form a reader expects.
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <string_view>
#include <type_traits>

#include "../common/scratch.h"
#include "ring_util.h"

namespace shmbus {
namespace {

using namespace std::chrono_literals;
using test::as_string;
using test::small;
using test::tailing;

TEST(PublishForms, StringViewPointerAndBytesWriteTheSameRecords) {
  test::ScopedNs ns;
  ASSERT_TRUE(create_stream(ns.ns(), "s", small()));
  auto p = Producer::open(ns.ns(), "s");
  ASSERT_TRUE(p) << p.error().message;
  auto c = Consumer::open(ns.ns(), "s", tailing());
  ASSERT_TRUE(c) << c.error().message;

  const std::string text = "hello, bus";
  const char raw[] = {'a', '\0', 'b'};  // a NUL inside: the size decides, not strlen
  ASSERT_TRUE(p->publish(std::string_view(text), 3).ok());
  ASSERT_TRUE(p->publish(text).ok());  // std::string: the string_view form, type 0
  ASSERT_TRUE(p->publish("literal").ok());
  ASSERT_TRUE(p->publish(raw, sizeof raw, 4).ok());
  ASSERT_TRUE(p->publish(static_cast<const void*>(text.data()), 5).ok());  // (data, size)
  ASSERT_TRUE(p->publish(std::string_view()).ok());                        // empty record

  const struct { std::string data; uint32_t type; } want[] = {
      {text, 3}, {text, 0}, {"literal", 0}, {std::string(raw, sizeof raw), 4}, {"hello", 0}, {"", 0}};
  for (const auto& w : want) {
    Record rec;
    ASSERT_EQ(c->poll(&rec, 0ns), ReadStatus::kOk);
    EXPECT_EQ(as_string(rec.data), w.data);
    EXPECT_EQ(rec.type, w.type);
  }
  Record rec;
  EXPECT_EQ(c->poll(&rec, 0ns), ReadStatus::kTimeout);
}

// What each call form resolves to (compile-time): a pointer and an integer are
// (data, size), as std::string's constructors have it.
template <class... A>
concept Publishable = requires(Producer& p, A... a) { p.publish(a...); };
static_assert(Publishable<std::string_view>);
static_assert(Publishable<std::string_view, uint32_t>);
static_assert(Publishable<const char*, size_t>);
static_assert(Publishable<const void*, size_t, uint32_t>);
static_assert(Publishable<Bytes, uint32_t>);
static_assert(Publishable<const std::string&>);
static_assert(!Publishable<int>);
// A char array (a string literal) with one integer is refused: publish("hi", 7) would
// otherwise send 7 bytes from a 3-byte literal with type 0 (the reviewer's trap).  With a
// size and a type, or as a string_view, it is fine.
static_assert(!Publishable<const char (&)[3], unsigned>);
static_assert(!Publishable<const char (&)[3], int>);
static_assert(!Publishable<const char (&)[3], size_t>);
static_assert(Publishable<const char (&)[3], size_t, uint32_t>);
static_assert(Publishable<const char (&)[3]>);
static_assert(Publishable<const unsigned char (&)[3], size_t>);

}  // namespace
}  // namespace shmbus
