/**
 * KFD checks during a dispatch run on AMD (issue 4, "priority hints that reach the hardware"):
 *  - verify: which KFD queues gpucolo's own streams landed on, their MQD pipe/queue priority and
 *    HQD slots, against what the mechanism asked for (stream-priority: HP high, LP low; the
 *    others: every stream Normal), as verifyOwnQueues() verdicts;
 *  - set (--kfd-priority N): AMDKFD_IOC_UPDATE_QUEUE on the HP stream's KFD queues, with ring
 *    parameters recovered by planKfdPriority() from sysfs + mqds, or the reason they cannot be.
 *    The debug queue snapshot (KFD's debugger API, DBG_TRAP on this process) gives ids and rings
 *    directly, but enabling it refreshes the runlist and preempts every queue of every process on
 *    the GPU (twice), so it is only used when asked for (allowDebugTrap, `--allow-debug-trap`).
 *
 * Which KFD queue belongs to the HP stream is only knowable by level: KFD does not say which
 * stream feeds which queue. Under `stream-priority` HP is the only HIP-high stream (the HIP
 * plugin's helper stream is high too; HIP may pool both onto one queue), so the queues at pipe
 * priority 2 are HP's. Under any other mechanism every stream is Normal and HP's queue cannot be
 * told apart: --kfd-priority then refuses and says so, instead of changing an LP queue.
 */
import fs from 'node:fs';
import type { DispatchMechanism } from '../native.js';
import { planKfdPriority, verifyOwnQueues, type ExpectedStream, type KfdPriorityPlan, type OwnQueuesReport } from '../kfd/priority.js';
import { snapshot, type SnapshotOptions } from '../kfd/snapshot.js';
import { queueSnapshotSelf, updateQueue, type QueueSnapshotEntry, type UpdateQueueOptions, type UpdateQueueSent } from '../kfd/ioctl.js';
import { GpucoloError } from '../errors.js';

export interface KfdCheckOptions {
  mechanism: DispatchMechanism;
  streams: readonly { name: string; highPriority: boolean }[];
  /** set the HP stream's KFD queues to this queue priority (0..15) before verifying */
  kfdPriority?: number;
  /**
   * with kfdPriority: also take the debug queue snapshot (queueSnapshotSelf, KFD's debugger API:
   * DBG_TRAP on this process), which refreshes the runlist and preempts every queue of every process
   * on the GPU. Without it (the default) ring parameters come from sysfs + mqds only, and a queue
   * they cannot pair with certainty is not set (with the reason).
   */
  allowDebugTrap?: boolean;
  /** the process (default this one; other pids only for fixture trees: the ioctl reaches own queues only) */
  pid?: number;
  snapshotOptions?: Omit<SnapshotOptions, 'pids'>;
  /** for tests: what sends UPDATE_QUEUE (default updateQueue on /dev/kfd) */
  update?: (o: UpdateQueueOptions) => UpdateQueueSent;
  /** for tests: the debug queue snapshot (default: queueSnapshotSelf; only with kfdPriority and allowDebugTrap) */
  debugSnapshot?: () => readonly QueueSnapshotEntry[];
}

export interface KfdSetResult {
  priority: number;
  /** the KFD queue ids taken for HP's */
  queueIds: number[];
  plans: KfdPriorityPlan[];
  /** queue ids UPDATE_QUEUE succeeded on */
  applied: number[];
  ok: boolean;
  lines: string[];
}

export interface KfdCheckResult {
  mechanism: DispatchMechanism;
  set: KfdSetResult | null;
  verify: OwnQueuesReport;
  ok: boolean;
  /** plain lines: what was set (or why not), the verdicts, the queues, the notes */
  lines: string[];
}

/** The HIP priority level each stream asked for under a mechanism (the engine's mapping). */
export function expectedLevels(mechanism: DispatchMechanism, streams: KfdCheckOptions['streams']): ExpectedStream[] {
  return streams.map((s) => ({ stream: s.name, level: mechanism === 'stream-priority' ? (s.highPriority ? 'high' : 'low') : 'normal' }));
}

/** Is there a KFD to check on this host (the sysfs node, under the given root)? */
export function kfdPresent(sysfsRoot = '/sys'): boolean {
  return fs.existsSync(`${sysfsRoot}/class/kfd/kfd/topology/nodes`);
}

function setHpPriority(o: KfdCheckOptions, priority: number, pid: number): KfdSetResult {
  const none = (line: string): KfdSetResult => ({ priority, queueIds: [], plans: [], applied: [], ok: false, lines: [line] });
  if (o.mechanism !== 'stream-priority') {
    return none(
      `--kfd-priority ${priority}: not set — under ${o.mechanism} every stream is HIP Normal, so KFD shows no queue that is only the HP stream's (KFD does not say which stream feeds which queue); use --mechanism stream-priority, which gives HP its own level, to set it`,
    );
  }
  const snap = snapshot({ ...o.snapshotOptions, pids: [pid] });
  const before = verifyOwnQueues({ pid, expected: expectedLevels(o.mechanism, o.streams), snapshot: snap });
  const high = before.verdicts.find((v) => v.level === 'high');
  const queueIds = (high?.qids ?? []).filter((q): q is number => q !== null);
  if (!before.checkable) return none(`--kfd-priority ${priority}: not set — ${before.reason}`);
  if (queueIds.length === 0) {
    return none(`--kfd-priority ${priority}: not set — no KFD queue of pid ${pid} with a sysfs id is at HIP high, so the HP stream's queue is not known (${high?.line ?? 'no verdict'})`);
  }
  let entries: readonly QueueSnapshotEntry[] | undefined;
  const lines: string[] = [];
  // where the ring parameters came from: said after the queues' lines
  let source: string;
  if (o.allowDebugTrap) {
    try {
      entries = o.debugSnapshot ? o.debugSnapshot() : queueSnapshotSelf({ acceptSideEffects: true }).entries;
      source = 'ring parameters from the debug queue snapshot (--allow-debug-trap: DBG_TRAP refreshed the runlist and preempted every queue of every process on the GPU)';
    } catch (err) {
      source = `debug queue snapshot unavailable (${(err as Error).message}); ring parameters from sysfs + mqds only`;
      lines.push(source);
      source = '';
    }
  } else {
    source = 'ring parameters from sysfs + mqds (the debug queue snapshot is not used without --allow-debug-trap: it preempts every queue of every process on the GPU)';
  }
  const plans = queueIds.map((queueId) => planKfdPriority({ pid, selfPid: pid, queueId, priority, snapshot: snap, debugSnapshot: entries }));
  const applied: number[] = [];
  const send = o.update ?? updateQueue;
  for (const p of plans) {
    if (!p.ok) {
      // what sysfs + mqds could not settle, the debug snapshot would: say so when it was not allowed
      const hint = !o.allowDebugTrap && !entries ? ' (--allow-debug-trap would read the ring from the debug queue snapshot, at the cost of preempting every queue on the GPU)' : '';
      lines.push(`queue ${p.queueId}: not set (${p.refusal}) — ${p.reason}${hint}`);
      continue;
    }
    try {
      send(p.args);
      applied.push(p.queueId);
      const was = p.current ? `pipe ${p.current.pipe}/queue ${p.current.queue}` : 'unknown';
      lines.push(`queue ${p.queueId}: set to queue priority ${p.after.queue} (pipe ${p.after.pipe}; was ${was}; ring ${p.args.ringBase} from ${p.from.ringBase})`);
    } catch (err) {
      const e = err as GpucoloError;
      lines.push(`queue ${p.queueId}: UPDATE_QUEUE failed: ${e.message}${e.hint ? ` (${e.hint})` : ''}`);
    }
  }
  if (source) lines.push(source);
  const ok = applied.length === queueIds.length;
  lines.unshift(`--kfd-priority ${priority}: ${applied.length} of ${queueIds.length} HP KFD queue(s) set${queueIds.length > 1 ? ' (the HIP plugin\'s high-priority helper stream may hold one of them)' : ''}`);
  return { priority, queueIds, plans, applied, ok, lines };
}

/**
 * Sets (optionally) and verifies the KFD priorities of this process's streams. Takes its own
 * snapshots; call it while the streams exist (mid-run), since HIP creates queues lazily and
 * KFD unmaps idle ones.
 */
export function kfdCheck(o: KfdCheckOptions): KfdCheckResult {
  const pid = o.pid ?? process.pid;
  const set = o.kfdPriority === undefined ? null : setHpPriority(o, o.kfdPriority, pid);
  const expected = expectedLevels(o.mechanism, o.streams);
  let verify = verifyOwnQueues({ pid, expected, snapshotOptions: o.snapshotOptions });
  if (set && set.applied.length > 0) {
    // after UPDATE_QUEUE the HP queues carry `priority`, not HIP high: check them against that
    const high = verify.verdicts.find((v) => v.level === 'high');
    const carrying = verify.queues.filter((q) => q.qid !== null && set.applied.includes(q.qid) && q.priority?.queue === set.priority);
    if (high && verify.checkable) {
      const okNow = carrying.length === set.applied.length;
      high.ok = okNow;
      high.line = okNow
        ? `high (HP, set by --kfd-priority): ok — queue(s) ${carrying.map((q) => q.qid).join(', ')} now at queue priority ${set.priority}`
        : `high (HP, set by --kfd-priority): MISMATCH — UPDATE_QUEUE returned success but the MQDs do not show queue priority ${set.priority}: ${verify.queueLines.join('; ')}`;
      verify = { ...verify, ok: verify.verdicts.every((v) => v.ok), lines: [...verify.verdicts.map((v) => v.line), ...verify.notes] };
    }
  }
  const lines = [...(set?.lines ?? []), ...verify.verdicts.map((v) => v.line), ...verify.queueLines.map((l) => `  ${l}`), ...verify.notes.map((n) => `note: ${n}`)];
  return { mechanism: o.mechanism, set, verify, ok: verify.ok && (set?.ok ?? true), lines };
}
