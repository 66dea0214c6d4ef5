/**
 * Priority hints that reach the hardware (AMD), issue 4.
 *
 *  - expectedKfdPriority: what a HIP stream priority becomes in KFD (docs/queue-model.md#priorities).
 *  - verifyOwnQueues: does the KFD snapshot of a process show queues at the priorities its streams
 *    asked for, and are they mapped? Matched by level counts, not stream by stream (see there).
 *  - planKfdPriority: the AMDKFD_IOC_UPDATE_QUEUE arguments that set one of gpucolo's OWN queues
 *    to a KFD priority, with the queue's ring base and size recovered from what the kernel shows —
 *    or the reason they cannot be recovered. Ring parameters are never guessed: UPDATE_QUEUE
 *    replaces them together with the priority, so a wrong guess moves the queue onto another ring.
 */
import { priorityLevel } from './decode.js';
import type { SnapshotHqd, SnapshotQueue } from './join.js';
import { snapshot, type QueueSnapshot, type SnapshotOptions, type SourceStatus } from './snapshot.js';
import type { QueueSnapshotEntry, UpdateQueueOptions } from './ioctl.js';
import { outOfRange } from '../errors.js';

export type HipPriority = 'high' | 'normal' | 'low';
/** ROCr before / after it mapped HSA HIGH to HSA_QUEUE_PRIORITY_HIGH instead of MAXIMUM */
export type RocrGeneration = 'old' | 'new';

export interface KfdPriority {
  /** MQD cp_hqd_queue_priority (0..15) */
  queue: 15 | 11 | 7 | 0;
  /** MQD cp_hqd_pipe_priority: 0 low, 1 medium, 2 high */
  pipe: 2 | 1 | 0;
}

/** ROCclr reuses a HW queue once this many exist for a priority (rocclr/utils/flags.hpp default). */
export const GPU_MAX_HW_QUEUES = 4;

/** pipe_priority_map[] of kfd_mqd_manager.c: 0-6 low, 7-10 medium, 11-15 high. */
export function pipePriorityOf(queuePriority: number): 0 | 1 | 2 {
  return queuePriority <= 6 ? 0 : queuePriority <= 10 ? 1 : 2;
}

/**
 * The KFD queue priority a HIP stream priority ends up as (docs/queue-model.md#priorities): HIP High -> HSA HIGH ->
 * libhsakmt priority_map[] 15 (old ROCr: HSA_QUEUE_PRIORITY_MAXIMUM) or 11 (new ROCr:
 * HSA_QUEUE_PRIORITY_HIGH, "MAXIMUM is reserved for PC sampling"); Normal -> 7 (ROCr's default, no
 * set_priority call); Low -> 0. Pipe priority from pipe_priority_map[]. Default generation: new.
 */
export function expectedKfdPriority(hipPriority: HipPriority, rocrGeneration: RocrGeneration = 'new'): KfdPriority {
  switch (hipPriority) {
    case 'high':
      return rocrGeneration === 'old' ? { queue: 15, pipe: 2 } : { queue: 11, pipe: 2 };
    case 'normal':
      return { queue: 7, pipe: 1 };
    case 'low':
      return { queue: 0, pipe: 0 };
    default:
      throw outOfRange(`unknown HIP priority ${String(hipPriority)} (high, normal or low)`, 'ERR_INVALID_ARG_VALUE');
  }
}

// ------------------------------------------------------------------------------------ verify

export interface ExpectedStream {
  /** a name for the stream, for the report */
  stream: string;
  level: HipPriority;
}

export interface VerifyOwnQueuesOptions {
  /** the process to check (default this one; KFD lists host pids, so in a container pass the host pid) */
  pid?: number;
  expected: readonly ExpectedStream[];
  /** narrows HIP high to 15 (old) or 11 (new); unset: either */
  rocrGeneration?: RocrGeneration;
  /** roots and parser choice for snapshot() (pids is set to [pid]) */
  snapshotOptions?: Omit<SnapshotOptions, 'pids'>;
  /** a snapshot already taken (then snapshotOptions is not used) */
  snapshot?: QueueSnapshot;
}

/** One KFD queue of the process as the verdicts see it. */
export interface OwnQueue {
  qid: number | null;
  type: string;
  aql: boolean | null;
  gpuId: string | null;
  /** MQD pipe/queue priority; null when debugfs was not readable (or an SDMA queue) */
  priority: { pipe: number; queue: number; level: 'low' | 'normal' | 'high' | null } | null;
  /** HQD slots holding the queue's MQDs (one per XCC when mapped) */
  hqds: SnapshotHqd[];
  activeHqds: number;
  /** holds at least one active HQD (SDMA: an active RLC slot); null when hqds was not readable */
  mapped: boolean | null;
  inRunlist: boolean | null;
  /** SDMA queues: the engine/RLC slot holding it */
  sdma: { engine: number; rlc: number; active: boolean | null } | null;
}

export interface LevelVerdict {
  level: HipPriority;
  /** the streams that asked for this level */
  streams: string[];
  /** what KFD should show: the pipe priority, and the acceptable queue priorities */
  expected: { pipe: number; queue: number[] };
  /** compute queues of the process at that pipe priority */
  qids: (number | null)[];
  /** at most this many distinct KFD queues can serve these streams: min(streams, GPU_MAX_HW_QUEUES) */
  maxQueues: number;
  /** a queue with that priority exists; null when priorities could not be read */
  exists: boolean | null;
  /** one of them holds active HQDs; null when unknown */
  mapped: boolean | null;
  ok: boolean;
  /** one plain line: ok, or what does not match */
  line: string;
}

export interface OwnQueuesReport {
  pid: number;
  /** MQD priorities were readable (debugfs mqds) */
  checkable: boolean;
  /** why not, when !checkable */
  reason?: string;
  /** the process's KFD queues (compute and SDMA) */
  queues: OwnQueue[];
  verdicts: LevelVerdict[];
  /** every verdict is ok */
  ok: boolean;
  /** one line per queue: qid, type, priority, HQD slots */
  queueLines: string[];
  /** what the matching cannot say (pooling, extra queues, ...) */
  notes: string[];
  /** the plain verdict list: verdict lines, then notes */
  lines: string[];
}

const LEVELS: HipPriority[] = ['high', 'normal', 'low'];
const POOLING_NOTE =
  `matched by level counts, not stream by stream: HIP pools streams onto at most GPU_MAX_HW_QUEUES=${GPU_MAX_HW_QUEUES} KFD queues per priority ` +
  '(and adds queues of its own, e.g. for the null stream), and KFD does not say which stream feeds which queue';

function ownQueue(q: SnapshotQueue, hqdsRead: boolean): OwnQueue {
  const active = q.hqds.filter((h) => h.active === true).length;
  const isSdma = q.type.startsWith('sdma');
  return {
    qid: q.qid,
    type: q.type,
    aql: q.aql,
    gpuId: q.gpuId,
    priority: q.priority,
    hqds: q.hqds,
    activeHqds: active,
    // SDMA queues sit in SDMA RLC slots, not HQDs
    mapped: !hqdsRead ? null : isSdma ? (q.sdma ? q.sdma.active : q.inRunlist) : active > 0 ? true : q.hqds.some((h) => h.active === null) ? null : false,
    inRunlist: q.inRunlist,
    sdma: q.sdma ? { engine: q.sdma.engine, rlc: q.sdma.rlc, active: q.sdma.active } : null,
  };
}

function qidText(qid: number | null): string {
  return qid === null ? 'a queue without sysfs id' : `queue ${qid}`;
}

function queueLine(q: OwnQueue): string {
  const kind = q.type === 'compute' ? `compute${q.aql === true ? ' (AQL)' : q.aql === false ? ' (PM4)' : ''}` : q.type;
  const isSdma = q.type.startsWith('sdma');
  const prio = q.priority
    ? `pipe priority ${q.priority.pipe}, queue priority ${q.priority.queue} (${q.priority.level ?? '?'})`
    : isSdma
      ? 'no queue priority (SDMA)'
      : 'priority unknown';
  const slots = isSdma
    ? q.sdma
      ? `SDMA engine ${q.sdma.engine} RLC ${q.sdma.rlc}${q.sdma.active === true ? '' : q.sdma.active === null ? ' (active unknown)' : ' (inactive)'}`
      : q.mapped === null
        ? 'SDMA slot unknown'
        : 'no SDMA slot'
    : q.hqds.length
    ? `HQDs ${q.hqds.map((h) => `inst${h.inst}/pipe${h.pipe}/queue${h.queue}${h.active ? '' : ' (inactive)'}`).join(', ')}`
    : q.mapped === null
      ? 'HQDs unknown'
      : 'no HQD';
  return `${q.qid === null ? 'qid ?' : `qid ${q.qid}`} ${kind} on gpu ${q.gpuId ?? '?'}: ${prio}; ${slots}`;
}

/** Why priorities cannot be read, from the mqds source status. */
function unreadableReason(src: SourceStatus): string {
  if (src.skipped) return `priorities cannot be checked: debugfs was not read (only sysfs was asked for); the MQD priorities are in ${src.path}, which needs root`;
  if (src.code === 'EACCES' || src.code === 'EPERM') return `priorities cannot be checked without root: ${src.path} is root-only (${src.code}); run with sudo`;
  return `priorities cannot be checked without root and a KFD debugfs: ${src.path} could not be read (${src.code ?? 'error'}${src.hint ? `: ${src.hint}` : ''})`;
}

function tailFor(level: HipPriority): string {
  if (level === 'high') return 'the runtime may map HIP high to 11 (new ROCr) or ignore it';
  if (level === 'low') return 'the runtime may ignore HIP low';
  return 'HIP normal is ROCr\'s default (queue priority 7, pipe 1)';
}

/** What verifyOwnQueues' steps share: the pid's snapshot and queues, and the notes so far. */
interface VerifyCtx {
  opts: VerifyOwnQueuesOptions;
  pid: number;
  snap: QueueSnapshot;
  proc: QueueSnapshot['processes'][number] | undefined;
  hqdsRead: boolean;
  queues: OwnQueue[];
  /** MQD priorities were readable */
  checkable: boolean;
  reason: string | undefined;
  /** the user compute queues (compute and diq) */
  compute: OwnQueue[];
  notes: string[];
}

/** Step 1: takes (or uses) the snapshot of the pid and lists its queues. */
function readOwnQueues(opts: VerifyOwnQueuesOptions): VerifyCtx {
  const pid = opts.pid ?? process.pid;
  const snap = opts.snapshot ?? snapshot({ ...opts.snapshotOptions, pids: [pid] });
  const proc = snap.processes.find((p) => p.pid === pid);
  const hqdsRead = snap.sources.hqds.ok;
  const queues = (proc?.queues ?? []).map((q) => ownQueue(q, hqdsRead));
  const checkable = snap.sources.mqds.ok;
  const reason = checkable ? undefined : unreadableReason(snap.sources.mqds);
  const compute = queues.filter((q) => q.type === 'compute' || q.type === 'diq');
  return { opts, pid, snap, proc, hqdsRead, queues, checkable, reason, compute, notes: [POOLING_NOTE] };
}

/** Step 2: notes what the snapshot cannot show (no KFD process for the pid, HQD slots unreadable). */
function noteSnapshotGaps(c: VerifyCtx): void {
  const { pid, snap, proc, hqdsRead, checkable, notes } = c;
  if (!proc) {
    const where = snap.sources.procs.ok || checkable ? 'in sysfs or debugfs' : 'anywhere (sysfs and debugfs both unreadable)';
    notes.push(
      `pid ${pid} has no KFD process ${where}: it has not opened /dev/kfd yet${pid === process.pid ? ', or runs in a container (KFD lists host pids: pass pid)' : ''}`,
    );
  }
  if (!hqdsRead && checkable) notes.push(`HQD slots unknown: ${snap.sources.hqds.path} could not be read (${snap.sources.hqds.code ?? 'skipped'}), so "mapped" cannot be checked`);
}

/** Step 3: the verdict on one level (undefined when no stream asked for it): not checked, or a mismatch, or found. */
function levelVerdict(c: VerifyCtx, level: HipPriority): LevelVerdict | undefined {
  const { opts, pid, checkable, reason, compute } = c;
  const streams = opts.expected.filter((e) => e.level === level).map((e) => e.stream);
  if (streams.length === 0) return undefined;
  const want = expectedKfdPriority(level, opts.rocrGeneration ?? 'new');
  const acceptable = level === 'high' && !opts.rocrGeneration ? [11, 15] : [want.queue];
  const who = `${level} (${streams.length === 1 ? 'stream' : 'streams'} ${streams.join(', ')})`;
  const maxQueues = Math.min(streams.length, GPU_MAX_HW_QUEUES);
  const base = { level, streams, expected: { pipe: want.pipe, queue: acceptable }, maxQueues };

  if (!checkable) return { ...base, qids: [], exists: null, mapped: null, ok: false, line: `${who}: not checked — ${reason}` };
  const atPipe = compute.filter((q) => q.priority?.pipe === want.pipe);
  const exact = atPipe.filter((q) => acceptable.includes(q.priority!.queue));
  const others = compute.length
    ? `its compute queues: ${compute.map((q) => `${qidText(q.qid)} pipe ${q.priority?.pipe ?? '?'}/queue ${q.priority?.queue ?? '?'}`).join(', ')}`
    : `it has no compute queue`;
  if (atPipe.length === 0) {
    return {
      ...base,
      qids: [],
      exists: false,
      mapped: null,
      ok: false,
      line: `${who}: MISMATCH — asked for ${level}, but no KFD queue of pid ${pid} has pipe priority ${want.pipe} — ${tailFor(level)}; ${others}`,
    };
  }
  if (exact.length === 0) {
    const seen = [...new Set(atPipe.map((q) => q.priority!.queue))].join('/');
    const gen = opts.rocrGeneration === 'old' && seen === '11' ? ' — this runtime maps HIP high to 11 (new ROCr)' : opts.rocrGeneration === 'new' && seen === '15' ? ' — this runtime maps HIP high to 15 (old ROCr)' : '';
    return {
      ...base,
      qids: atPipe.map((q) => q.qid),
      exists: false,
      mapped: null,
      ok: false,
      line: `${who}: MISMATCH — asked for ${level} (queue priority ${acceptable.join(' or ')}), but pid ${pid}'s queues at pipe priority ${want.pipe} have queue priority ${seen}${gen}`,
    };
  }
  return foundVerdict(c, level, streams, base, who, exact);
}

/** Step 3b: the verdict when queues with the asked priority exist (ok, or not mapped); notes on their count. */
function foundVerdict(c: VerifyCtx, level: HipPriority, streams: string[], base: Omit<LevelVerdict, 'qids' | 'exists' | 'mapped' | 'ok' | 'line'>, who: string, exact: OwnQueue[]): LevelVerdict {
  const { pid, hqdsRead, notes } = c;
  const { maxQueues } = base;
  const pipe = base.expected.pipe;
  const mappedQs = exact.filter((q) => q.mapped === true);
  const mapped = hqdsRead ? mappedQs.length > 0 : null;
  const list = exact.map((q) => `${qidText(q.qid)} (queue priority ${q.priority!.queue}, ${q.mapped === null ? 'mapping unknown' : q.mapped ? `mapped on ${q.activeHqds} HQD${q.activeHqds === 1 ? '' : 's'}` : 'not mapped'})`).join(', ');
  const n = `${exact.length} KFD queue${exact.length === 1 ? '' : 's'} with pipe priority ${pipe}`;
  let line: string;
  if (mapped === false) {
    line = `${who}: NOT MAPPED — pid ${pid} has ${n}: ${list}; none holds an active HQD now (idle or evicted queues are unmapped; an oversubscribed HWS leaves some out)`;
  } else {
    line = `${who}: ok — pid ${pid} has ${n}: ${list}`;
  }
  const verdict: LevelVerdict = { ...base, qids: exact.map((q) => q.qid), exists: true, mapped, ok: mapped !== false, line };
  if (exact.length < maxQueues) {
    notes.push(`${level}: ${streams.length} stream(s) asked, ${exact.length} KFD queue(s) carry it — streams can share a queue, so this alone is no mismatch`);
  }
  if (exact.length > GPU_MAX_HW_QUEUES) {
    notes.push(`${level}: ${exact.length} KFD queues, more than GPU_MAX_HW_QUEUES=${GPU_MAX_HW_QUEUES}: other streams or runtime queues of the process, or GPU_MAX_HW_QUEUES was raised`);
  }
  return verdict;
}

/** Step 4: notes compute queues at priorities no asked level maps to. */
function noteExtraQueues(c: VerifyCtx, verdicts: LevelVerdict[]): void {
  if (!c.checkable) return;
  const asked = new Set(verdicts.map((v) => v.expected.pipe));
  const extra = c.compute.filter((q) => q.priority && !asked.has(q.priority.pipe));
  if (extra.length) {
    c.notes.push(`KFD queues at levels nobody asked for: ${extra.map((q) => `${qidText(q.qid)} (${q.priority!.level ?? `pipe ${q.priority!.pipe}`})`).join(', ')} — the runtime's own queues, or other streams`);
  }
}

/**
 * Verifies that a process's KFD queues carry the priorities its HIP streams asked for: takes a
 * snapshot of the pid (sysfs + debugfs, the latter needs root), lists its KFD queues with their
 * MQD pipe/queue priority and HQD slots, and gives one verdict per asked level: does a compute
 * queue with that pipe priority exist (and, with rocrGeneration, that exact queue priority), and
 * is it mapped (holds active HQDs)? Anything else is a mismatch line, e.g. "asked for high, but no
 * KFD queue of pid N has pipe priority 2 — the runtime may map HIP high to 11 (new ROCr) or ignore
 * it".
 *
 * Matched by level counts, not 1:1: HIP pools streams onto at most GPU_MAX_HW_QUEUES (4) KFD
 * queues per priority and KFD does not say which stream uses which queue, so N streams at a level
 * need between 1 and min(N, 4) queues at that level; fewer queues than streams is reported as a
 * note, not a mismatch. When debugfs is unreadable the report says priorities cannot be checked
 * (without root) and lists the queues sysfs shows.
 */
export function verifyOwnQueues(opts: VerifyOwnQueuesOptions): OwnQueuesReport {
  const c = readOwnQueues(opts);
  const { pid, queues, checkable, reason, notes } = c;
  noteSnapshotGaps(c);
  const verdicts: LevelVerdict[] = [];
  for (const level of LEVELS) {
    const v = levelVerdict(c, level);
    if (v) verdicts.push(v);
  }
  noteExtraQueues(c, verdicts);
  const queueLines = queues.map(queueLine);
  return {
    pid,
    checkable,
    ...(reason ? { reason } : {}),
    queues,
    verdicts,
    ok: verdicts.length > 0 && verdicts.every((v) => v.ok),
    queueLines,
    notes,
    lines: [...verdicts.map((v) => v.line), ...notes],
  };
}

// ------------------------------------------------------------------------------------ plan

export interface PlanKfdPriorityOptions {
  /** the process owning the queue (default this one); anything but selfPid is refused */
  pid?: number;
  /** KFD queue id (sysfs proc/<pid>/queues/<qid>) */
  queueId: number;
  /** KFD queue priority 0..15 */
  priority: number;
  /**
   * This process's pid as KFD lists it (default process.pid). Only for replaying another host's
   * tree (fixtures) or a container whose KFD pid differs; it does not make the ioctl reach another
   * process.
   */
  selfPid?: number;
  snapshotOptions?: Omit<SnapshotOptions, 'pids'>;
  /** a snapshot already taken */
  snapshot?: QueueSnapshot;
  /** entries of queueSnapshotSelf(): KFD's own queue ids and rings, preferred over the MQD */
  debugSnapshot?: readonly QueueSnapshotEntry[] | { entries: readonly QueueSnapshotEntry[] };
}

export type PlanRefusal =
  | 'bad-priority'
  | 'not-own-pid'
  | 'no-such-queue'
  | 'not-compute'
  | 'pm4-queue'
  | 'ambiguous-queue-id'
  | 'ring-base-unknown'
  | 'ring-size-unknown'
  | 'inconsistent';

export interface KfdPriorityPlanOk {
  ok: true;
  pid: number;
  queueId: number;
  gpuId: string | null;
  /** for updateQueue() (add devPath if not /dev/kfd) */
  args: Required<Omit<UpdateQueueOptions, 'devPath' | 'ringBase'>> & { ringBase: string };
  /** where each ring parameter came from */
  from: { ringBase: 'mqds' | 'debug-snapshot'; ringSize: 'sysfs' | 'debug-snapshot'; queueId: 'sysfs+mqds (unique)' | 'sysfs+mqds (history)' | 'debug-snapshot' };
  /** MQD priority now, when debugfs was readable */
  current: { pipe: number; queue: number } | null;
  after: { pipe: number; queue: number };
  /** the queue already has this priority */
  noop: boolean;
  /** what the ioctl will do besides setting the priority */
  cautions: string[];
}

export interface KfdPriorityPlanRefused {
  ok: false;
  pid: number;
  queueId: number;
  refusal: PlanRefusal;
  reason: string;
}

export type KfdPriorityPlan = KfdPriorityPlanOk | KfdPriorityPlanRefused;

function isEntryList(d: NonNullable<PlanKfdPriorityOptions['debugSnapshot']>): d is readonly QueueSnapshotEntry[] {
  return Array.isArray(d);
}

const isPow2 = (n: number): boolean => Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0 && n <= 0x80000000;

/**
 * The AMDKFD_IOC_UPDATE_QUEUE arguments that give one of gpucolo's OWN KFD queues `priority`, or
 * why they cannot be had. UPDATE_QUEUE replaces ring base, size, percentage and priority together,
 * so the queue's current ring must be known exactly:
 *  - from a debug queue snapshot (queueSnapshotSelf(), passed as debugSnapshot): KFD's own
 *    queue_id -> ring_base_address/ring_size, exact; preferred;
 *  - else from the MQD (debugfs mqds, root: ring base = cp_hqd_pq_base << 8) with the ring size
 *    from sysfs proc/<pid>/queues/<qid>/size — only when the sysfs queue id is tied to that MQD
 *    without doubt (the process has one compute queue on that GPU). With several, the join pairs
 *    ids and MQDs by creation order, which KFD's id reuse can break: refused ('ambiguous-queue-id'),
 *    not guessed.
 * Refused too: another pid (the ioctl only reaches the caller's queues), SDMA queues (no priority
 * in their MQD), PM4 queues (their pm4_target_xcc cannot be recovered), priorities outside 0..15.
 * Percentage is always 100 (ROCr's value for a live queue).
 */
export function planKfdPriority(opts: PlanKfdPriorityOptions): KfdPriorityPlan {
  const pid = opts.pid ?? process.pid;
  const queueId = opts.queueId;
  const refuse = (refusal: PlanRefusal, reason: string): KfdPriorityPlanRefused => ({ ok: false, pid, queueId, refusal, reason });
  const bad = checkPlanArgs(opts, pid, refuse);
  if (bad) return bad;
  const c = findQueue(opts, pid, refuse);
  const unfit = missingQueue(c) ?? checkQueueKind(c);
  if (unfit) return unfit;
  const ring = c.de ? ringFromDebugSnapshot(c) : ringFromMqd(c);
  if ('ok' in ring) return ring;
  const badRing = checkRing(c, ring.ringBase, ring.ringSize);
  if (badRing) return badRing;
  return buildPlan(c, ring);
}

/** What planKfdPriority's steps share: the asked queue as the snapshot and the debug snapshot show it, and the cautions so far. */
interface PlanCtx {
  opts: PlanKfdPriorityOptions;
  pid: number;
  queueId: number;
  refuse: (refusal: PlanRefusal, reason: string) => KfdPriorityPlanRefused;
  /** the debug snapshot's entries, when given */
  dbgEntries: readonly QueueSnapshotEntry[] | null;
  /** the debug snapshot's entry of the queue */
  de: QueueSnapshotEntry | null;
  snap: QueueSnapshot;
  proc: QueueSnapshot['processes'][number] | undefined;
  /** the snapshot's queue with that id */
  q: SnapshotQueue | null;
  cautions: string[];
}

/** Step 1: refuses a priority outside 0..15, a queue id that is no u32, another pid. */
function checkPlanArgs(opts: PlanKfdPriorityOptions, pid: number, refuse: PlanCtx['refuse']): KfdPriorityPlanRefused | null {
  const selfPid = opts.selfPid ?? process.pid;
  const queueId = opts.queueId;
  if (!Number.isInteger(opts.priority) || opts.priority < 0 || opts.priority > 15) {
    return refuse('bad-priority', `priority ${opts.priority} is not a KFD queue priority (0..15; the kernel answers EINVAL)`);
  }
  if (!Number.isInteger(queueId) || queueId < 0 || queueId > 0xffffffff) {
    return refuse('no-such-queue', `queue id ${queueId} is not a KFD queue id (an unsigned 32-bit integer)`);
  }
  if (pid !== selfPid) {
    return refuse(
      'not-own-pid',
      `pid ${pid} is not gpucolo (pid ${selfPid}): AMDKFD_IOC_UPDATE_QUEUE acts only on the calling process's own queues (the kernel refuses another process's /dev/kfd fd with EBADF)`,
    );
  }
  return null;
}

/** Step 2: finds the queue in the debug snapshot (if given) and in the snapshot of the pid (taken here unless given). */
function findQueue(opts: PlanKfdPriorityOptions, pid: number, refuse: PlanCtx['refuse']): PlanCtx {
  const queueId = opts.queueId;
  const ds = opts.debugSnapshot;
  const dbgEntries: readonly QueueSnapshotEntry[] | null = ds ? (isEntryList(ds) ? ds : ds.entries) : null;
  const de = dbgEntries?.find((e) => e.queueId === queueId) ?? null;
  const snap = opts.snapshot ?? snapshot({ ...opts.snapshotOptions, pids: [pid] });
  const proc = snap.processes.find((p) => p.pid === pid);
  const q = proc?.queues.find((x) => x.qid === queueId) ?? null;
  return { opts, pid, queueId, refuse, dbgEntries, de, snap, proc, q, cautions: [] };
}

/** Step 3a: refuses when neither source shows the queue (saying which queues there are). */
function missingQueue(c: PlanCtx): KfdPriorityPlanRefused | null {
  const { pid, queueId, refuse, dbgEntries, de, snap, proc, q } = c;
  if (!q && !de) {
    if (!snap.sources.procs.ok && !dbgEntries) {
      return refuse('no-such-queue', `queue ids are not visible: ${snap.sources.procs.path} could not be read (${snap.sources.procs.code ?? 'skipped'}) and no debug queue snapshot was given`);
    }
    const have = [
      ...(proc?.queues ?? []).map((x) => (x.qid === null ? null : `${x.qid} (${x.type})`)).filter((x): x is string => x !== null),
      ...(dbgEntries ?? []).filter((e) => e.queueId !== undefined).map((e) => `${e.queueId} (${e.type ?? '?'}, debug snapshot)`),
    ];
    return refuse('no-such-queue', `pid ${pid} has no KFD queue ${queueId}${have.length ? `; its queues: ${[...new Set(have)].join(', ')}` : ' (no KFD queues seen)'}`);
  }
  return null;
}

/** Step 3b: refuses SDMA, non-compute and PM4 queues. */
function checkQueueKind(c: PlanCtx): KfdPriorityPlanRefused | null {
  const { queueId, refuse, de, q } = c;
  // kind of queue
  const sdma = (q && q.type.startsWith('sdma')) || (de?.type !== undefined && de.type.startsWith('sdma'));
  if (sdma) {
    return refuse('not-compute', `queue ${queueId} is an SDMA queue (${q?.type ?? de?.type}): SDMA MQDs carry no queue priority, UPDATE_QUEUE would only rewrite its ring`);
  }
  if ((q && q.type !== 'compute' && q.type !== 'diq') || (de?.type !== undefined && !de.type.startsWith('compute'))) {
    return refuse('not-compute', `queue ${queueId} is of type ${q?.type ?? de?.type}, not a user compute queue`);
  }
  if (q?.aql === false || de?.type === 'compute-pm4') {
    return refuse('pm4-queue', `queue ${queueId} is a PM4 compute queue: UPDATE_QUEUE also sets its pm4_target_xcc, which no snapshot shows, so it would be guessed`);
  }
  return null;
}

/** The queue's current ring (what UPDATE_QUEUE must send back unchanged) and where it came from. */
interface PlanRing {
  ringBase: string;
  ringSize: number;
  from: KfdPriorityPlanOk['from'];
}

/** Step 4a: the ring from the debug snapshot entry (c.de set), cross-checked with the snapshot. */
function ringFromDebugSnapshot(c: PlanCtx): PlanRing | KfdPriorityPlanRefused {
  const { queueId, refuse, proc, q, cautions } = c;
  const de = c.de!;
  if (de.ringBase !== undefined && de.ringSize !== undefined) {
    const ringBase = de.ringBase;
    const ringSize = de.ringSize;
    const from: KfdPriorityPlanOk['from'] = { ringBase: 'debug-snapshot', ringSize: 'debug-snapshot', queueId: 'debug-snapshot' };
    // cross-checks with what sysfs/debugfs said (taken at another moment)
    if (q && q.sizeBytes !== null && q.sizeBytes !== ringSize) {
      return refuse('inconsistent', `queue ${queueId}: sysfs says ring size ${q.sizeBytes}, the debug snapshot ${ringSize} — the queue changed between the reads; take both again`);
    }
    if (q && q.ringBase !== null && BigInt(q.ringBase) !== BigInt(ringBase)) {
      const other = proc?.queues.find((x) => x.ringBase !== null && BigInt(x.ringBase) === BigInt(ringBase));
      cautions.push(
        `the sysfs/mqds join paired queue ${queueId} with the MQD of ring ${q.ringBase}${other ? ` (ring ${ringBase} is the MQD it gave queue ${other.qid ?? '?'})` : ''}; the debug snapshot's queue id is KFD's own and wins`,
      );
    }
    return { ringBase, ringSize, from };
  }
  return refuse('ring-base-unknown', `the debug snapshot entry of queue ${queueId} has no ring (KFD returned ${de.validBytes}-byte entries)`);
}

/** Step 4b: the ring from the MQD (base) and sysfs (size), only when the queue id is tied to that MQD without doubt. */
function ringFromMqd(c: PlanCtx): PlanRing | KfdPriorityPlanRefused {
  const { pid, queueId, refuse, snap, proc, cautions } = c;
  // q is set here (missingQueue refused the case with neither q nor de)
  const sq = c.q!;
  if (sq.ringBase === null || sq.source === 'sysfs') {
    const m = snap.sources.mqds;
    return refuse(
      'ring-base-unknown',
      `the ring base of queue ${queueId} is only in its MQD (debugfs, root) or a debug queue snapshot: ${m.ok ? 'mqds shows no MQD for it' : `${m.path} could not be read (${m.skipped ? 'not asked for' : (m.code ?? 'error')})`}; pass debugSnapshot from queueSnapshotSelf() or run as root`,
    );
  }
  if (sq.qidMatch === 'creation-order') {
    const peers = (proc?.queues ?? []).filter((x) => x.gpuId === sq.gpuId && (x.type === 'compute' || x.type === 'diq')).length;
    return refuse(
      'ambiguous-queue-id',
      `queue id ${queueId} was paired with its MQD by creation order (pid ${pid} has ${peers} compute queues on gpu ${sq.gpuId ?? '?'}): KFD reuses freed ids, so the ring base ${sq.ringBase} may belong to another queue; a debug queue snapshot (queueSnapshotSelf({ acceptSideEffects: true })) gives ids and rings directly`,
    );
  }
  if (sq.qidMatch !== 'unique' && sq.qidMatch !== 'history') {
    return refuse('ambiguous-queue-id', `queue id ${queueId} is not tied to an MQD (${sq.qidMatch})`);
  }
  if (sq.sizeBytes === null) {
    return refuse('ring-size-unknown', `the ring size of queue ${queueId} could not be read from sysfs (proc/${pid}/queues/${queueId}/size)`);
  }
  const ringBase = sq.ringBase;
  const ringSize = sq.sizeBytes;
  const from: KfdPriorityPlanOk['from'] = { ringBase: 'mqds', ringSize: 'sysfs', queueId: sq.qidMatch === 'unique' ? 'sysfs+mqds (unique)' : 'sysfs+mqds (history)' };
  cautions.push(`ring base from the MQD (cp_hqd_pq_base << 8), ring size from sysfs; queue ${queueId} is pid ${pid}'s only compute queue on gpu ${sq.gpuId ?? '?'}, so the id and the MQD belong together`);
  return { ringBase, ringSize, from };
}

/** Step 5: refuses a ring size the ioctl cannot carry and a misaligned ring base. */
function checkRing(c: PlanCtx, ringBase: string, ringSize: number): KfdPriorityPlanRefused | null {
  const { queueId, refuse } = c;
  if (!isPow2(ringSize)) {
    return refuse('ring-size-unknown', `ring size ${ringSize} of queue ${queueId} is not a power of two the ioctl can carry (u32): refusing rather than sending something else`);
  }
  if ((BigInt(ringBase) & 0xffn) !== 0n) {
    return refuse('inconsistent', `ring base ${ringBase} of queue ${queueId} is not 256-byte aligned: no live ring can be there`);
  }
  return null;
}

/** Step 6: the plan: ioctl arguments, priority now and after, and the cautions of the call. */
function buildPlan(c: PlanCtx, ring: PlanRing): KfdPriorityPlanOk {
  const { opts, pid, queueId, de, snap, q, cautions } = c;
  const { ringBase, ringSize, from } = ring;
  const current = q?.priority ? { pipe: q.priority.pipe, queue: q.priority.queue } : null;
  const after = { pipe: pipePriorityOf(opts.priority), queue: opts.priority };
  const gpuId = q?.gpuId ?? (de?.gpuId !== undefined ? de.gpuId.toString(16) : null);
  cautions.push(
    'UPDATE_QUEUE replaces ring base, ring size, percentage and priority together: these are the queue\'s current ring and percentage 100',
    `under the hardware scheduler the kernel preempts every user queue of every process on gpu ${gpuId ?? '?'} while it rewrites the MQD`,
    'ROCr is not told: a later hsa_amd_queue_set_priority on this queue sets its own priority again',
  );
  if (q && q.source !== 'sysfs' && snap.sources.hqds.ok && !q.hqds.some((h) => h.active)) {
    cautions.push(`queue ${queueId} holds no active HQD now: percentage 100 makes it active again if the runtime had deactivated it (ROCr's Suspend sets percentage 0)`);
  }
  const noop = current !== null && current.queue === opts.priority && current.pipe === after.pipe;
  if (noop) cautions.push(`queue ${queueId} already has queue priority ${opts.priority} (pipe ${after.pipe}): the call would change nothing but still preempt the device`);
  if (priorityLevel(after.pipe, after.queue) === 'high' && opts.priority === 15) {
    cautions.push('queue priority 15 is what old ROCr used for HIP high; new ROCr keeps 15 (HSA MAXIMUM) for PC sampling');
  }

  return {
    ok: true,
    pid,
    queueId,
    gpuId,
    args: { queueId, ringBase, ringSize, percentage: 100, priority: opts.priority, pm4TargetXcc: 0 },
    from,
    current,
    after,
    noop,
    cautions,
  };
}
