/**
 * KFD ioctls. Only the native core can issue them; the TS path says so with code ENONATIVE.
 *
 * Every ioctl here acts on the CALLER's own KFD process: the kernel refuses a /dev/kfd fd of another
 * process (EBADF). gpucolo opens its own fd, so these functions reach gpucolo's own queues (those
 * its HIP plugin created) and nothing else. docs/kfd-formats.md#ioctls.
 */
import {
  requireNative,
  type NativeQueueSnapshotEntry,
  type NativeQueueSnapshotSelf,
  type NativeUpdateQueueArgs,
  type NativeUpdateQueueSent,
} from '../native.js';
import { GpucoloError, errnoCode, readHint } from '../errors.js';

/** A GpucoloError with Node's system-error fields and the KFD operation. */
export interface KfdIoctlError extends GpucoloError {
  errno?: number;
  syscall?: string;
  /** 'UPDATE_QUEUE', 'DBG_TRAP_ENABLE', 'DBG_TRAP_GET_QUEUE_SNAPSHOT', 'DBG_TRAP_DISABLE' */
  op?: string;
  /** 'arguments': refused before any system call (code = what the kernel would answer); 'syscall': the kernel (or open) answered */
  phase?: 'arguments' | 'syscall';
}

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

// ------------------------------------------------------------------------------ UPDATE_QUEUE

export interface UpdateQueueOptions {
  /** KFD queue id (sysfs proc/<pid>/queues/<qid>, or the debug queue snapshot) */
  queueId: number;
  /** the queue's CURRENT ring base (VA): bigint, safe integer, or '0x…' hex / decimal string */
  ringBase: bigint | number | string;
  /** the queue's CURRENT ring size in bytes (0 or a power of two) */
  ringSize: number;
  /** 0..100; 100 for an active queue, 0 makes it inactive */
  percentage: number;
  /** 0..15: pipe priority follows (0-6 low, 7-10 medium, 11-15 high) */
  priority: number;
  /** PM4 queues on GC 9.4.3 only: the XCC that runs the queue (bits 8-15 of queue_percentage); default 0 */
  pm4TargetXcc?: number;
  /** default /dev/kfd */
  devPath?: string;
}

export type UpdateQueueSent = NativeUpdateQueueSent;

/** A bigint from what a caller may hold for an address (snapshots carry '0x…' strings). */
function toU64(v: bigint | number | string, what: string): bigint {
  let out: bigint | null = null;
  if (typeof v === 'bigint') out = v;
  else if (typeof v === 'number' && Number.isSafeInteger(v)) out = BigInt(v);
  else if (typeof v === 'string' && /^(0x[0-9a-f]+|[0-9]+)$/i.test(v.trim())) out = BigInt(v.trim());
  if (out === null || out < 0n || out >= 1n << 64n) {
    throw new GpucoloError(`${what} must be an unsigned 64-bit integer (bigint, safe integer or '0x…' string), got ${String(v)}`, { code: 'ERR_INVALID_ARG_VALUE' });
  }
  return out;
}

function nativeArgs(o: UpdateQueueOptions): NativeUpdateQueueArgs {
  return {
    queueId: o.queueId,
    ringBase: toU64(o.ringBase, 'ringBase'),
    ringSize: o.ringSize,
    percentage: o.percentage,
    priority: o.priority,
    pm4TargetXcc: o.pm4TargetXcc ?? 0,
  };
}

/** What to do about a failed KFD ioctl, by operation and errno. */
export function kfdIoctlHint(op: string | undefined, code: string | undefined, phase?: string): string | undefined {
  if (phase === 'arguments') return 'nothing was sent to the kernel; take ring base and size from planKfdPriority() instead of guessing them';
  if (!op) return readHint(code, 'dev');
  if (code === 'ENOTTY') return 'not a KFD device: devPath must be /dev/kfd';
  if (code === 'EBADF' && op === 'UPDATE_QUEUE') return 'the /dev/kfd fd belongs to another process: UPDATE_QUEUE only acts on the calling process\'s own queues';
  if (op === 'UPDATE_QUEUE') {
    if (code === 'EFAULT') {
      return 'no queue with this id in this process, or (kernels of late 2025 on) ring base/size do not match a buffer mapped on the GPU: recover them with planKfdPriority()';
    }
    if (code === 'EINVAL') return 'an argument is out of range; kernels before GC 9.4.3 support also refuse a non-zero pm4TargetXcc';
  }
  if (op.startsWith('DBG_TRAP')) {
    if (code === 'EINVAL') {
      return 'KFD without the debugger API (ioctl < 1.13), a GPU without HWS (sched_policy=2), or this process is already being debugged (rocgdb)';
    }
    if (code === 'EALREADY') return 'this process is already being debugged (rocgdb, another tool): its session was left alone';
    if (code === 'ENODEV') return 'a GPU of this process does not support debugging (not SOC15)';
    if (code === 'EBUSY') return 'a queue holds GWS on a GPU without debug-GWS support, or PC sampling is active';
    if (code === 'EPERM' || code === 'EACCES') return 'the debugger API refused this process (ptrace rules, or a debug hardware operation before the runtime was enabled)';
  }
  return readHint(code, 'dev');
}

function rethrow(err: unknown, devPath: string | undefined, what: string): never {
  if (!(err instanceof Error) || errnoCode(err) === undefined || err instanceof TypeError || err instanceof RangeError) throw err;
  const f = err as Error & { code: string; errno?: number; syscall?: string; op?: string; phase?: 'arguments' | 'syscall'; disableCode?: string };
  const disableNote = f.disableCode ? ` — DBG_TRAP_DISABLE also failed (${f.disableCode}): this process is still debug-enabled` : '';
  const e = new GpucoloError(`${what}: ${f.message}${disableNote}`, {
    code: f.code,
    path: f.phase === 'syscall' ? devPath : undefined,
    hint: kfdIoctlHint(f.op, f.code, f.phase),
  }) as KfdIoctlError;
  Object.assign(e, { errno: f.errno, syscall: f.syscall, op: f.op, phase: f.phase });
  for (const k of ['debugEnabled', 'debugDisabled', 'disableCode'] as const) if (k in f) Object.assign(e, { [k]: (f as unknown as Record<string, unknown>)[k] });
  throw e;
}

/**
 * The AMDKFD_IOC_UPDATE_QUEUE arguments as they would be sent, checked like the kernel checks them
 * (native/kfd/kfd_ioctl.h BuildUpdateQueueArgs); no system call. Throws code EINVAL/EFAULT (what
 * the kernel would answer) with phase 'arguments'.
 */
export function updateQueueArgs(o: UpdateQueueOptions): UpdateQueueSent {
  const args = nativeArgs(o);
  const b = requireNative();
  try {
    return b.kfdUpdateQueueArgs(args);
  } catch (err) {
    rethrow(err, undefined, 'updateQueue');
  }
}

/**
 * AMDKFD_IOC_UPDATE_QUEUE on a queue of THIS process: sets its KFD priority (MQD queue priority,
 * and the pipe priority derived from it) directly.
 *
 * Know what it does:
 *  - only this process's own queues: the kernel ties a /dev/kfd fd to the process that opened it
 *    (another process's fd gives EBADF); there is no way to reach another process's queue.
 *  - it REPLACES ring base, ring size, percentage and priority together. To change only the
 *    priority pass the queue's current ring base and size (planKfdPriority() recovers them, or says
 *    why it cannot) and percentage 100. Wrong values point the queue at another ring.
 *  - under the hardware scheduler (the default) the kernel preempts EVERY user queue of EVERY
 *    process on that GPU, rewrites the MQD and maps a new runlist (a queue that does not preempt
 *    within queue_preemption_timeout_ms, default 9 s, sends the GPU into reset).
 *  - ROCr does not know: a later hsa_amd_queue_set_priority on the same queue overwrites it.
 * Errors: GpucoloError with Node's fields {code, errno, syscall, path} plus op, phase and a hint.
 */
export function updateQueue(o: UpdateQueueOptions): UpdateQueueSent {
  const args = nativeArgs(o);
  const devPath = o.devPath ?? '/dev/kfd';
  const b = requireNative();
  try {
    return b.kfdUpdateQueue(devPath, args);
  } catch (err) {
    rethrow(err, devPath, 'updateQueue');
  }
}

// ------------------------------------------------------------------------------ DBG_TRAP queue snapshot

export type QueueSnapshotEntry = NativeQueueSnapshotEntry;

export interface QueueSnapshotSelfOptions {
  /** default /dev/kfd */
  devPath?: string;
  /**
   * Must be true: enabling the debugger API on this process preempts every queue of every process
   * on each of its GPUs, twice (see queueSnapshotSelf).
   */
  acceptSideEffects: true;
}

export interface QueueSnapshotSelfResult extends NativeQueueSnapshotSelf {
  /** the process whose queues these are (this one) */
  pid: number;
}

/**
 * This process's KFD queues as KFD lists them — queue_id, gpu_id, ring base and size, queue type —
 * through the debugger API: DBG_TRAP ENABLE on itself, GET_QUEUE_SNAPSHOT, DISABLE.
 *
 * SIDE EFFECTS, hence acceptSideEffects: true (docs/kfd-formats.md#dbg_trap-queue-snapshot):
 *  - on MI200/MI300 (per-VMID debug: GC 9.4.2/9.4.3/9.4.4/9.5.0 and GC >= 11) ENABLE and DISABLE
 *    each refresh the runlist: ALL queues of ALL processes on the device are preempted and mapped
 *    again; GFXOFF is disabled and SPI debug programmed while enabled;
 *  - a thread of this process that initialises the ROCm runtime meanwhile blocks until DISABLE;
 *  - a process already under a debugger (rocgdb) is refused (EALREADY/EINVAL) and left alone.
 * No exception is raised or cleared (exception masks 0). A failed DISABLE is reported in the error
 * (disableCode): the process then stays debug-enabled.
 */
export function queueSnapshotSelf(opts: QueueSnapshotSelfOptions): QueueSnapshotSelfResult {
  if (opts?.acceptSideEffects !== true) {
    throw new GpucoloError('queueSnapshotSelf: refusing without acceptSideEffects: true', {
      code: 'ESIDEEFFECTS',
      hint: 'the debugger API preempts every queue of every process on the GPU (twice) and disables GFXOFF meanwhile; pass acceptSideEffects: true to go ahead',
    });
  }
  const devPath = opts.devPath ?? '/dev/kfd';
  const b = requireNative();
  try {
    return { pid: process.pid, ...b.kfdQueueSnapshotSelf(devPath) };
  } catch (err) {
    rethrow(err, devPath, 'queueSnapshotSelf');
  }
}

/** Entries of a GET_QUEUE_SNAPSHOT buffer laid out with stride entrySize (for tools and tests). */
export function parseQueueSnapshot(buf: Uint8Array, entrySize: number): { entries: QueueSnapshotEntry[]; error?: string } {
  return requireNative().parseKfdQueueSnapshot(buf, entrySize);
}
