// cmd_top.cc: `shmbus top`: every stream of the namespace, refreshed every --interval,
// drawn with ncurses on a terminal (keys: q quit, s sort, / filter, Up/Down select,
// Enter a stream's consumers, Esc/Enter back; the window may be resized), as plain
// text frames when stdout is not a terminal, or one frame with --once.  Rates need two
// snapshots: --once takes the second one --interval after the first.  What is shown
// and how is top_view.h's; this file takes the snapshots and owns the terminal.
#include <curses.h>
#include <langinfo.h>
#include <stdio_ext.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <clocale>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "args.h"
#include "collect.h"
#include "commands.h"
#include "format.h"
#include "signals.h"
#include "top_view.h"

namespace shmbus::tools {
namespace {

using Clock = std::chrono::steady_clock;

// Sleeps until `deadline` in short steps; false if a stop signal came first.
bool nap_until(Clock::time_point deadline) {
  while (!stop_requested()) {
    const auto now = Clock::now();
    if (now >= deadline) return true;
    std::this_thread::sleep_for(std::min<Clock::duration>(deadline - now, std::chrono::milliseconds(50)));
  }
  return false;
}

bool utf8_locale() {
  const char* cs = nl_langinfo(CODESET);
  return cs && std::strcmp(cs, "UTF-8") == 0;
}

// Writes `s` to stdout: 0, or the errno of the failed write.
int write_out(const std::string& s) {
  if (std::fwrite(s.data(), 1, s.size(), stdout) == s.size() && std::fflush(stdout) == 0) return 0;
  const int err = errno;
  __fpurge(stdout);  // exit() must not try to write the rest again
  return err != 0 ? err : EIO;
}

// After a failed write to stdout: like tail, a reader that went away (`top | head`)
// ends the command quietly with 0; any other error is one line and 1.
int write_error(int err) { return stdout_write_error(err, "top: "); }

// Not a terminal: a plain frame every interval (the first after one interval: with rates).
int run_plain(TopModel& model, const std::string& ns, const std::string& title,
              std::chrono::nanoseconds every, bool once, bool utf8) {
  auto t_prev = Clock::now();
  model.update(collect_namespaces({ns}), 0);
  for (bool first = true;; first = false) {
    if (!nap_until(t_prev + every)) return kExitOk;  // stopped: main() picks the code
    auto snaps = collect_namespaces({ns});
    const auto t = Clock::now();
    model.update(std::move(snaps), std::chrono::duration<double>(t - t_prev).count());
    t_prev = t;
    if (const int err = write_out((first ? "" : "\n") + top_plain(model, title + "  " + format_time_ns(now_ns()), utf8)))
      return write_error(err);
    if (once) return kExitOk;
  }
}

// Applies a key; false to quit.
bool on_key(int ch, TopModel& model, TopView& view) {
  if (view.editing_filter) {
    if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
      view.editing_filter = false;
    } else if (ch == 27) {
      view.filter = view.filter_before;
      view.editing_filter = false;
    } else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
      if (!view.filter.empty()) view.filter.pop_back();
    } else if (ch >= 0x20 && ch < 0x7f && view.filter.size() < 100) {
      view.filter += static_cast<char>(ch);  // stream names are ASCII
    }
    return true;
  }
  if (view.consumers) {
    if (ch == 27 || ch == '\n' || ch == '\r' || ch == KEY_ENTER || ch == KEY_LEFT) view.consumers = false;
    else if (ch == 'q' || ch == 'Q') return false;
    return true;
  }
  switch (ch) {
    case 'q':
    case 'Q':
      return false;
    case 's':
      view.sort = static_cast<TopSort>((static_cast<int>(view.sort) + 1) % kTopSortColumns);
      break;
    case '/':
      view.editing_filter = true;
      view.filter_before = view.filter;
      break;
    case KEY_UP: top_move_selection(model, view, -1); break;
    case KEY_DOWN: top_move_selection(model, view, 1); break;
    case KEY_PPAGE: top_move_selection(model, view, -10); break;
    case KEY_NPAGE: top_move_selection(model, view, 10); break;
    case '\n':
    case '\r':
    case KEY_ENTER:
    case KEY_RIGHT:
      if (!top_visible(model, view).empty()) {
        top_move_selection(model, view, 0);  // pin the selection to a stream
        view.consumers = true;
      }
      break;
    default: break;
  }
  return true;
}

void draw(const TopModel& model, const TopView& view, const std::string& title, bool utf8) {
  int rows = 24, cols = 80;
  getmaxyx(stdscr, rows, cols);
  erase();
  const auto lines = top_frame(model, view, title, cols, rows, utf8);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].highlight) attron(A_REVERSE);
    // Each line is at most `cols` columns (top_frame); the bottom-right cell is written
    // without scrolling (scrollok is off).
    mvaddstr(static_cast<int>(i), 0, lines[i].text.c_str());
    if (lines[i].highlight) attroff(A_REVERSE);
  }
  refresh();
}

int run_curses(TopModel& model, const std::string& ns, const std::string& title,
               std::chrono::nanoseconds every, bool utf8) {
  SCREEN* screen = newterm(nullptr, stdout, stdin);
  if (!screen) return -1;  // no usable terminal: the caller prints plain text
  cbreak();
  noecho();
  keypad(stdscr, TRUE);
  curs_set(0);
  set_escdelay(25);
  timeout(100);
  TopView view;
  auto t_prev = Clock::now();
  model.update(collect_namespaces({ns}), 0);
  bool dirty = true;
  while (!stop_requested()) {
    if (Clock::now() >= t_prev + every) {
      auto snaps = collect_namespaces({ns});
      const auto t = Clock::now();
      model.update(std::move(snaps), std::chrono::duration<double>(t - t_prev).count());
      t_prev = t;
      dirty = true;
    }
    if (dirty) draw(model, view, title, utf8);
    dirty = false;
    const int ch = getch();
    if (ch == ERR) continue;
    dirty = true;  // KEY_RESIZE too: ncurses has the new size
    if (!on_key(ch, model, view)) break;
  }
  endwin();
  delscreen(screen);
  return kExitOk;  // q, or a stop signal: main() turns a SIGINT into 130
}

}  // namespace

int cmd_top(const TopArgs& a) {
  auto every = duration_flag("--interval", a.interval);
  if (!every) return kExitUsage;
  if (every->count() <= 0) return fail("--interval: must be more than 0", kExitUsage);
  const auto ns_or = command_namespace(a.ns);
  if (!ns_or) return kExitUsage;
  const std::string ns = *ns_or;
  std::setlocale(LC_ALL, "");
  const bool utf8 = utf8_locale();
  install_stop_handlers();
  if (auto names = list_streams(ns); !names) return fail(names.error());
  const std::string title = "shmbus top  namespace " + terminal_text(ns);
  TopModel model;
  if (!a.once && isatty(STDOUT_FILENO) && isatty(STDIN_FILENO)) {
    const int rc = run_curses(model, ns, title, *every, utf8);
    if (rc >= 0) return rc;
  }
  return run_plain(model, ns, title, *every, a.once, utf8);
}

}  // namespace shmbus::tools
