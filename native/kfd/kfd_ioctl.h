// /dev/kfd ioctls. Plain C++ (no N-API): binding.cc turns failures into Node-style errors.
#pragma once

#include <cstdint>
#include <string>

namespace gpucolo {
namespace kfd {

struct KfdVersionResult {
  /** 0 on success, else the errno of the failed call */
  int err = 0;
  /** "open" or "ioctl" when err != 0 */
  const char* syscall = nullptr;
  uint32_t major = 0;
  uint32_t minor = 0;
};

/**
 * AMDKFD_IOC_GET_VERSION on a fresh open(O_RDWR | O_CLOEXEC) of dev_path, closed again at once
 * (an open /dev/kfd makes this process a KFD process, visible in sysfs).
 */
KfdVersionResult KfdVersion(const std::string& dev_path);

/** KFD_IOCTL_MAJOR.MINOR of the <linux/kfd_ioctl.h> this core was compiled against. */
const char* KfdIoctlHeaderVersion();

}  // namespace kfd
}  // namespace gpucolo
