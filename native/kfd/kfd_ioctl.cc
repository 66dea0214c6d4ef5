#include "kfd_ioctl.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>

#include <linux/kfd_ioctl.h>  // needs the native/compat/drm/drm.h shim on Debian

namespace gpucolo {
namespace kfd {

#define GPUCOLO_STR2(x) #x
#define GPUCOLO_STR(x) GPUCOLO_STR2(x)

const char* KfdIoctlHeaderVersion() { return GPUCOLO_STR(KFD_IOCTL_MAJOR_VERSION) "." GPUCOLO_STR(KFD_IOCTL_MINOR_VERSION); }

KfdVersionResult KfdVersion(const std::string& dev_path) {
  KfdVersionResult r;
  if (dev_path.find('\0') != std::string::npos) {
    // open() would silently use the prefix before the NUL: refuse like Node's fs does
    r.err = EINVAL;
    r.syscall = "open";
    return r;
  }
  int fd;
  do {
    fd = ::open(dev_path.c_str(), O_RDWR | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    r.err = errno;
    r.syscall = "open";
    return r;
  }
  kfd_ioctl_get_version_args args{};
  int rc;
  do {
    rc = ::ioctl(fd, AMDKFD_IOC_GET_VERSION, &args);
  } while (rc < 0 && errno == EINTR);
  const int err = errno;
  ::close(fd);
  if (rc < 0) {
    r.err = err;
    r.syscall = "ioctl";
    return r;
  }
  r.major = args.major_version;
  r.minor = args.minor_version;
  return r;
}

}  // namespace kfd
}  // namespace gpucolo
