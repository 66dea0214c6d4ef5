// Finds and test-loads the GPU backend plugins (gpucolo_<name>.so next to the addon). GPU
// runtimes are only ever reached through these dlopen()ed plugins, never linked into the core.
#pragma once

#include <string>
#include <vector>

namespace gpucolo {
namespace plugins {

struct PluginProbe {
  std::string name;  // "cuda" | "hip"
  std::string path;
  bool found = false;
  bool loaded = false;
  /** dlerror() text or why the plugin is unusable; empty = none */
  std::string error;
};

/** Directory of the binary this code is linked into (the addon, or a test executable). */
std::string SelfDir();

/** Probes every known plugin in dir (default SelfDir()). Never throws; failures are data. */
std::vector<PluginProbe> ProbePlugins(const std::string& dir = SelfDir());

}  // namespace plugins
}  // namespace gpucolo
