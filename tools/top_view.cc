// top_view.cc: see top_view.h.
#include "top_view.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <tuple>

#include "format.h"

namespace shmbus::tools {
namespace {

// Columns a text takes: one per UTF-8 sequence (names are escaped by terminal_text:
// no control characters; wide CJK characters are counted as one, a frame may then
// be cut short by the terminal but never wraps our layout into garbage).
size_t columns(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) ++n;
  return n;
}

// The first `w` columns of `s`.
std::string cut(std::string_view s, size_t w) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (n == w) return std::string(s.substr(0, i));
      ++n;
    }
  }
  return std::string(s);
}

// Left-aligned in `w` columns (cut with '~' when longer).
std::string left(std::string_view s, size_t w) {
  if (columns(s) > w) return w == 0 ? "" : cut(s, w - 1) + "~";
  return std::string(s) + std::string(w - columns(s), ' ');
}
std::string right(std::string_view s, size_t w) {
  if (columns(s) > w) return cut(s, w);
  return std::string(w - columns(s), ' ') + std::string(s);
}

void push(std::deque<double>& d, double v) {
  d.push_back(v);
  while (d.size() > kTopHistory) d.pop_front();
}

std::string key_of(const StreamInfo& s) { return s.ns + "/" + s.name; }
std::string consumer_key(const ConsumerInfo& c) { return (c.durable ? "g:" : "t:") + c.name; }

uint64_t max_lag(const StreamInfo& s) {
  uint64_t m = 0;
  for (const auto& c : s.consumers) m = std::max(m, c.lag);
  return m;
}
size_t producers_alive(const StreamInfo& s) {
  return static_cast<size_t>(
      std::count_if(s.producers.begin(), s.producers.end(), [](const ProducerInfo& p) { return p.alive; }));
}
std::string rate(const StreamStat& st, double StatRates::*field) {
  return st.rates ? top_short_number((*st.rates).*field) : "-";
}

// The stream table: a header and one row per visible stream.
constexpr size_t kNameWidth = 16;
std::string table_header(size_t name_w, TopSort sort) {
  const auto h = [&](const char* t, TopSort s, size_t w, bool l) {
    const std::string text = std::string(sort == s ? "*" : "") + t;
    return l ? left(text, w) : right(text, w);
  };
  return h("STREAM", TopSort::kName, name_w, true) + " " + h("REC/S", TopSort::kLambda, 8, false) +
         " " + right("BYTES/S", 8) + " " + right("PROD", 4) + " " + h("LAG", TopSort::kLag, 8, false) +
         " " + right("LOST", 6) + " " + right("ABND", 5) + " " + h("STORE", TopSort::kStore, 8, false) +
         " " + right("DLAG", 7);
}
std::string table_row(const TopStream& t, size_t name_w) {
  const StreamStat& st = t.now.stat;
  const StreamInfo& s = st.info;
  // Bytes 1024-based, as the details' format_bytes(): 2400 is 2.3KiB here, 2.3 KiB there.
  const std::string store = s.persist ? top_short_bytes(static_cast<double>(s.disk_bytes)) : "-";
  if (!t.now.ring)  // only a store: no ring figures
    return left(terminal_text(s.name), name_w) + " " + right("-", 8) + " " + right("-", 8) + " " + right("-", 4) +
           " " + right("-", 8) + " " + right("-", 6) + " " + right("-", 5) + " " + right(store, 8) + " " +
           right("-", 7);
  const std::string dlag =
      s.persist ? top_short_number(static_cast<double>(s.next_seq > s.durable_seq ? s.next_seq - s.durable_seq : 0))
                : "-";
  return left(terminal_text(s.name), name_w) + " " + right(rate(st, &StatRates::lambda_records_per_s), 8) +
         " " + right(rate(st, &StatRates::lambda_bytes_per_s), 8) + " " +
         right(std::to_string(producers_alive(s)), 4) + " " +
         right(top_short_number(static_cast<double>(max_lag(s))), 8) + " " +
         right(top_short_number(static_cast<double>(s.tail_lost + s.evicted_lost)), 6) + " " +
         right(top_short_number(static_cast<double>(s.abandoned)), 5) + " " + right(store, 8) + " " +
         right(dlag, 7);
}

// Details of one stream: rates, capacity plan, lambda sparkline (one sample per refresh,
// the last kTopHistory), counts, store, bridges.
std::vector<std::string> details(const TopStream& t, bool utf8, size_t spark_w) {
  const StreamStat& st = t.now.stat;
  const StreamInfo& s = st.info;
  std::vector<std::string> out;
  std::string l = terminal_text(s.name) + ": lambda " + rate(st, &StatRates::lambda_records_per_s) +
                  " rec/s " + rate(st, &StatRates::lambda_bytes_per_s) + " B/s";
  if (s.persist) l += ", rho " + rate(st, &StatRates::rho_records_per_s) + " rec/s";
  l += ", A = lambda x T ";
  l += st.plan.projected_store_bytes ? format_bytes(*st.plan.projected_store_bytes) : "-";
  out.push_back(l);
  out.push_back("  lambda " + top_sparkline(t.lambda, spark_w, utf8));
  out.push_back("  producers " + std::to_string(producers_alive(s)) + " alive of " +
                std::to_string(s.producers.size()) + ", abandoned " + std::to_string(s.abandoned) +
                ", lost " + std::to_string(s.tail_lost) + " (tail) + " + std::to_string(s.evicted_lost) +
                " (evicted)");
  if (!t.now.ring) {  // only a store (ls: "stored (no ring)")
    out.push_back("  no ring (stored only): store " + format_bytes(static_cast<double>(s.disk_bytes)) + " in " +
                  std::to_string(s.segments) + " segments, " + terminal_text(s.persist ? s.persist->store_dir : ""));
    return out;
  }
  out.push_back("  ring " + format_size(s.capacity) +
                (s.persist ? ", store " + format_bytes(static_cast<double>(s.disk_bytes)) + ", durable lag " +
                                 std::to_string(s.next_seq > s.durable_seq ? s.next_seq - s.durable_seq : 0)
                           : std::string(", not persisted")));
  for (const auto& b : t.now.bridges)
    out.push_back("  bridge " + b.direction + " " + terminal_text(b.name) + " -> " + terminal_text(b.topic) +
                  ": lag " + std::to_string(b.lag) + (b.alive ? "" : " (not running)"));
  return out;
}

// Three lines per consumer: the numbers, then the mu and lag sparklines.
std::vector<std::string> consumer_lines(const TopStream& t, bool utf8, size_t name_w, size_t spark_w) {
  const StreamStat& st = t.now.stat;
  const StreamInfo& s = st.info;
  std::vector<std::string> out;
  out.push_back(left("CONSUMER", name_w) + " " + left("KIND", 5) + " " + left("ALIVE", 7) + " " +
                right("MU/S", 8) + " " + right("LAG", 10) + " " + right("NEXT_SEQ", 12));
  if (s.consumers.empty()) out.push_back("(no consumers)");
  for (size_t i = 0; i < s.consumers.size(); ++i) {
    const ConsumerInfo& c = s.consumers[i];
    std::string mu = "-";
    if (st.rates && i < st.rates->mu_records_per_s.size() && st.rates->mu_records_per_s[i])
      mu = top_short_number(*st.rates->mu_records_per_s[i]);
    const char* alive = c.evicted ? "evicted" : c.alive ? "yes" : "no";
    out.push_back(left(terminal_text(c.name), name_w) + " " + left(c.durable ? "group" : "tail", 5) + " " +
                  left(alive, 7) + " " + right(mu, 8) + " " + right(std::to_string(c.lag), 10) + " " +
                  right(std::to_string(c.next_seq), 12));
    static const TopConsumer kEmpty;
    const auto it = t.consumers.find(consumer_key(c));
    const TopConsumer& h = it == t.consumers.end() ? kEmpty : it->second;
    out.push_back("  mu  " + top_sparkline(h.mu, spark_w, utf8));
    out.push_back("  lag " + top_sparkline(h.lag, spark_w, utf8));
  }
  return out;
}

}  // namespace

const char* top_sort_name(TopSort s) {
  switch (s) {
    case TopSort::kName: return "STREAM";
    case TopSort::kLambda: return "REC/S";
    case TopSort::kLag: return "LAG";
    case TopSort::kStore: return "STORE";
  }
  return "?";
}

std::string top_short_number(double v) {
  if (!std::isfinite(v) || v < 0) return "-";
  static constexpr const char* kSuffix[] = {"", "k", "M", "G", "T", "P"};
  int u = 0;
  while (v >= 999.95 && u < 5) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  if (u == 0) std::snprintf(buf, sizeof buf, v == std::floor(v) || v >= 100 ? "%.0f" : "%.1f", v);
  else std::snprintf(buf, sizeof buf, v >= 100 ? "%.0f%s" : "%.1f%s", v, kSuffix[u]);
  return buf;
}

std::string top_short_bytes(double v) {
  if (!std::isfinite(v) || v < 0) return "-";
  static constexpr const char* kUnit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  while (v >= 1023.95 && u < 5) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) std::snprintf(buf, sizeof buf, "%.0f%s", v, kUnit[u]);
  else std::snprintf(buf, sizeof buf, v >= 100 ? "%.0f%s" : "%.1f%s", v, kUnit[u]);
  return buf;
}

std::string top_sparkline(const std::deque<double>& samples, size_t width, bool utf8) {
  static constexpr const char* kBlocks[] = {"\u2581", "\u2582", "\u2583", "\u2584",
                                            "\u2585", "\u2586", "\u2587", "\u2588"};
  static constexpr char kAscii[] = "_.-:=+*#";
  const size_t n = std::min(samples.size(), width);
  double top = 0;
  for (size_t i = samples.size() - n; i < samples.size(); ++i)
    if (std::isfinite(samples[i])) top = std::max(top, samples[i]);
  std::string out(width - n, ' ');
  for (size_t i = samples.size() - n; i < samples.size(); ++i) {
    const double v = std::isfinite(samples[i]) && samples[i] > 0 ? samples[i] : 0;
    const int level = top > 0 ? std::min(7, static_cast<int>(v / top * 7.0 + 0.5)) : 0;
    if (utf8) out += kBlocks[level];
    else out += kAscii[level];
  }
  return out;
}

void TopModel::update(std::vector<StreamMetrics> snaps, double seconds, double stall_s) {
  std::vector<TopStream> next;
  next.reserve(snaps.size());
  for (auto& snap : snaps) {
    TopStream t;
    const std::string key = key_of(snap.stat.info);
    const auto prev = std::find_if(streams_.begin(), streams_.end(),
                                   [&](const TopStream& p) { return key_of(p.now.stat.info) == key; });
    const bool rates = prev != streams_.end() && seconds > 0;
    t.now.bridges = std::move(snap.bridges);
    t.now.ring = snap.ring;
    t.now.stat = compute_stat(std::move(snap.stat.info), rates ? &prev->now.stat.info : nullptr, seconds, stall_s);
    if (prev != streams_.end()) {
      t.lambda = std::move(prev->lambda);
      t.consumers = std::move(prev->consumers);
    }
    const StreamStat& st = t.now.stat;
    if (st.rates) push(t.lambda, st.rates->lambda_records_per_s);
    std::map<std::string, TopConsumer> consumers;
    for (size_t i = 0; i < st.info.consumers.size(); ++i) {
      const ConsumerInfo& c = st.info.consumers[i];
      TopConsumer h = std::move(t.consumers[consumer_key(c)]);
      if (st.rates && i < st.rates->mu_records_per_s.size() && st.rates->mu_records_per_s[i])
        push(h.mu, *st.rates->mu_records_per_s[i]);
      push(h.lag, static_cast<double>(c.lag));
      consumers[consumer_key(c)] = std::move(h);
    }
    t.consumers = std::move(consumers);  // consumers gone are forgotten
    next.push_back(std::move(t));
  }
  streams_ = std::move(next);
  ++updates_;
}

std::vector<size_t> top_visible(const TopModel& model, const TopView& view) {
  const auto& all = model.streams();
  std::vector<size_t> out;
  for (size_t i = 0; i < all.size(); ++i)
    if (view.filter.empty() || all[i].now.stat.info.name.find(view.filter) != std::string::npos)
      out.push_back(i);
  const auto lambda = [&](size_t i) {
    const auto& r = all[i].now.stat.rates;
    return r ? r->lambda_records_per_s : -1.0;
  };
  std::stable_sort(out.begin(), out.end(), [&](size_t a, size_t b) {
    const StreamInfo& x = all[a].now.stat.info;
    const StreamInfo& y = all[b].now.stat.info;
    switch (view.sort) {
      case TopSort::kName: return std::tie(x.name, x.ns) < std::tie(y.name, y.ns);
      case TopSort::kLambda: return lambda(a) > lambda(b);
      case TopSort::kLag: return max_lag(x) > max_lag(y);
      case TopSort::kStore: return x.disk_bytes > y.disk_bytes;
    }
    return false;
  });
  return out;
}

size_t top_selected_index(const TopModel& model, const TopView& view, const std::vector<size_t>& visible) {
  for (size_t i = 0; i < visible.size(); ++i)
    if (key_of(model.streams()[visible[i]].now.stat.info) == view.selected) return i;
  return 0;
}

void top_move_selection(const TopModel& model, TopView& view, int delta) {
  const auto visible = top_visible(model, view);
  if (visible.empty()) return;
  const long at = static_cast<long>(top_selected_index(model, view, visible)) + delta;
  const long clamped = std::clamp<long>(at, 0, static_cast<long>(visible.size()) - 1);
  view.selected = key_of(model.streams()[visible[static_cast<size_t>(clamped)]].now.stat.info);
}

std::vector<TopLine> top_frame(const TopModel& model, const TopView& view, const std::string& title,
                               int width_in, int height_in, bool utf8) {
  const size_t width = static_cast<size_t>(std::max(width_in, 20));
  const size_t height = static_cast<size_t>(std::max(height_in, 5));
  const auto visible = top_visible(model, view);
  const size_t sel = top_selected_index(model, view, visible);
  std::vector<TopLine> out;
  const auto add = [&](const std::string& s, bool hl = false) {
    if (out.size() < height) out.push_back({left(s, width), hl});
  };
  std::string head = title + "  " + std::to_string(visible.size()) + "/" +
                     std::to_string(model.streams().size()) + " streams  sort " + top_sort_name(view.sort);
  if (!view.filter.empty() || view.editing_filter) head += "  filter /" + terminal_text(view.filter);
  add(head, true);
  const size_t spark_w = std::min<size_t>(kTopHistory, width > 12 ? width - 12 : 1);
  std::string footer = view.editing_filter ? "/" + terminal_text(view.filter) + "_   Enter: keep, Esc: cancel"
                       : view.consumers     ? "Esc/Enter: back  q: quit"
                                            : "q quit  s sort  / filter  Up/Down select  Enter consumers";
  // The stream whose consumers are shown was removed: say so, rather than show another's.
  const bool selection_gone =
      view.consumers && !view.selected.empty() &&
      std::none_of(visible.begin(), visible.end(),
                   [&](size_t i) { return key_of(model.streams()[i].now.stat.info) == view.selected; });
  if (selection_gone) {
    add("stream " + terminal_text(view.selected) + " was removed");
    add("Esc/Enter: back to the list of streams");
  } else if (view.consumers && !visible.empty()) {
    const TopStream& t = model.streams()[visible[sel]];
    for (const auto& l : details(t, utf8, spark_w)) add(l);
    add("");
    const auto lines = consumer_lines(t, utf8, kNameWidth, spark_w);
    for (size_t i = 0; i < lines.size() && out.size() + 1 < height; ++i) add(lines[i], i == 0);
  } else {
    add(table_header(kNameWidth, view.sort), true);
    // Room for the rows: the rest minus the details (3 lines + bridges + a blank) and the footer.
    const std::vector<std::string> det =
        visible.empty() ? std::vector<std::string>{} : details(model.streams()[visible[sel]], utf8, spark_w);
    const size_t reserved = 1 + (det.empty() ? 0 : det.size() + 1);
    const size_t rows = height > out.size() + reserved ? height - out.size() - reserved : 1;
    const size_t first = sel >= rows ? sel - rows + 1 : 0;  // keep the selection on screen
    for (size_t i = first; i < visible.size() && i < first + rows; ++i)
      add(table_row(model.streams()[visible[i]], kNameWidth), i == sel);
    if (visible.empty()) add(model.streams().empty() ? "(no streams)" : "(no stream matches the filter)");
    if (!det.empty()) {
      add("");
      for (const auto& l : det) add(l);
    }
  }
  while (out.size() + 1 < height) out.push_back({std::string(width, ' '), false});
  out.resize(std::min(out.size(), height - 1));
  out.push_back({left(footer, width), true});
  return out;
}

std::string top_plain(const TopModel& model, const std::string& title, bool utf8) {
  TopView view;  // by name, no filter
  const auto visible = top_visible(model, view);
  size_t name_w = kNameWidth;
  for (size_t i : visible) name_w = std::max(name_w, columns(terminal_text(model.streams()[i].now.stat.info.name)));
  std::string out = title + "  " + std::to_string(visible.size()) + " streams\n";
  out += table_header(name_w, view.sort) + "\n";
  for (size_t i : visible) out += table_row(model.streams()[i], name_w) + "\n";
  if (visible.empty()) out += "(no streams)\n";
  for (size_t i : visible) {
    const TopStream& t = model.streams()[i];
    out += "\n";
    for (const auto& l : details(t, utf8, kTopHistory)) out += l + "\n";
    size_t cw = kNameWidth;
    for (const auto& c : t.now.stat.info.consumers) cw = std::max(cw, columns(terminal_text(c.name)));
    for (const auto& l : consumer_lines(t, utf8, cw, kTopHistory)) out += "  " + l + "\n";
  }
  return out;
}

}  // namespace shmbus::tools
