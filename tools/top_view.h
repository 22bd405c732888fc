// top_view.h: what `shmbus top` shows, apart from the terminal: the model (the latest
// StreamStat of every stream with 60 samples of history for its sparklines) and the
// frames drawn from it as lines of text that fit a width.  Pure (no I/O, no curses):
// cmd_top.cc takes the snapshots and draws the lines, with ncurses on a terminal and as
// plain text elsewhere.  Every number comes from compute_stat() (shmbus/stat.h).
// Thread: one thread owns a TopModel and its TopView.
#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "shmbus/prometheus.h"  // StreamMetrics, BridgeMetrics
#include "shmbus/stat.h"

namespace shmbus::tools {

inline constexpr size_t kTopHistory = 60;  // samples per sparkline: 60 s at the default 1 s

struct TopConsumer {
  std::deque<double> mu, lag;  // oldest first, at most kTopHistory
};

struct TopStream {
  StreamMetrics now;           // now.stat has rates from the second update on
  std::deque<double> lambda;   // records/s, oldest first
  // By consumer name and kind ("g:NAME" durable group, "t:NAME" tailing reader).
  std::map<std::string, TopConsumer> consumers;
};

// The streams of one namespace (or several), refreshed by update().
class TopModel {
 public:
  // `snaps` were taken `seconds` after the previous update's (0 for the first: no rates).
  void update(std::vector<StreamMetrics> snaps, double seconds, double stall_s = 1.0);
  const std::vector<TopStream>& streams() const { return streams_; }
  int updates() const { return updates_; }

 private:
  std::vector<TopStream> streams_;  // in the order the snapshots came
  int updates_ = 0;
};

enum class TopSort { kName, kLambda, kLag, kStore };
inline constexpr int kTopSortColumns = 4;
const char* top_sort_name(TopSort s);

// What the user chose: sort, filter, selection, screen.
struct TopView {
  TopSort sort = TopSort::kName;
  std::string filter;           // substring of the stream name; "" shows all
  bool editing_filter = false;  // '/' typed: keys go to the filter
  std::string filter_before;    // the filter to restore on Esc
  std::string selected;         // "NS/NAME" of the selected stream; "" the first shown
  bool consumers = false;       // the selected stream's consumers instead of the list
};

struct TopLine {
  std::string text;
  bool highlight = false;  // title, column header, selected row
};

// The streams the view shows, sorted and filtered (indexes into model.streams()).
std::vector<size_t> top_visible(const TopModel& model, const TopView& view);
// The index of the selected stream among top_visible() (0 when the selection is gone).
size_t top_selected_index(const TopModel& model, const TopView& view, const std::vector<size_t>& visible);
// Moves the selection by `delta` rows among the visible streams.
void top_move_selection(const TopModel& model, TopView& view, int delta);

// One full-screen frame of `width` x `height` (at most `height` lines, each at most
// `width` columns).  `utf8`: block characters for sparklines, else ASCII.
std::vector<TopLine> top_frame(const TopModel& model, const TopView& view, const std::string& title,
                               int width, int height, bool utf8);
// The plain text frame (not a terminal, --once): the stream table, then each stream's
// details and consumers; names are never cut.
std::string top_plain(const TopModel& model, const std::string& title, bool utf8);

// Helpers, tested on their own.
// 950 -> "950", 12345 -> "12.3k", 2.5e6 -> "2.5M"; negative or non-finite -> "-".
std::string top_short_number(double v);
// Bytes, 1024-based as format_bytes() (format.h) but without the space, to fit a column:
// 950 -> "950B", 2400 -> "2.3KiB", 5 << 20 -> "5.0MiB"; negative or non-finite -> "-".
std::string top_short_bytes(double v);
// The last `width` samples scaled to the largest; missing ones are blanks on the left.
std::string top_sparkline(const std::deque<double>& samples, size_t width, bool utf8);

}  // namespace shmbus::tools
