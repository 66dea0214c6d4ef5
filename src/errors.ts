/**
 * Error helpers. Every error gpucolo throws on purpose is a GpucoloError with a stable `code`
 * (docs/errors.md lists them), or a TypeError/RangeError with a Node-style code for a bad argument
 * to a public function (invalidArg, outOfRange). System errors keep Node's shape ({code, errno,
 * syscall, path}); gpucolo adds a `hint` that says what to do. The CLI prints `message` (+ hint)
 * on one line, never a stack.
 */

export interface GpucoloErrorFields {
  code: string;
  path?: string;
  hint?: string;
  /** a system error this one re-words keeps Node's errno and syscall */
  errno?: number;
  syscall?: string;
}

export class GpucoloError extends Error {
  readonly code: string;
  readonly path?: string;
  readonly hint?: string;
  // `declare`: no own key unless set, as on Node's system errors (ES2022 class fields would add one)
  declare readonly errno?: number;
  declare readonly syscall?: string;
  constructor(message: string, fields: GpucoloErrorFields) {
    super(message);
    this.name = 'GpucoloError';
    this.code = fields.code;
    this.path = fields.path;
    this.hint = fields.hint;
    if (fields.errno !== undefined) this.errno = fields.errno;
    if (fields.syscall !== undefined) this.syscall = fields.syscall;
  }
}

/** Node's codes for a bad argument (the ones node:fs and node:http use for the same mistakes). */
export type ArgErrorCode = 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE' | 'ERR_OUT_OF_RANGE';

/**
 * A bad argument to a public function, as Node reports one: a TypeError with
 * code ERR_INVALID_ARG_VALUE (or ERR_INVALID_ARG_TYPE). A mistake in the caller's code, not in
 * input data (bad input files and options are GpucoloErrors with their own codes).
 */
export function invalidArg(message: string, code: Exclude<ArgErrorCode, 'ERR_OUT_OF_RANGE'> = 'ERR_INVALID_ARG_VALUE'): TypeError & { code: ArgErrorCode } {
  return Object.assign(new TypeError(message), { code });
}

/**
 * An argument outside what it may be: a RangeError with code ERR_OUT_OF_RANGE (a number out of
 * its range), or ERR_INVALID_ARG_VALUE for a string of the wrong form, as Node's own RangeErrors.
 */
export function outOfRange(message: string, code: Exclude<ArgErrorCode, 'ERR_INVALID_ARG_TYPE'> = 'ERR_OUT_OF_RANGE'): RangeError & { code: ArgErrorCode } {
  return Object.assign(new RangeError(message), { code });
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
