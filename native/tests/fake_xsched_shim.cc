// A stand-in for XSched's LD_PRELOAD shim (libshimcuda.so) in the torch scenario tests: it
// intercepts nothing; when loaded into a process it appends one line to $GPUCOLO_FAKE_XSCHED_LOG
// with the pid and the XSCHED_* settings that process was started with, so a test can check that
// the xsched mechanism reaches every worker with its task's priority.
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

namespace {
const char* Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "-";
}

__attribute__((constructor)) void Announce() {
  const char* log = std::getenv("GPUCOLO_FAKE_XSCHED_LOG");
  if (!log || !*log) return;
  FILE* f = std::fopen(log, "a");
  if (!f) return;
  // one fprintf: a short append in O_APPEND mode lands whole even with several workers
  std::fprintf(f, "pid=%d XSCHED_AUTO_XQUEUE=%s XSCHED_AUTO_XQUEUE_PRIORITY=%s XSCHED_POLICY=%s\n", static_cast<int>(getpid()), Env("XSCHED_AUTO_XQUEUE"),
               Env("XSCHED_AUTO_XQUEUE_PRIORITY"), Env("XSCHED_POLICY"));
  std::fclose(f);
}
}  // namespace
