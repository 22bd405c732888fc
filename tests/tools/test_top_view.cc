// What `shmbus top` shows (tools/top_view.h), in-process: numbers, sparklines, the rates
// from two updates, sorting and filtering, and frames that fit the terminal.
#include <gtest/gtest.h>

#include <string>

#include "top_view.h"

namespace shmbus::tools {
namespace {

size_t columns(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

StreamMetrics snap(const std::string& name, uint64_t next_seq, uint64_t lag, uint64_t disk = 0) {
  StreamMetrics m;
  StreamInfo& s = m.stat.info;
  s.ns = "n";
  s.name = name;
  s.capacity = 65536;
  s.next_seq = next_seq;
  s.records_published = next_seq;
  s.bytes_published = next_seq * 10;
  s.disk_bytes = disk;
  s.producers.push_back({.pid = 1, .alive = true});
  ConsumerInfo c;
  c.name = "g1";
  c.next_seq = next_seq - lag;
  c.lag = lag;
  s.consumers.push_back(c);
  return m;
}

TEST(TopView, ShortNumbers) {
  EXPECT_EQ(top_short_number(0), "0");
  EXPECT_EQ(top_short_number(950), "950");
  EXPECT_EQ(top_short_number(2.5), "2.5");
  EXPECT_EQ(top_short_number(12345), "12.3k");
  EXPECT_EQ(top_short_number(2.5e6), "2.5M");
  EXPECT_EQ(top_short_number(-1), "-");
}

TEST(TopView, StoreSizesUseOneUnitConventionInTableAndDetails) {
  // The table said STORE 2.4k (1000-based) where the details said store 2.3 KiB.
  EXPECT_EQ(top_short_bytes(950), "950B");
  EXPECT_EQ(top_short_bytes(2400), "2.3KiB");
  EXPECT_EQ(top_short_bytes(5 << 20), "5.0MiB");
  EXPECT_EQ(top_short_bytes(1023.0 * 1024), "1023KiB");
  EXPECT_EQ(top_short_bytes(-1), "-");
  StreamMetrics m = snap("p", 10, 0, 2400);
  m.stat.info.persist = PersistSettings{};
  TopModel model;
  model.update({m}, 0);
  const std::string text = top_plain(model, "t", false);
  EXPECT_NE(text.find(" 2.3KiB "), std::string::npos) << text;
  EXPECT_NE(text.find("store 2.3 KiB"), std::string::npos) << text;
  EXPECT_EQ(text.find("2.4k"), std::string::npos) << text;
}

TEST(TopView, ConsumerViewOfARemovedStreamSaysSo) {
  // It silently showed the first remaining stream's consumers instead.
  TopModel model;
  model.update({snap("a", 10, 0), snap("b", 10, 0)}, 0);
  TopView view;
  view.selected = "n/b";
  view.consumers = true;
  const auto text = [&] {
    std::string all;
    for (const auto& l : top_frame(model, view, "t", 100, 30, false)) all += l.text + "\n";
    return all;
  };
  EXPECT_NE(text().find("b: lambda"), std::string::npos) << text();
  model.update({snap("a", 20, 0)}, 1.0);
  const std::string gone = text();
  EXPECT_NE(gone.find("stream n/b was removed"), std::string::npos) << gone;
  EXPECT_EQ(gone.find("a: lambda"), std::string::npos) << gone;
}

TEST(TopView, SparklinesScaleToTheLargestAndPadOnTheLeft) {
  EXPECT_EQ(top_sparkline({0, 7, 14}, 5, false), "  _=#");  // levels 0, 4, 7 of "_.-:=+*#"
  EXPECT_EQ(top_sparkline({1, 2, 3, 4}, 2, false), "+#");  // the last samples only
  EXPECT_EQ(top_sparkline({0, 0}, 3, true), " \u2581\u2581");
  EXPECT_EQ(top_sparkline({}, 3, true), "   ");
}

TEST(TopView, RatesComeFromTwoUpdates) {
  TopModel m;
  m.update({snap("a", 100, 10)}, 0);
  EXPECT_FALSE(m.streams()[0].now.stat.rates);
  m.update({snap("a", 300, 20)}, 2.0);
  ASSERT_TRUE(m.streams()[0].now.stat.rates);
  EXPECT_DOUBLE_EQ(m.streams()[0].now.stat.rates->lambda_records_per_s, 100.0);
  ASSERT_EQ(m.streams()[0].lambda.size(), 1u);
  const auto& h = m.streams()[0].consumers.at("g:g1");
  EXPECT_EQ(h.lag.size(), 2u);
  ASSERT_EQ(h.mu.size(), 1u);
  EXPECT_DOUBLE_EQ(h.mu[0], 95.0);  // (280 - 90) / 2
  for (int i = 0; i < 100; ++i) m.update({snap("a", 300 + i, 20)}, 1.0);
  EXPECT_EQ(m.streams()[0].lambda.size(), kTopHistory);
}

TEST(TopView, SortFilterAndSelection) {
  TopModel m;
  m.update({snap("alpha", 10, 1, 500), snap("beta", 10, 9, 100), snap("gamma", 10, 5, 900)}, 0);
  TopView v;
  auto names = [&] {
    std::string s;
    for (size_t i : top_visible(m, v)) s += m.streams()[i].now.stat.info.name + " ";
    return s;
  };
  EXPECT_EQ(names(), "alpha beta gamma ");
  v.sort = TopSort::kLag;
  EXPECT_EQ(names(), "beta gamma alpha ");
  v.sort = TopSort::kStore;
  EXPECT_EQ(names(), "gamma alpha beta ");
  v.filter = "ta";
  EXPECT_EQ(names(), "beta ");
  v.filter.clear();
  v.sort = TopSort::kName;
  top_move_selection(m, v, 1);
  EXPECT_EQ(v.selected, "n/beta");
  top_move_selection(m, v, 10);
  EXPECT_EQ(v.selected, "n/gamma");
  top_move_selection(m, v, -10);
  EXPECT_EQ(v.selected, "n/alpha");
}

TEST(TopView, FramesFitTheTerminalAndEscapeNames) {
  TopModel m;
  std::vector<StreamMetrics> many;
  for (int i = 0; i < 40; ++i) many.push_back(snap("stream-with-a-rather-long-name-" + std::to_string(i), 1000, 3));
  many.push_back(snap("esc\x1b[2J", 5, 0));
  m.update(many, 0);
  m.update(many, 1.0);
  for (bool consumers : {false, true})
    for (auto [w, h] : {std::pair{80, 24}, std::pair{40, 10}, std::pair{132, 50}}) {
      TopView v;
      v.consumers = consumers;
      const auto lines = top_frame(m, v, "title", w, h, true);
      EXPECT_LE(lines.size(), static_cast<size_t>(h));
      for (const auto& l : lines) {
        EXPECT_LE(columns(l.text), static_cast<size_t>(w)) << l.text;
        EXPECT_EQ(l.text.find('\x1b'), std::string::npos);
      }
    }
  const std::string plain = top_plain(m, "title", false);
  EXPECT_EQ(plain.find('\x1b'), std::string::npos);
  EXPECT_NE(plain.find("esc\\x1b[2J"), std::string::npos);
  EXPECT_NE(plain.find("stream-with-a-rather-long-name-39"), std::string::npos);  // never cut
}

}  // namespace
}  // namespace shmbus::tools
