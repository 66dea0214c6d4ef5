// Streams destroyed while their kernels still run: gpu_plugin.h lets stream_destroy() be called
// after a watchdog timeout, when a cancelled kernel may not have drained within the grace period.
// Freeing the stream's mapped slots or destroying its (green) context then would pull memory or
// the context out from under a running kernel. The plugins keep such streams here instead and
// release them once their work has finished (checked at the next stream_create() and shutdown()).
// The caller's handle is gone either way. No GPU runtime here; callers serialise.
#pragma once

#include <cstddef>
#include <vector>

namespace gpucolo_plugin {

template <class T>
class DeferredRelease {
 public:
  /** Keeps `item` until Reap() finds it idle. */
  void Keep(T* item) { items_.push_back(item); }

  /**
   * Calls release(item) for every kept item whose busy(item) is false and forgets it; returns
   * how many are still kept (still running).
   */
  template <class Busy, class Release>
  size_t Reap(Busy busy, Release release) {
    std::vector<T*> still;
    for (T* item : items_) {
      if (busy(item))
        still.push_back(item);
      else
        release(item);
    }
    items_.swap(still);
    return items_.size();
  }

  size_t Size() const { return items_.size(); }

 private:
  std::vector<T*> items_;
};

}  // namespace gpucolo_plugin
