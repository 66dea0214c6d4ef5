/* Stand-in for <drm/drm.h>, which <linux/kfd_ioctl.h> includes; Debian has it only as
   <libdrm/drm.h> (libdrm-dev). kfd_ioctl.h needs just the __u32/__u64 types and _IO* macros. */
#pragma once
#include <linux/types.h>
#include <linux/ioctl.h>
