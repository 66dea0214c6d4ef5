/** KFD ioctls. Only the native core can issue them; the TS path says so with code ENONATIVE. */
import { requireNative } from '../native.js';
import { GpucoloError, errnoCode, readHint } from '../errors.js';

/**
 * AMDKFD_IOC_GET_VERSION. Note: opening /dev/kfd makes the caller a KFD process (it appears in
 * sysfs class/kfd/kfd/proc while the file is open; gpucolo closes it at once).
 */
export function kfdVersion(devPath = '/dev/kfd'): { major: number; minor: number } {
  const b = requireNative();
  try {
    return b.kfdVersion(devPath);
  } catch (err) {
    const code = errnoCode(err) ?? 'EIO';
    const e = new GpucoloError((err as Error).message, { code, path: devPath, hint: readHint(code, 'dev') });
    Object.assign(e, { errno: (err as { errno?: number }).errno, syscall: (err as { syscall?: string }).syscall });
    throw e;
  }
}
