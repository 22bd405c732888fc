// soak_summary.cc: the end of the soak: the checks of the durable groups' and the
// producers' bookkeeping and of memory growth, then the summary and the exit code.
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <string>

#include "soak_driver.h"

namespace fs = std::filesystem;

namespace shmbus::soak {

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif
#else
constexpr bool kAsan = false;
#endif

}  // namespace

int Soak::finish(const StreamInfo& fin, const StreamInfo& last, Clock::time_point t0) {
  // ---- checks ----
  const uint64_t expected_gaps = fin.next_seq - std::min(fin.next_seq, fin.records_published);
  uint64_t durable_delivered = 0;
  for (uint32_t g = 0; g < 3; ++g) {
    const Group& G = sh_->groups[g];
    const std::string n = "d" + std::to_string(g);
    durable_delivered += G.delivered.load();
    if (G.next.load() != fin.next_seq)
      v_.add(n + " ended at seq " + std::to_string(G.next.load()) + ", the stream at " +
             std::to_string(fin.next_seq));
    if (G.duplicates.load() != 0) v_.add(n + ": " + std::to_string(G.duplicates.load()) + " duplicates");
    if (G.lost_reported.load() != 0) v_.add(n + ": lost " + std::to_string(G.lost_reported.load()));
    if (G.skipped.load() != G.gaps_reported.load())
      v_.add(n + ": skipped " + std::to_string(G.skipped.load()) + " sequences but reported " +
             std::to_string(G.gaps_reported.load()) + " gaps");
    if (G.delivered.load() + G.skipped.load() != G.next.load())
      v_.add(n + ": delivered " + std::to_string(G.delivered.load()) + " + skipped " +
             std::to_string(G.skipped.load()) + " != " + std::to_string(G.next.load()));
    if (G.skipped.load() != sh_->groups[0].skipped.load())
      v_.add(n + " skipped " + std::to_string(G.skipped.load()) + " sequences, d0 " +
             std::to_string(sh_->groups[0].skipped.load()) + ": consumers disagree");
    if (G.counter_skips.load() > G.skipped.load())
      v_.add(n + ": " + std::to_string(G.counter_skips.load()) + " producer records missing, only " +
             std::to_string(G.skipped.load()) + " sequences were gaps");
  }
  uint64_t published = 0, abandoned_live = 0;
  const uint32_t incs = static_cast<uint32_t>(sh_->next_incarnation.load());
  for (uint32_t i = 0; i < incs; ++i) {
    if (sh_->inc[i].role != static_cast<uint32_t>(Role::kProducer)) continue;
    published += sh_->inc[i].published.load();
    abandoned_live += sh_->inc[i].abandoned.load();
  }
  if (abandoned_live)
    v_.add(std::to_string(abandoned_live) + " records of live producers were abandoned (kAbandoned)");
  auto growth = [&](const std::string& what, uint64_t first, uint64_t last, uint64_t slack) {
    if (last > first + slack) v_.add(what + " grew from " + std::to_string(first) + " to " + std::to_string(last));
  };
  for (auto& [name, m] : mem_) {
    // Under ASan the allocator's quarantine (256 MiB) grows RSS by design: report only.
    if (!kAsan)
      growth(name + " RSS (KiB)", m.first.rss_kb, m.second.rss_kb,
             std::max<uint64_t>(16 * 1024, m.first.rss_kb / 4));
    growth(name + " open fds", m.first.fds, m.second.fds, 2);
  }
  growth("/dev/shm bytes of the namespace", shm_first_, shm_last_, 0);

  // ---- summary ----
  const double mins = std::chrono::duration<double>(Clock::now() - t0).count() / 60;
  std::printf("\n== shmbus soak summary ==\n");
  std::printf("duration            %.1f min (rate %.0f records/s)\n", mins, rate_);
  std::printf("published           next_seq %" PRIu64 ", records %" PRIu64 " (acknowledged to producers %" PRIu64
              "), abandoned %" PRIu64 ", aborted %" PRIu64 "\n",
              fin.next_seq, fin.records_published, published, fin.abandoned, fin.aborted);
  std::printf("durable consumed    %" PRIu64 " (3 groups), redelivered after a kill %" PRIu64 "\n",
              durable_delivered,
              sh_->groups[0].redelivered.load() + sh_->groups[1].redelivered.load() +
                  sh_->groups[2].redelivered.load());
  for (uint32_t g = 0; g < 3; ++g) {
    const Group& G = sh_->groups[g];
    std::printf("  d%u               delivered %" PRIu64 " skipped %" PRIu64 " gaps %" PRIu64
                " lost %" PRIu64 " dups %" PRIu64 " producer records missing %" PRIu64 "\n",
                g, G.delivered.load(), G.skipped.load(), G.gaps_reported.load(), G.lost_reported.load(),
                G.duplicates.load(), G.counter_skips.load());
  }
  std::printf("tailing consumed    %" PRIu64 " in %" PRIu64 " checked incarnations, lost %" PRIu64
              " (laps %" PRIu64 "), gaps %" PRIu64 "\n",
              tail_delivered_, tail_checked_, tail_lost_, tail_laps_, tail_gaps_);
  std::printf("replays             %" PRIu64 " runs, %" PRIu64 " records, %" PRIu64 " sequences announced as gaps\n",
              replays_, replay_records_, replay_gap_seqs_);
  for (const auto& [why, count] : gap_reasons_)
    std::printf("  gap notes: %" PRIu64 " x '%s'\n", count, why.c_str());
  std::printf("final replay        %" PRIu64 " records, seq %" PRIu64 "..%" PRIu64 "\n", final_n_,
              final_first_, final_last_);
  std::printf("expected gaps       %" PRIu64 " (next_seq - records_published; approximate after kills)\n",
              expected_gaps);
  std::printf("starts / kills      ");
  for (int r = 0; r < static_cast<int>(Role::kCount); ++r) {
    const char* n = role_name(static_cast<Role>(r));
    std::printf("%s %" PRIu64 "/%" PRIu64 "  ", n, starts_[n], kills_[n]);
  }
  std::printf("\n");
  for (auto& [name, m] : mem_)
    std::printf("memory %-12s RSS %" PRIu64 " -> %" PRIu64 " KiB, fds %" PRIu64 " -> %" PRIu64 "\n",
                name.c_str(), m.first.rss_kb, m.second.rss_kb, m.first.fds, m.second.fds);
  std::printf("/dev/shm            %" PRIu64 " -> %" PRIu64 " bytes; store %" PRIu64 " -> %" PRIu64
              " bytes (max %" PRIu64 "), durable_seq %" PRIu64 ", oldest persisted %" PRIu64 "\n",
              shm_first_, shm_last_, store_first_, store_last_, store_max_, last.durable_seq,
              last.oldest_persisted_seq);
  std::printf("persister warnings  %" PRIu64 "\n", persister_warning_count_);
  for (const auto& w : persister_warnings_) std::printf("  %s\n", w.c_str());
  std::printf("violations          %zu\n", v_.list.size());
  for (size_t i = 0; i < v_.list.size() && i < 30; ++i) std::printf("  %s\n", v_.list[i].c_str());

  (void)remove_stream(ns_, stream_, true);
  std::error_code ec;
  if (v_.list.empty()) fs::remove_all(work_dir_, ec);
  else std::printf("kept for inspection: %s (the store is in data/)\n", work_dir_.c_str());
  return v_.list.empty() ? 0 : 1;
}

}  // namespace shmbus::soak
