// cmd_bench.cc: `shmbus bench ARGS...` runs shmbus-bench from the same build or install.
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "commands.h"

namespace shmbus::tools {
namespace {

std::string executable_dir() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string path(buf, static_cast<size_t>(n));
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
}

}  // namespace

int cmd_bench(const std::vector<std::string>& args) {
  const std::string dir = executable_dir();
  // Build tree (build/tools/shmbus, build/bench/shmbus-bench), then an install (bin/).
  const std::string candidates[] = {dir + "/../bench/shmbus-bench", dir + "/shmbus-bench"};
  for (const auto& path : candidates) {
    if (access(path.c_str(), X_OK) != 0) continue;
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(path.c_str()));
    for (const auto& s : args) argv.push_back(const_cast<char*>(s.c_str()));
    argv.push_back(nullptr);
    std::fflush(stdout);
    execv(path.c_str(), argv.data());
    return fail("cannot run " + path + ": " + std::strerror(errno));
  }
  for (const auto& s : args) {
    if (s == "-h" || s == "--help") {
      std::printf(
          "usage: shmbus bench [ARGS...]\n"
          "Runs shmbus-bench (the IPC latency and throughput benchmark) with ARGS; see\n"
          "shmbus-bench --help.  It is not installed next to this shmbus (looked for\n"
          "%s and %s).\n",
          candidates[0].c_str(), candidates[1].c_str());
      return kExitOk;
    }
  }
  return fail("shmbus-bench not found (looked for " + candidates[0] + " and " + candidates[1] +
              "); build it with cmake -DSHMBUS_BUILD_BENCH=ON");
}

}  // namespace shmbus::tools
