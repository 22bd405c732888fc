// signals.h: SIGINT / SIGTERM as a polite request to stop.  The handler only sets a
// flag; long-running commands (tail -f, pub, stat, persist) check it between steps and
// finish cleanly (commit, flush).  main() then exits 130 after SIGINT (Ctrl-C), whatever
// the command; after SIGTERM a command that runs until stopped (tail -f, stat --watch,
// persist, metrics, top) exits 0, one stopped before its work was done (pub) 130.  Also ignores SIGPIPE, so that a closed
// stdout is an EPIPE write error the command can handle.
#pragma once

#include <string_view>

namespace shmbus::tools {

// Installs the handlers without SA_RESTART, so that a blocking read returns EINTR.
void install_stop_handlers();
bool stop_requested() noexcept;
// The signal that asked to stop (SIGINT or SIGTERM), or 0.
int stop_signal() noexcept;

// After a failed write to stdout (errno `err`; what was buffered already dropped): a
// reader that went away (EPIPE: `| head` has what it wanted) or a stop while blocked in
// the write (EINTR) ends the command quietly with 0, stdout's error flag cleared so that
// main()'s last check of lost output judges only what is left to write; anything else is
// one line, "<who>cannot write to stdout: ...", and 1.  tail, top and stat --watch.
int stdout_write_error(int err, std::string_view who = {});
// True when stdout is a pipe whose reader went away (it polls POLLERR): `tail -f | head -1`
// with nothing more to write ends then, not at the next record.  fstat + poll, no wait.
bool stdout_reader_gone() noexcept;

}  // namespace shmbus::tools
