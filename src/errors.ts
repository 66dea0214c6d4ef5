/**
 * Error helpers. System errors keep Node's shape ({code, errno, syscall, path}); gpucolo adds a
 * `hint` that says what to do. The CLI prints `message` (+ hint) on one line, never a stack.
 */

export interface GpucoloErrorFields {
  code: string;
  path?: string;
  hint?: string;
}

export class GpucoloError extends Error {
  readonly code: string;
  readonly path?: string;
  readonly hint?: string;
  constructor(message: string, fields: GpucoloErrorFields) {
    super(message);
    this.name = 'GpucoloError';
    this.code = fields.code;
    this.path = fields.path;
    this.hint = fields.hint;
  }
}

export function errnoCode(err: unknown): string | undefined {
  const c = (err as { code?: unknown })?.code;
  return typeof c === 'string' ? c : undefined;
}

const ERRNO_TEXT: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EISDIR: 'a directory',
  ENOTDIR: 'a file is in the way',
};

/** A few words for an errno name in file-writing messages ("permission denied"); the name itself otherwise. */
export function errnoText(code: string): string {
  return ERRNO_TEXT[code] ?? code;
}

/** What to do about a failed read of a KFD pseudo-file, by errno and kind of file. */
export function readHint(code: string | undefined, kind: 'debugfs' | 'sysfs' | 'dev'): string | undefined {
  if (kind === 'debugfs') {
    if (code === 'EACCES' || code === 'EPERM') return 'debugfs is root-only: run with sudo for priorities and HQD slots (sysfs works without root)';
    if (code === 'ENOENT') return 'no KFD debugfs here: mount debugfs (mount -t debugfs none /sys/kernel/debug) on a host with the amdgpu driver';
  }
  if (kind === 'sysfs') {
    if (code === 'ENOENT') return 'no KFD in sysfs: the amdgpu driver (kfd) is not loaded on this host';
    if (code === 'EACCES' || code === 'EPERM') return 'denied: the device cgroup may hide the GPU render node from this process';
  }
  if (kind === 'dev') {
    if (code === 'ENOENT') return '/dev/kfd is missing: no ROCm-capable amdgpu driver on this host';
    if (code === 'EACCES' || code === 'EPERM') return 'add yourself to the render (and video) group, or run in a container with --device=/dev/kfd';
  }
  return undefined;
}

/** One line for a person: message plus hint. */
export function oneLine(err: unknown): string {
  if (err instanceof Error) {
    const hint = (err as { hint?: string }).hint;
    const first = err.message.split('\n')[0];
    return hint ? `${first} (${hint})` : first;
  }
  return String(err);
}
