#pragma once
// Logging through a user callback: the library never prints by itself.
#include <functional>
#include <string>

namespace latentkit {

/// Severity of a log message.
enum class LogLevel { debug, info, warn, error };

/// Receives every message the library logs.
using LogFn = std::function<void(LogLevel, const std::string&)>;

/// Installs the log callback (nullptr: messages are dropped). Thread-safe.
void set_log_callback(LogFn fn);

/// Sends a message to the installed callback, if any.
void log_message(LogLevel level, const std::string& message);

inline void log_debug(const std::string& m) { log_message(LogLevel::debug, m); }
inline void log_info(const std::string& m) { log_message(LogLevel::info, m); }
inline void log_warn(const std::string& m) { log_message(LogLevel::warn, m); }
inline void log_error(const std::string& m) { log_message(LogLevel::error, m); }

}  // namespace latentkit
