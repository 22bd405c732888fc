// persist/'s logger (log.h): its own named logger, its level from $SPDLOG_LEVEL, and
// spdlog's default logger (the program's) left alone.
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <gtest/gtest.h>

#include "log.h"

namespace shmbus::persist::detail {
namespace {

TEST(Log, EnvLevelTakesTheLoggersOwnEntryElseTheGlobalOne) {
  const std::optional<int> warn = spdlog::level::warn, err = spdlog::level::err,
                           off = spdlog::level::off;
  EXPECT_EQ(env_level("warn", "shmbus"), warn);
  EXPECT_EQ(env_level("WARNING", "shmbus"), warn);
  EXPECT_EQ(env_level("shmbus=error,info", "shmbus"), err);
  EXPECT_EQ(env_level("info, shmbus = off", "shmbus"), off);
  EXPECT_EQ(env_level("other=debug", "shmbus"), std::nullopt);
  EXPECT_EQ(env_level("shmbus=loud", "shmbus"), std::nullopt);  // not a level: ignored
  EXPECT_EQ(env_level("", "shmbus"), std::nullopt);
  EXPECT_EQ(env_level(std::string(600, 'x'), "shmbus"), std::nullopt);
}

// $SPDLOG_LEVEL sets the level of persist/'s logger only: the default logger (the
// program's, e.g. the Python module's host or the bridge) keeps its object and level.
TEST(Log, TheDefaultLoggerIsLeftAlone) {
  auto before = spdlog::default_logger();
  const auto level_before = before->level();
  const char* saved = std::getenv("SPDLOG_LEVEL");
  const std::string saved_value = saved ? saved : "";
  ::setenv("SPDLOG_LEVEL", level_before == spdlog::level::critical ? "err" : "critical", 1);
  spdlog::logger mine(kLoggerName, std::make_shared<spdlog::sinks::null_sink_mt>());
  apply_env_level(mine);
  EXPECT_NE(mine.level(), level_before);
  log_info("a test line (persist's logger)");
  EXPECT_NE(&logger(), spdlog::default_logger_raw());
  EXPECT_EQ(logger().name(), kLoggerName);
  EXPECT_EQ(spdlog::default_logger(), before);
  EXPECT_EQ(spdlog::default_logger()->level(), level_before);
  if (saved) ::setenv("SPDLOG_LEVEL", saved_value.c_str(), 1);
  else ::unsetenv("SPDLOG_LEVEL");
}

}  // namespace
}  // namespace shmbus::persist::detail
