#include "harness.h"

#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>

#include "clock.h"

namespace bench {

SharedArea* shared_area() {
  static SharedArea* area = [] {
    void* p = mmap(nullptr, sizeof(SharedArea), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      std::perror("shmbus-bench: mmap shared area");
      std::exit(2);
    }
    return new (p) SharedArea();
  }();
  return area;
}

bool Ctx::barrier() noexcept {
  // acquire: pairs with the release store of `phase` by the last role to arrive.
  const uint32_t my_phase = area_->phase.load(std::memory_order_acquire);
  if (area_->arrived.fetch_add(1, std::memory_order_acq_rel) + 1 == area_->nroles) {
    // relaxed: every other role is still spinning on `phase`; the release below orders it.
    area_->arrived.store(0, std::memory_order_relaxed);
    // release: pairs with the acquire loads below in the waiting roles.
    area_->phase.store(my_phase + 1, std::memory_order_release);
    return true;
  }
  const uint64_t deadline = mono_ns() + 15'000'000'000ull;
  uint32_t spins = 0;
  while (area_->phase.load(std::memory_order_acquire) == my_phase) {
    if ((++spins & 0xfff) == 0 && mono_ns() > deadline) {
      fail("barrier: a peer process never arrived");
      return false;
    }
  }
  return true;
}

namespace {
void disturbances(uint64_t* faults, uint64_t* preempts, uint64_t* sleeps) {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  *faults = uint64_t(u.ru_minflt + u.ru_majflt);
  *preempts = uint64_t(u.ru_nivcsw);
  *sleeps = uint64_t(u.ru_nvcsw);
}
}  // namespace

void Ctx::mark_measuring() noexcept {
  RoleReport& r = report();
  disturbances(&r.mark_faults, &r.mark_preempts, &r.mark_sleeps);
}

int Ctx::fail(const std::string& what) noexcept {
  RoleReport& r = report();
  if (r.error[0] == '\0') std::snprintf(r.error, sizeof(r.error), "%s", what.c_str());
  return 1;
}

int pin_to_core(int core) noexcept {
  if (core < 0) return -1;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  return sched_setaffinity(0, sizeof(set), &set) == 0 ? core : -1;
}

namespace {

[[noreturn]] void child_main(const Role& role, int index, SharedArea* area,
                             const sigset_t& old_mask) {
  sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the harness
  Ctx ctx(index, area);
  const int core = pin_to_core(role.core);
  ctx.report().pinned_core = core < 0 ? ~0u : uint32_t(core);
  ctx.mark_measuring();
  int rc = 1;
  try {
    rc = role.body(ctx);
  } catch (const std::exception& e) {
    rc = ctx.fail(std::string("exception: ") + e.what());
  }
  RoleReport& r = ctx.report();
  disturbances(&r.faults, &r.preempts, &r.sleeps);
  r.faults -= r.mark_faults;
  r.preempts -= r.mark_preempts;
  r.sleeps -= r.mark_sleeps;
  std::fflush(nullptr);
  // exit(), not _exit(): iceoryx's runtime deregisters from RouDi in a static destructor.
  std::exit(rc);
}

std::string describe_status(int index, int status) {
  char buf[96];
  if (WIFSIGNALED(status))
    std::snprintf(buf, sizeof buf, "role %d killed by signal %d", index, WTERMSIG(status));
  else
    std::snprintf(buf, sizeof buf, "role %d exited with code %d", index, WEXITSTATUS(status));
  return buf;
}

}  // namespace

RunOutcome run_roles(const std::vector<Role>& roles, std::chrono::milliseconds timeout) {
  SharedArea* area = shared_area();
  area->arrived.store(0, std::memory_order_relaxed);
  area->phase.store(0, std::memory_order_relaxed);
  std::memset(area->reports, 0, sizeof(area->reports));
  area->nroles = uint32_t(roles.size());

  std::fflush(nullptr);  // the children must not inherit unwritten output
  sigset_t chld, old_mask;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &old_mask);

  std::vector<pid_t> pids;
  RunOutcome out;
  for (size_t i = 0; i < roles.size(); ++i) {
    const pid_t pid = fork();
    if (pid == 0) child_main(roles[i], int(i), area, old_mask);
    if (pid < 0) {
      out.error = std::string("fork: ") + std::strerror(errno);
      break;
    }
    pids.push_back(pid);
  }

  const uint64_t deadline = mono_ns() + uint64_t(timeout.count()) * 1'000'000ull;
  std::vector<int> status(pids.size(), -1);
  size_t running = pids.size();
  bool timed_out = !out.error.empty();
  bool failed = false;  // a role failed: its peers would only wait for it, so end them
  size_t first_failed = 0;
  while (running > 0 && !timed_out && !failed) {
    for (size_t i = 0; i < pids.size(); ++i) {
      if (status[i] != -1) continue;
      int st = 0;
      if (waitpid(pids[i], &st, WNOHANG) == pids[i]) {
        status[i] = st;
        --running;
        if (!failed && (!WIFEXITED(st) || WEXITSTATUS(st) != 0)) {
          failed = true;
          first_failed = i;
        }
      }
    }
    if (running == 0 || failed) break;
    const uint64_t now = mono_ns();
    if (now >= deadline) {
      timed_out = true;
      break;
    }
    const uint64_t wait = std::min<uint64_t>(deadline - now, 200'000'000ull);
    timespec ts{time_t(wait / 1'000'000'000ull), long(wait % 1'000'000'000ull)};
    sigtimedwait(&chld, nullptr, &ts);  // sleeps until some child exits
  }
  if (timed_out || failed) {
    for (size_t i = 0; i < pids.size(); ++i) {
      if (status[i] != -1) continue;
      kill(pids[i], SIGKILL);
      waitpid(pids[i], &status[i], 0);
    }
    if (out.error.empty() && timed_out)
      out.error = "timeout after " + std::to_string(timeout.count()) + " ms: killed (hang?)";
  }
  sigprocmask(SIG_SETMASK, &old_mask, nullptr);

  // The first error a role wrote explains more than its exit code.
  for (size_t i = 0; i < roles.size() && out.error.empty(); ++i)
    if (area->reports[i].error[0] != '\0')
      out.error = "role " + std::to_string(i) + ": " + area->reports[i].error;
  if (out.error.empty() && failed)
    out.error = describe_status(int(first_failed), status[first_failed]);
  for (size_t i = 0; i < pids.size() && out.error.empty(); ++i)
    if (!WIFEXITED(status[i]) || WEXITSTATUS(status[i]) != 0)
      out.error = describe_status(int(i), status[i]);
  if (timed_out && out.error.find("timeout") == std::string::npos)
    out.error = "timeout (killed); " + out.error;
  out.ok = out.error.empty();
  return out;
}

}  // namespace bench
