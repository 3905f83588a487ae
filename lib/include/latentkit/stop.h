#pragma once
// One stop request for the whole process. A front end asks for it (the command's SIGINT / SIGTERM
// handler, a server shutting down); every long operation polls it between its steps and ends cleanly:
// temporary files removed, nothing half-written, existing files untouched, and what can be kept kept.
#include <string>

namespace latentkit {

/// Asks every long operation to stop at its next check. Async-signal-safe (one lock-free atomic store).
void request_stop() noexcept;
/// Whether a stop was asked for (and not cleared since).
bool stop_requested() noexcept;
/// Clears the request (for a front end that goes on after an interrupted job).
void clear_stop() noexcept;
/// Throws CancelledError("WHAT interrupted") when a stop was asked for.
void throw_if_stopped(const std::string& what);

}  // namespace latentkit
