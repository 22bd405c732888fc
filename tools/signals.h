// signals.h: SIGINT / SIGTERM as a polite request to stop.  The handler only sets a
// flag; long-running commands (tail -f, pub, stat's interval) check it between steps
// and finish cleanly (commit, flush, exit 0).  Also ignores SIGPIPE, so that a closed
// stdout is an EPIPE write error the command can handle.
#pragma once

namespace shmbus::tools {

// Installs the handlers without SA_RESTART, so that a blocking read returns EINTR.
void install_stop_handlers();
bool stop_requested() noexcept;

}  // namespace shmbus::tools
