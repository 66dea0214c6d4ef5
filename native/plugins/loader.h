// Finds and loads the GPU backend plugins (gpucolo_<name>.so next to the addon). GPU runtimes are
// only ever reached through these dlopen()ed plugins, never linked into the core.
//
// A plugin that loaded is never unloaded: its runtime may have started threads and registered
// atexit handlers (cudart does), so dlclose() after init() could leave them pointing into unmapped
// code. Handles are therefore kept for the life of the process (only failed loads are closed).
#pragma once

#include <string>
#include <vector>

#include "dispatch/gpu_plugin.h"

namespace gpucolo {
namespace plugins {

struct PluginProbe {
  std::string name;  // "cuda" | "hip"
  std::string path;
  bool found = false;
  /** dlopen() worked, the entry point exists and its ABI matches */
  bool loaded = false;
  /** dlerror() text or why the plugin is unusable; empty = none */
  std::string error;
  /** when loaded: devices reported by device_count() after init(); 0 when init() said "no
      device"; -1 unknown (not loaded, or init() / device_count() failed) */
  int deviceCount = -1;
  /** when loaded: init()'s or device_count()'s error text, e.g. "cudaErrorInsufficientDriver: ..." */
  std::string initError;
};

/** Directory of the binary this code is linked into (the addon, or a test executable). */
std::string SelfDir();

/**
 * Probes every known plugin in dir (default SelfDir()): dlopen, entry point, ABI, then init() +
 * device_count() (+ shutdown(), init is reference counted by the plugins). Never throws; failures
 * are data.
 */
std::vector<PluginProbe> ProbePlugins(const std::string& dir = SelfDir());

/**
 * Loads backend `name` ("cuda" | "hip") from gpucolo_<name>.so in dir (default SelfDir()) and
 * returns its API table (valid for the life of the process), or nullptr with *error set: plugin
 * not built / not found, dlerror() text, missing entry point, ABI mismatch. "cpu" is built into
 * the addon (native/dispatch) and is not loaded here. Does not call init().
 */
const gpucolo_gpu_api* LoadBackend(const std::string& name, std::string* error, const std::string& dir = SelfDir());

}  // namespace plugins
}  // namespace gpucolo
