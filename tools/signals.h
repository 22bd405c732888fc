// signals.h: SIGINT / SIGTERM as a polite request to stop.  The handler only sets a
// flag; long-running commands (tail -f, pub, stat, persist) check it between steps and
// finish cleanly (commit, flush).  main() then exits 130 after SIGINT (Ctrl-C), whatever
// the command; after SIGTERM a command that runs until stopped (tail -f, stat --watch,
// persist, metrics, top) exits 0, one stopped before its work was done (pub) 130.  Also ignores SIGPIPE, so that a closed
// stdout is an EPIPE write error the command can handle.
#pragma once

namespace shmbus::tools {

// Installs the handlers without SA_RESTART, so that a blocking read returns EINTR.
void install_stop_handlers();
bool stop_requested() noexcept;
// The signal that asked to stop (SIGINT or SIGTERM), or 0.
int stop_signal() noexcept;

}  // namespace shmbus::tools
