// signals.cc: see signals.h.
#include "signals.h"

#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "commands.h"
#include "shmbus/shmbus.h"

namespace shmbus::tools {
namespace {

volatile std::sig_atomic_t g_stop = 0;

extern "C" void on_stop_signal(int sig) { g_stop = sig; }

}  // namespace

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: interrupt blocking reads
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  sigaction(SIGPIPE, &ign, nullptr);
  shmbus::set_stop_check(&stop_requested);  // the library's set-up waits end on a stop too
}

bool stop_requested() noexcept { return g_stop != 0; }

int stop_signal() noexcept { return g_stop; }

int stdout_write_error(int err, std::string_view who) {
  if (err == EPIPE || (err == EINTR && stop_requested())) {
    std::clearerr(stdout);
    return kExitOk;
  }
  return fail(std::string(who) + "cannot write to stdout: " + std::strerror(err));
}

bool stdout_reader_gone() noexcept {
  // A pipe only (a connected UDP socket polls POLLERR after an ICMP error and can still
  // send: a review); Linux reports a pipe without readers as POLLERR.
  struct stat st;
  if (::fstat(STDOUT_FILENO, &st) != 0 || !S_ISFIFO(st.st_mode)) return false;
  pollfd p{STDOUT_FILENO, POLLOUT, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLERR) != 0;
}

}  // namespace shmbus::tools
