/**
 * The queue model: joins what debugfs (mqds, hqds, rls) and sysfs (topology, proc) say into one
 * picture per process and per node (docs/queue-model.md).
 *
 *  - HQD -> queue: an HQD slot's CP_MQD_BASE_ADDR equals dw128/129 of the MQD block of that XCC
 *    (per gpu). Active slots that match no MQD are reported in unmatchedHqds, not dropped.
 *  - SDMA RLC -> queue: sdma_engine_id/sdma_queue_id of the SDMA MQD (dw126/127), confirmed by
 *    the ring base; by ring base alone when the engine numbers disagree (partition modes).
 *  - runlist -> queue: MAP_QUEUES MQD address == XCC0 block address (compute); SDMA MAP_QUEUES by
 *    doorbell within the process that the compute queues identified.
 *  - sysfs queue ids: mqds does not print them (docs/kfd-formats.md, "What mqds does not say").
 *    Matched per (gpu, compute|sdma): first by what earlier snapshots of a trace established
 *    ('history', qidHints); then one queue on each side -> 'unique', else by creation order
 *    ('creation-order': mqds lists newest first, KFD gives the lowest free id, so oldest = lowest
 *    id unless ids were reused). With different counts only the oldest pairs are matched, a
 *    warning says so, and sysfs queues debugfs does not show yet are listed from sysfs alone.
 *  - runlist MAP_PROCESS -> process: by PASID where the mqds header prints a real one (older
 *    kernels: `PASID 0x8001` is MAP_PROCESS pasid 32769; current ones print the pid there) or
 *    sysfs `pasid` is not 0; else through the queues it maps.
 *
 * native/kfd/join.cc is this join in C++ on the parsers' raw tables (qidHints included, packed:
 * packQidHints): snapshot() on the native path parses and joins in one addon call and builds
 * objects only for the result (joinFromNativeTables below). A rule changed here is changed there;
 * test/kfd-snapshot-native*.test.ts hold the two to the same result.
 *
 * Unknown is null, never 0 or false: a field a cut MQD block does not hold, an HQD slot cut
 * before CP_HQD_ACTIVE, a node or Inst that hqds does not show (dump cut, or a GPU only mqds
 * names) are null in the result, and a warning names what is missing.
 */
import { addr64, computeMqdHeaderBad, priorityLevel, topologyXccs } from './decode.js';
import type { ProcStatus } from '../procfs.js';
import { namespacePid } from '../procfs.js';
import { MQD_QUEUE_KIND_NAMES, type ParseIssue } from './raw.js';
import {
  JoinAddressesCol as JA,
  JoinHqdsCol as JH,
  JoinNodesCol as JN,
  JoinProcQueuesCol as JSQ,
  JoinProcessesCol as JP,
  JoinProcsCol as JSP,
  JoinQueuesCol as Q,
  JoinRunlistCol as JR,
  JoinTopologyCol as JT,
  JoinUnmatchedHqdsCol as UH,
  JoinUnmatchedRunlistCol as UR,
  JoinXccsCol as JX,
  columnCount,
} from './columns.js';
import type {
  HqdNode,
  HqdSlot,
  Hqds,
  KfdProc,
  KfdProcGpuStats,
  KfdProcQueue,
  KfdProcs,
  MqdQueue,
  Mqds,
  RlsMapProcess,
  RlsNode,
  Rls,
  Topology,
  TopologyNode,
} from './types.js';

export type QidMatch = 'unique' | 'creation-order' | 'history' | 'sysfs-only' | 'unmatched' | 'no-sysfs';

export interface SnapshotHqd {
  /** logical XCC (hqds "Inst") */
  inst: number;
  pipe: number;
  queue: number;
  /** CP_HQD_ACTIVE; null when the slot's dump ends before it */
  active: boolean | null;
  busy: boolean | null;
  /** index of the MQD block (XCC) whose address matched */
  xcc: number;
}

export interface SnapshotSdmaSlot {
  engine: number;
  rlc: number;
  active: boolean | null;
  busy: boolean | null;
  matchedBy: 'engine-rlc' | 'ring-base';
}

export interface SnapshotQueue {
  /** KFD queue id (sysfs proc/<pid>/queues/<qid>) when known */
  qid: number | null;
  qidMatch: QidMatch;
  /** where the queue was seen */
  source: 'debugfs+sysfs' | 'debugfs' | 'sysfs';
  type: string;
  /** AQL (true) or PM4 (false) for compute queues; null when unknown */
  aql: boolean | null;
  /** topology gpu_id in hex, as debugfs prints it */
  gpuId: string | null;
  node: number | null;
  sizeBytes: number | null;
  /** MQD pipe/queue priority; null when not read (no debugfs, SDMA) or the MQD block ends before dw134 */
  priority: { pipe: number; queue: number; level: 'low' | 'normal' | 'high' | null } | null;
  doorbell: number | null;
  ringBase: string | null;
  /** GART address of the MQD of each XCC (index = MQD block); null where the block ends before dw129 */
  mqdAddresses: (string | null)[];
  /** hardware slots per XCC (compute) */
  hqds: SnapshotHqd[];
  /** SDMA engine/RLC holding the queue (SDMA) */
  sdma: SnapshotSdmaSlot | null;
  /** listed in the runlist (mapped by the HWS); null when unknown (runlist not read or cut, the queue's MQD address unknown) */
  inRunlist: boolean | null;
  /** line of the queue header in mqds */
  mqdsLine: number | null;
}

export interface SnapshotProcess {
  pid: number;
  /** pid inside the process's own pid namespace, when different (containers) */
  nsPid: number | null;
  name: string | null;
  queues: SnapshotQueue[];
  gpus: KfdProcGpuStats[];
  /** MAP_PROCESS entries of this process in the runlist */
  runlist: { gpuId: string; pasid: number; numQueues: number | null; mappedQueues: number }[];
}

export interface UnmatchedHqd {
  node: number;
  gpuId: string;
  kind: 'cp' | 'sdma';
  inst: number;
  pipe: number;
  queue: number;
  mqdAddress: string | null;
  ringBase: string | null;
  vmid: number | null;
  busy: boolean | null;
  /**
   * an SDMA RLC with RB_ENABLE set on a GPU where mqds shows no queue and no CP slot is active:
   * most likely registers left over from a queue that is gone, not a live queue
   */
  likelyStale: boolean;
}

export interface SnapshotXcc {
  inst: number;
  /** null (with activeCp, hiqActive) when hqds does not show this Inst */
  cpSlots: number | null;
  /** null also when a slot's dump ends before CP_HQD_ACTIVE */
  activeCp: number | null;
  hiqActive: boolean | null;
}

export interface SnapshotNode {
  /** topology node; null when only a gpu_id is known (mqds names a GPU that neither hqds nor topology shows) */
  node: number | null;
  gpuId: string;
  name: string | null;
  gfxTarget: string | null;
  /** from topology; null when sysfs topology was not readable */
  numXcc: number | null;
  stopped: boolean;
  /** active compute HQD slots (HIQ excluded); null when hqds was not read or does not show every XCC of the node */
  activeHqds: number | null;
  /** null when hqds was not read or does not show the node */
  activeSdma: number | null;
  /** null like activeHqds */
  cpSlots: number | null;
  /** one entry per Inst hqds shows, and one of nulls per XCC it should show but does not */
  perXcc: SnapshotXcc[];
  queues: number;
  runlist: { present: boolean; processes: number; mapQueues: number; chained: boolean } | null;
}

export interface JoinInput {
  mqds?: Mqds | null;
  hqds?: Hqds | null;
  rls?: Rls | null;
  topology?: Topology | null;
  procs?: KfdProcs | null;
  status?: Map<number, ProcStatus | null>;
  pids?: readonly number[];
  /**
   * Queue ids established by earlier snapshots of a trace: pid -> debugfsIdentity -> qid. Used
   * before creation order, so ids stay put when queues come and go between two reads.
   */
  qidHints?: Map<number, Map<string, number>>;
}

/**
 * What identifies a debugfs queue across snapshots: its XCC0 MQD address, or an SDMA ring. A queue
 * whose dump ends before either has no identity: a key that matches no other snapshot.
 */
export function debugfsIdentity(q: Pick<SnapshotQueue, 'mqdAddresses' | 'ringBase' | 'type'> & Partial<Pick<SnapshotQueue, 'mqdsLine'>>): string {
  if (q.mqdAddresses.length) return q.mqdAddresses[0] !== null ? `mqd:${q.mqdAddresses[0]}` : `unknown:${q.mqdsLine ?? '?'}`;
  return q.ringBase !== null ? `ring:${q.ringBase}` : `unknown:${q.mqdsLine ?? '?'}`;
}

/** The number in a `Process <pid> PASID <field>:` header when it is a real PASID (not the pid again), else null. */
export function headerPasid(pid: number, field: string): number | null {
  const v = field.startsWith('0x') ? parseInt(field.slice(2), 16) : Number(field);
  return Number.isFinite(v) && v !== pid && v > 0 ? v : null;
}

export interface JoinResult {
  processes: SnapshotProcess[];
  unmatchedHqds: UnmatchedHqd[];
  /** fields a short MAP_QUEUES packet does not hold are null */
  unmatchedRunlistQueues: { gpuId: string; pasid: number | null; engine: string | null; doorbell: number | null; mqdAddress: string | null }[];
  nodes: SnapshotNode[];
  warnings: string[];
}

const hex = (v: number): string => (v >>> 0).toString(16);

/** sysfs type code -> class used to pair with mqds queue headers */
function sysfsClass(typeCode: number): 'compute' | 'sdma' | 'other' {
  if (typeCode === 0 || typeCode === 3) return 'compute';
  if (typeCode === 1 || typeCode === 4 || typeCode === 5) return 'sdma';
  return 'other';
}
function mqdClass(q: MqdQueue): 'compute' | 'sdma' | 'other' {
  return q.type === 'compute' || q.type === 'diq' ? 'compute' : q.type === 'sdma' ? 'sdma' : 'other';
}

// Work, JoinState, QidGroup, newJoinState, matchQidGroup, pasidOwners and countHqdSlots are
// exported for test/kfd-join-steps.test.ts only; src/index.ts does not export them.

/** A queue while the join builds it: its mqds entry (null: sysfs only), its pid, and its creation order. */
export interface Work {
  q: SnapshotQueue;
  mqd: MqdQueue | null;
  pid: number;
  order: number;
}

/**
 * What the steps of joinQueues share, passed to each explicitly: the input, what the earlier steps
 * built, and the warnings in the order they were raised (native/kfd/join.cc raises them in the
 * same order).
 */
export interface JoinState {
  input: JoinInput;
  warnings: string[];
  /** gpu_id (hex) -> topology node; hqds names the GPUs topology does not show */
  nodeOfGpu: Map<string, number>;
  /** every queue, in the order the steps found it */
  work: Work[];
  /** the same queues per pid */
  byPid: Map<number, Work[]>;
  /** sysfs proc/<pid> by pid */
  sysProcs: Map<number, KfdProc>;
  /** `${gpuId}|${MQD address}` -> queue and MQD block (filled by matchHqdSlots) */
  byMqdAddr: Map<string, { w: Work; block: number }>;
  /** the queues with an SDMA MQD (filled by matchHqdSlots) */
  sdmaWork: Work[];
  unmatchedHqds: UnmatchedHqd[];
  unmatchedRunlistQueues: JoinResult['unmatchedRunlistQueues'];
  /** MAP_PROCESS entries per pid */
  runlistOf: Map<number, SnapshotProcess['runlist']>;
}

export function joinQueues(input: JoinInput): JoinResult {
  const st = newJoinState(input);
  queuesFromMqds(st);
  matchSysfsQids(st);
  matchHqdSlots(st);
  matchRunlist(st);
  const processes = buildProcesses(st);
  const nodes = buildNodes(input, st.work, st.warnings);
  return { processes, unmatchedHqds: st.unmatchedHqds, unmatchedRunlistQueues: st.unmatchedRunlistQueues, nodes, warnings: st.warnings };
}

/** Starts the join: no queues yet, each GPU's node (topology, else hqds), sysfs processes by pid. */
export function newJoinState(input: JoinInput): JoinState {
  const nodeOfGpu = new Map<string, number>();
  for (const n of input.topology?.nodes ?? []) if (n.isGpu) nodeOfGpu.set(n.gpuIdHex, n.node);
  for (const n of input.hqds?.nodes ?? []) if (!nodeOfGpu.has(n.gpuId)) nodeOfGpu.set(n.gpuId, n.node);
  const sysProcs = new Map<number, KfdProc>();
  for (const p of input.procs?.procs ?? []) sysProcs.set(p.pid, p);
  return {
    input,
    warnings: [],
    nodeOfGpu,
    work: [],
    byPid: new Map(),
    sysProcs,
    byMqdAddr: new Map(),
    sdmaWork: [],
    unmatchedHqds: [],
    unmatchedRunlistQueues: [],
    runlistOf: new Map(),
  };
}

/** Records a queue in work and in byPid. */
function addWork(st: JoinState, w: Work): void {
  st.work.push(w);
  let l = st.byPid.get(w.pid);
  if (!l) st.byPid.set(w.pid, (l = []));
  l.push(w);
}

/** Step 1: a queue for each mqds queue header, per process in creation order. */
function queuesFromMqds(st: JoinState): void {
  for (const p of st.input.mqds?.processes ?? []) {
    // mqds lists newest first; keep creation order (oldest first)
    const qs = [...p.queues].reverse();
    qs.forEach((mq, i) => addWork(st, { pid: p.pid, order: i, mqd: mq, q: queueFromMqd(st, p.pid, mq) }));
  }
}

/** One mqds queue as a queue without a qid; warns about compute MQD blocks whose header is bad. */
function queueFromMqd(st: JoinState, pid: number, mq: MqdQueue): SnapshotQueue {
  const first = mq.blocks[0];
  const c = first?.compute;
  const s = first?.sdma;
  for (const b of mq.blocks) {
    if (b.compute && computeMqdHeaderBad(b.words)) {
      st.warnings.push(`pid ${pid}: queue at mqds line ${mq.line}: MQD block ${b.index} has header 0x${hex(b.words[0])}, not the compute MQD header 0xc0310800: its fields are unknown`);
    }
  }
  return {
    qid: null,
    qidMatch: st.input.procs ? 'unmatched' : 'no-sysfs',
    source: 'debugfs',
    type: mq.type,
    aql: c ? c.aql : null,
    gpuId: mq.gpuId,
    node: mq.gpuId !== null ? (st.nodeOfGpu.get(mq.gpuId) ?? null) : null,
    sizeBytes: c ? c.ringSizeBytes : s ? s.ringSizeBytes : null,
    priority:
      c && c.pipePriority !== null && c.queuePriority !== null
        ? { pipe: c.pipePriority, queue: c.queuePriority, level: priorityLevel(c.pipePriority, c.queuePriority) }
        : null,
    doorbell: c ? c.doorbell : s ? s.doorbell : null,
    ringBase: c ? c.ringBase : s ? s.ringBase : null,
    mqdAddresses: c ? mq.blocks.map((b) => b.compute!.mqdAddress) : [],
    hqds: [],
    sdma: null,
    inRunlist: null,
    mqdsLine: mq.line,
  };
}

/** A process's sysfs and debugfs queues on one gpu of one class (compute, sdma, other). */
export interface QidGroup {
  sys: KfdProcQueue[];
  dbg: Work[];
}

/** Step 2: sysfs queue ids for the debugfs queues; sysfs queues debugfs does not show become queues of their own. */
function matchSysfsQids(st: JoinState): void {
  if (!st.input.procs) return;
  for (const [pid, sp] of st.sysProcs) matchSysfsProcess(st, pid, sp);
}

/** Pairs one process's sysfs queues with its debugfs queues, group by group (gpu, class). */
function matchSysfsProcess(st: JoinState, pid: number, sp: KfdProc): void {
  const { input } = st;
  const mine = st.byPid.get(pid) ?? [];
  if (input.mqds && mine.length === 0 && sp.queues.length > 0) {
    st.warnings.push(`process ${pid}: sysfs lists ${sp.queues.length} queue(s) that debugfs mqds does not show (created or destroyed between the reads?)`);
  }
  if (!input.mqds || mine.length === 0) {
    for (const sq of sp.queues) addWork(st, { pid, order: sq.qid, mqd: null, q: fromSysfs(sq, st.nodeOfGpu) });
    return;
  }
  const groups = new Map<string, QidGroup>();
  const group = (k: string): QidGroup => {
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { sys: [], dbg: [] }));
    return g;
  };
  for (const sq of sp.queues) group(`${sq.gpuId === null ? '?' : hex(sq.gpuId)}|${sysfsClass(sq.typeCode)}`).sys.push(sq);
  for (const w of mine) group(`${w.q.gpuId ?? '?'}|${mqdClass(w.mqd!)}`).dbg.push(w);
  const hints = input.qidHints?.get(pid);
  for (const [key, g] of groups) matchQidGroup(st, pid, key, g, hints);
}

/** Pairs one group: first by what earlier snapshots established, then by creation order; warns when the counts differ. */
export function matchQidGroup(st: JoinState, pid: number, key: string, g: QidGroup, hints: Map<string, number> | undefined): void {
  g.sys.sort((a, b) => a.qid - b.qid);
  g.dbg.sort((a, b) => a.order - b.order);
  // 1. what earlier snapshots established (same MQD/ring, that id still present)
  let sys = g.sys;
  let dbg = g.dbg;
  if (hints) {
    for (const w of dbg) {
      const h = hints.get(debugfsIdentity(w.q));
      const sq = h === undefined ? undefined : sys.find((x) => x.qid === h);
      if (sq) {
        mergeSysfs(w.q, sq, 'history');
        sys = sys.filter((x) => x !== sq);
      }
    }
    dbg = dbg.filter((w) => w.q.qid === null);
  }
  // 2. the rest by creation order; with different counts only the oldest pairs, as a queue
  //    created between the sysfs and the debugfs read is the newest on its side
  const n = Math.min(sys.length, dbg.length);
  const how: QidMatch = sys.length === 1 && dbg.length === 1 ? 'unique' : 'creation-order';
  for (let i = 0; i < n; i++) mergeSysfs(dbg[i].q, sys[i], how);
  if (sys.length !== dbg.length) {
    const [gpu, cls] = key.split('|');
    st.warnings.push(
      `process ${pid}: ${g.sys.length} ${cls} queue(s) on gpu ${gpu} in sysfs but ${g.dbg.length} in mqds (created or destroyed between the reads?)`,
    );
    // sysfs queues debugfs did not show yet: listed from sysfs alone
    for (const sq of sys.slice(n)) addWork(st, { pid, order: Number.MAX_SAFE_INTEGER - 1024 + sq.qid, mqd: null, q: fromSysfs(sq, st.nodeOfGpu) });
  }
}

/** Step 3: HQD slots to the queues whose MQD (CP) or SDMA engine/RLC or ring (SDMA) they hold; active slots left over are unmatched. */
function matchHqdSlots(st: JoinState): void {
  for (const w of st.work) {
    w.q.mqdAddresses.forEach((a, i) => {
      if (a !== null) st.byMqdAddr.set(`${w.q.gpuId}|${a}`, { w, block: i });
    });
  }
  st.sdmaWork = st.work.filter((w) => w.mqd && w.mqd.type === 'sdma');
  // a GPU where mqds (read whole) shows no queue and no CP slot is active is idle: an SDMA RLC
  // still enabled there is most likely left over, not a queue mqds missed
  const gpusWithQueues = new Set(st.work.map((w) => w.q.gpuId));
  const mqds = st.input.mqds;
  const mqdsWhole = mqds !== null && mqds !== undefined && !mqds.partial;
  for (const node of st.input.hqds?.nodes ?? []) {
    const insts = [...new Set(node.slots.filter((s) => s.kind !== 'sdma').map((s) => s.inst))].sort((a, b) => a - b);
    const idle = mqdsWhole && !gpusWithQueues.has(node.gpuId) && !node.slots.some((s) => s.kind === 'cp' && s.active === true);
    for (const slot of node.slots) {
      if (slot.kind === 'cp') matchCpSlot(st, node, slot, insts);
      else if (slot.kind === 'sdma' && slot.active === true) matchSdmaSlot(st, node, slot, idle);
    }
  }
  for (const w of st.work) w.q.hqds.sort((a, b) => a.inst - b.inst || a.pipe - b.pipe || a.queue - b.queue);
}

/** A CP slot to the queue whose MQD address it holds (insts: the node's Insts, sorted); warns when it holds another XCC's block. */
function matchCpSlot(st: JoinState, node: HqdNode, slot: HqdSlot, insts: number[]): void {
  const hit = slot.mqdAddress && slot.mqdAddress !== '0x0' ? st.byMqdAddr.get(`${node.gpuId}|${slot.mqdAddress}`) : undefined;
  if (hit) {
    hit.w.q.hqds.push({ inst: slot.inst, pipe: slot.pipe, queue: slot.queue, active: slot.active, busy: slot.busy, xcc: hit.block });
    const pos = insts.indexOf(slot.inst);
    if (slot.active === true && pos !== hit.block) {
      st.warnings.push(
        `node ${node.node}: HQD Inst ${slot.inst} Pipe ${slot.pipe} Queue ${slot.queue} holds MQD block ${hit.block} of pid ${hit.w.pid}'s queue, expected block ${pos}`,
      );
    }
  } else if (slot.active === true) {
    st.unmatchedHqds.push(unmatched(node.node, node.gpuId, slot, false));
  }
}

/** An active SDMA RLC to its queue: by engine/RLC, else by a ring base only one queue has (idle: the GPU is idle). */
function matchSdmaSlot(st: JoinState, node: HqdNode, slot: HqdSlot, idle: boolean): void {
  const onGpu = st.sdmaWork.filter((w) => w.q.gpuId === node.gpuId);
  let w = onGpu.find((x) => x.mqd!.blocks[0]?.sdma?.engine === slot.pipe && x.mqd!.blocks[0]?.sdma?.rlc === slot.queue);
  let by: SnapshotSdmaSlot['matchedBy'] = 'engine-rlc';
  if (w && slot.ringBase !== null && w.q.ringBase !== null && w.q.ringBase !== slot.ringBase) {
    st.warnings.push(`node ${node.node}: SDMA engine ${slot.pipe} RLC ${slot.queue} ring ${slot.ringBase} differs from its MQD's ring ${w.q.ringBase}`);
  }
  if (!w && slot.ringBase !== null) {
    const byRing = onGpu.filter((x) => x.q.ringBase === slot.ringBase);
    if (byRing.length === 1) {
      w = byRing[0];
      by = 'ring-base';
    }
  }
  if (w) w.q.sdma = { engine: slot.pipe, rlc: slot.queue, active: slot.active, busy: slot.busy, matchedBy: by };
  else st.unmatchedHqds.push(unmatched(node.node, node.gpuId, slot, idle));
}

/** A MAP_PROCESS of a node, or its MAP_QUEUES before any MAP_PROCESS (pasid -1, as when the PASID was not read). */
type RlsGroup = Pick<RlsMapProcess, 'numQueues' | 'queues'> & { pasid: number };
type RlsMapQueue = RlsMapProcess['queues'][number];

/** Step 4: runlist MAP_QUEUES to queues (inRunlist), MAP_PROCESS to processes; MAP_QUEUES matching no queue are listed. */
function matchRunlist(st: JoinState): void {
  const rls = st.input.rls;
  if (!rls) return;
  const pidOfPasid = pasidOwners(st.input);
  const rlsGpus = new Map(rls.nodes.map((n) => [n.gpuId, n]));
  for (const w of st.work) {
    if (w.q.source === 'sysfs' || w.q.gpuId === null) continue;
    const n = rlsGpus.get(w.q.gpuId);
    // "not found below" means "not in the runlist" only when the node's runlist was read to its
    // end and the queue has what the runlist is matched by
    w.q.inRunlist = n !== undefined && runlistWhole(n) && runlistKeyKnown(w) ? false : null;
  }
  for (const node of rls.nodes) {
    // MAP_QUEUES before any MAP_PROCESS belong to no known process (pasid -1); so does a packet
    // whose PASID was not read
    const groups: RlsGroup[] = node.processes.map((p) => ({ ...p, pasid: p.pasid ?? -1 }));
    if (node.strayQueues.length) groups.push({ pasid: -1, numQueues: 0, queues: node.strayQueues });
    for (const mp of groups) matchMapProcess(st, node, mp, pidOfPasid);
  }
}

/** PASID -> pid: a real PASID in the mqds header (older kernels) or in sysfs names the process of a MAP_PROCESS. */
export function pasidOwners(input: JoinInput): Map<number, number> {
  const pidOfPasid = new Map<number, number>();
  for (const p of input.mqds?.processes ?? []) {
    const v = headerPasid(p.pid, p.pasidField);
    if (v !== null) pidOfPasid.set(v, p.pid);
  }
  for (const p of input.procs?.procs ?? []) if (p.pasid !== null && p.pasid > 0 && !pidOfPasid.has(p.pasid)) pidOfPasid.set(p.pasid, p.pid);
  return pidOfPasid;
}

/** One MAP_PROCESS group: its compute, then its SDMA queues, then its entry in the process's runlist. */
function matchMapProcess(st: JoinState, node: RlsNode, mp: RlsGroup, pidOfPasid: Map<number, number>): void {
  const byPasid = mp.pasid >= 0 ? (pidOfPasid.get(mp.pasid) ?? null) : null;
  let pid = matchMapQueuesCompute(st, node, mp, byPasid);
  pid = matchMapQueuesSdma(st, node, mp, pid);
  if (pid !== null && mp.pasid >= 0) recordMapProcess(st, node, mp, pid);
}

/** The group's compute MAP_QUEUES to queues by XCC0 MQD address; returns the group's pid (its PASID's, else its first queue's). */
function matchMapQueuesCompute(st: JoinState, node: RlsNode, mp: RlsGroup, byPasid: number | null): number | null {
  let pid: number | null = byPasid;
  let crossed = false;
  for (const mq of mp.queues) {
    if (mq.engine !== 'compute') continue;
    const hit = st.byMqdAddr.get(`${node.gpuId}|${mq.mqdAddress}`);
    if (hit && hit.block === 0) {
      hit.w.q.inRunlist = true;
      if (byPasid !== null && hit.w.pid !== byPasid && !crossed) {
        crossed = true;
        st.warnings.push(`node ${node.node}: runlist MAP_PROCESS pasid ${mp.pasid} is pid ${byPasid}'s (its PASID) but maps pid ${hit.w.pid}'s queue ${mq.mqdAddress}`);
      }
      pid ??= hit.w.pid;
    } else {
      st.unmatchedRunlistQueues.push(unmatchedMapQueue(node, mp, mq));
    }
  }
  return pid;
}

/** The group's SDMA MAP_QUEUES to queues by doorbell and engine within pid (when known); returns pid, else the first match's. */
function matchMapQueuesSdma(st: JoinState, node: RlsNode, mp: RlsGroup, pidIn: number | null): number | null {
  let pid = pidIn;
  for (const mq of mp.queues) {
    if (mq.engine === 'compute') continue;
    // doorbell indexes are device-wide on real KFD; the engine narrows it when a synthetic or
    // odd dump repeats them, the process (from its PASID or compute queues) narrows it further
    const cands = st.sdmaWork.filter((w) => {
      const engine = sdmaEngineOf(w);
      // an unknown doorbell (a short packet) matches nothing, not another unknown one
      return w.q.gpuId === node.gpuId && mq.doorbell !== null && w.q.doorbell === mq.doorbell && engine !== null && `sdma${engine}` === mq.engine && (pid === null || w.pid === pid);
    });
    if (cands.length === 1) {
      cands[0].q.inRunlist = true;
      pid ??= cands[0].pid;
    } else {
      st.unmatchedRunlistQueues.push(unmatchedMapQueue(node, mp, mq));
    }
  }
  return pid;
}

/** A MAP_QUEUES packet that matches no queue, as listed in unmatchedRunlistQueues. */
function unmatchedMapQueue(node: RlsNode, mp: RlsGroup, mq: RlsMapQueue): JoinResult['unmatchedRunlistQueues'][number] {
  return { gpuId: node.gpuId, pasid: mp.pasid >= 0 ? mp.pasid : null, engine: mq.engine, doorbell: mq.doorbell, mqdAddress: mq.mqdAddress };
}

/** Adds the MAP_PROCESS to pid's runlist entries; warns when its queue count differs from what mqds shows. */
function recordMapProcess(st: JoinState, node: RlsNode, mp: RlsGroup, pid: number): void {
  let l = st.runlistOf.get(pid);
  if (!l) st.runlistOf.set(pid, (l = []));
  l.push({ gpuId: node.gpuId, pasid: mp.pasid, numQueues: mp.numQueues, mappedQueues: mp.queues.length });
  // MAP_PROCESS counts every queue of the process on the device, mapped or not (0 under a debugger)
  if (st.input.mqds && mp.numQueues !== null && mp.numQueues > 0) {
    const shown = st.work.filter((w) => w.pid === pid && w.mqd !== null && w.q.gpuId === node.gpuId).length;
    if (shown !== mp.numQueues) {
      st.warnings.push(`pid ${pid}: runlist MAP_PROCESS on gpu ${node.gpuId} counts ${mp.numQueues} queue(s), mqds shows ${shown} (created or destroyed between the reads, or mqds cut?)`);
    }
  }
}

/** Step 5: one process per pid KFD knows (input.pids narrows them), its queues by qid, then creation order. */
function buildProcesses(st: JoinState): SnapshotProcess[] {
  const { input } = st;
  // a process KFD knows without queues is still a process (the kernel prints its header alone)
  const pidSet = new Set<number>([...st.byPid.keys(), ...st.sysProcs.keys(), ...(input.mqds?.processes ?? []).map((p) => p.pid)]);
  let pids = [...pidSet].sort((a, b) => a - b);
  if (input.pids) {
    const want = new Set(input.pids);
    pids = pids.filter((p) => want.has(p));
  }
  return pids.map((pid) => {
    const status = input.status?.get(pid) ?? null;
    const qs = (st.byPid.get(pid) ?? [])
      .slice()
      .sort((a, b) => (a.q.qid ?? Infinity) - (b.q.qid ?? Infinity) || a.order - b.order)
      .map((w) => w.q);
    return {
      pid,
      nsPid: namespacePid(status),
      name: status?.name ?? null,
      queues: qs,
      gpus: st.sysProcs.get(pid)?.gpus ?? [],
      runlist: st.runlistOf.get(pid) ?? [],
    };
  });
}

function fromSysfs(sq: KfdProcQueue, nodeOfGpu: Map<string, number>): SnapshotQueue {
  const gpu = sq.gpuId === null ? null : hex(sq.gpuId);
  return {
    qid: sq.qid,
    qidMatch: 'sysfs-only',
    source: 'sysfs',
    type: sq.type,
    aql: null,
    gpuId: gpu,
    node: gpu !== null ? (nodeOfGpu.get(gpu) ?? null) : null,
    sizeBytes: sq.sizeBytes,
    priority: null,
    doorbell: null,
    ringBase: null,
    mqdAddresses: [],
    hqds: [],
    sdma: null,
    inRunlist: null,
    mqdsLine: null,
  };
}

function mergeSysfs(q: SnapshotQueue, sq: KfdProcQueue, how: QidMatch): void {
  q.qid = sq.qid;
  q.qidMatch = how;
  q.source = 'debugfs+sysfs';
  // sysfs tells SDMA from SDMA-XGMI, mqds does not
  q.type = sq.type;
  if (sq.sizeBytes !== null) q.sizeBytes = sq.sizeBytes;
}

/** The node's runlist was read to its end (no packet cut short or unrecognised). */
function runlistWhole(n: RlsNode): boolean {
  return n.packets.reduce((a, p) => a + p.dwords, 0) === n.ibDwords;
}

/** The SDMA engine of an SDMA queue's MQD (dw126); null when not read. */
function sdmaEngineOf(w: Work): number | null {
  return w.mqd?.blocks[0]?.sdma?.engine ?? null;
}

/** The queue has what the runlist is matched by: its XCC0 MQD address (compute) or its doorbell and engine (SDMA). */
function runlistKeyKnown(w: Work): boolean {
  if (!w.mqd) return false;
  if (mqdClass(w.mqd) === 'compute') return w.q.mqdAddresses[0] !== undefined && w.q.mqdAddresses[0] !== null;
  return w.mqd.type === 'sdma' && sdmaEngineOf(w) !== null && w.q.doorbell !== null;
}

function unmatched(node: number, gpuId: string, s: HqdSlot, likelyStale: boolean): UnmatchedHqd {
  return {
    node,
    gpuId,
    kind: s.kind === 'sdma' ? 'sdma' : 'cp',
    inst: s.inst,
    pipe: s.pipe,
    queue: s.queue,
    mqdAddress: s.mqdAddress,
    ringBase: s.ringBase,
    vmid: s.vmid,
    busy: s.busy,
    likelyStale: s.kind === 'sdma' && likelyStale,
  };
}

/**
 * What the steps of buildNodes share, passed to each explicitly: the input, the queues, the nodes
 * built so far, and the warnings (in the order they were raised, after joinQueues's own).
 */
interface NodeState {
  input: JoinInput;
  work: Work[];
  warnings: string[];
  /** gpu_id -> node, in the order first seen */
  out: Map<string, SnapshotNode>;
  /** gpu_id -> the most MQD blocks of a compute queue on it */
  blocksOn: Map<string, number>;
  /** gpu_id -> how many Insts hqds shows (filled by nodesFromHqds; stopped nodes have none) */
  instsInHqds: Map<string, number>;
}

function buildNodes(input: JoinInput, work: Work[], warnings: string[]): SnapshotNode[] {
  const ns: NodeState = { input, work, warnings, out: new Map(), blocksOn: mqdBlocksPerGpu(work), instsInHqds: new Map() };
  nodesFromTopology(ns);
  nodesFromHqds(ns);
  nodesFromRunlist(ns);
  countNodeQueues(ns);
  nodesMissingFromHqds(ns);
  return [...ns.out.values()].sort((a, b) => (a.node ?? Infinity) - (b.node ?? Infinity) || a.gpuId.localeCompare(b.gpuId));
}

/** The node of gpuId, made with everything unknown the first time it is asked for. */
function nodeFor(ns: NodeState, gpuId: string, node: number | null): SnapshotNode {
  let n = ns.out.get(gpuId);
  if (!n) {
    ns.out.set(
      gpuId,
      (n = {
        node,
        gpuId,
        name: null,
        gfxTarget: null,
        numXcc: null,
        stopped: false,
        activeHqds: null,
        activeSdma: null,
        cpSlots: null,
        perXcc: [],
        queues: 0,
        runlist: null,
      }),
    );
  }
  return n;
}

/** An XCC hqds should show but does not: its slots are unknown. */
function unknownXcc(inst: number): SnapshotXcc {
  return { inst, cpSlots: null, activeCp: null, hiqActive: null };
}

/** gpu_id -> the most MQD blocks of a compute queue on it. */
function mqdBlocksPerGpu(work: Work[]): Map<string, number> {
  const blocksOn = new Map<string, number>();
  for (const w of work) {
    if (!w.mqd || w.mqd.type !== 'compute' || w.q.gpuId === null) continue;
    blocksOn.set(w.q.gpuId, Math.max(blocksOn.get(w.q.gpuId) ?? 0, w.mqd.blocks.length));
  }
  return blocksOn;
}

/** The XCCs a GPU has: topology num_xcc, else the most MQD blocks of a compute queue on it. */
function xccsOf(ns: NodeState, n: SnapshotNode): { count: number | null; from: string } {
  return n.numXcc !== null ? { count: n.numXcc, from: 'topology num_xcc' } : { count: ns.blocksOn.get(n.gpuId) || null, from: 'MQD blocks per compute queue' };
}

/** Step 1: a node for each topology GPU, with its name, gfx target and XCC count. */
function nodesFromTopology(ns: NodeState): void {
  for (const t of ns.input.topology?.nodes ?? []) {
    if (!t.isGpu) continue;
    const n = nodeFor(ns, t.gpuIdHex, t.node);
    n.name = t.name;
    n.gfxTarget = t.gpu?.gfxTarget ?? null;
    n.numXcc = t.gpu ? topologyXccs(t.gpu) : null;
  }
}

/** Step 2: slot counts of each node hqds shows, per node and per XCC. */
function nodesFromHqds(ns: NodeState): void {
  for (const h of ns.input.hqds?.nodes ?? []) nodeFromHqds(ns, h);
}

/** One hqds node: its counts, null where unknown; warns about XCCs it does not show or too many. */
function nodeFromHqds(ns: NodeState, h: HqdNode): void {
  const n = nodeFor(ns, h.gpuId, h.node);
  n.stopped = h.stopped;
  if (h.stopped) {
    // the scheduler is stopped: nothing is mapped, and hqds prints no slot
    n.activeHqds = 0;
    n.activeSdma = 0;
    n.cpSlots = 0;
    return;
  }
  const { xcc, sdma } = countHqdSlots(h);
  ns.instsInHqds.set(h.gpuId, xcc.size);
  const read = [...xcc.values()];
  const want = xccsOf(ns, n);
  const missing = want.count === null ? [] : Array.from({ length: want.count }, (_, i) => i).filter((i) => !xcc.has(i));
  n.perXcc = [...read, ...missing.map(unknownXcc)].sort((a, b) => a.inst - b.inst);
  // a node's dump ends with its SDMA RLCs; the parser says when a dump was cut before them (the
  // slots themselves cannot: a tracer keeps only the slots in use)
  const sdmaCut = ns.input.hqds!.issues.some((i) => i.line === h.line && i.message.endsWith('ends without its SDMA RLC dumps (dump cut?)'));
  n.activeSdma = sdmaCut ? null : sdma;
  n.cpSlots = missing.length ? null : read.reduce((a, x) => a + (x.cpSlots ?? 0), 0);
  n.activeHqds = missing.length || read.some((x) => x.activeCp === null) ? null : read.reduce((a, x) => a + (x.activeCp ?? 0), 0);
  if (missing.length) {
    const shown = [...xcc.keys()].sort((a, b) => a - b).join(',') || 'none';
    ns.warnings.push(`node ${h.node} (gpu ${h.gpuId}): hqds shows Inst ${shown} of ${want.count} XCC(s) (${want.from}): Inst ${missing.join(',')} unknown`);
  } else if (n.numXcc !== null && read.length !== n.numXcc) {
    ns.warnings.push(`node ${h.node} (gpu ${h.gpuId}): hqds shows ${read.length} XCC(s) but topology says num_xcc ${n.numXcc}`);
  }
}

/** A running hqds node's slots counted: CP and HIQ per Inst (in the order first seen), active SDMA RLCs (null: unknown). */
export function countHqdSlots(h: HqdNode): { xcc: Map<number, SnapshotXcc>; sdma: number | null } {
  const xcc = new Map<number, SnapshotXcc>();
  let sdma: number | null = 0;
  for (const s of h.slots) {
    if (s.kind === 'sdma') {
      if (s.active === null) sdma = null;
      else if (s.active && sdma !== null) sdma++;
      continue;
    }
    let x = xcc.get(s.inst);
    if (!x) xcc.set(s.inst, (x = { inst: s.inst, cpSlots: 0, activeCp: 0, hiqActive: false }));
    if (s.kind === 'hiq') {
      x.hiqActive = x.hiqActive === true || s.active === true ? true : x.hiqActive === null || s.active === null ? null : false;
    } else {
      x.cpSlots = (x.cpSlots ?? 0) + 1;
      if (s.active === null) x.activeCp = null;
      else if (s.active && x.activeCp !== null) x.activeCp++;
    }
  }
  return { xcc, sdma };
}

/** Step 3: each runlist node's summary (present, processes, MAP_QUEUES, chained). */
function nodesFromRunlist(ns: NodeState): void {
  for (const r of ns.input.rls?.nodes ?? []) {
    const n = nodeFor(ns, r.gpuId, r.node);
    n.runlist = {
      present: r.hasRunlist,
      processes: r.processes.length,
      mapQueues: r.processes.reduce((a, p) => a + p.queues.length, 0) + r.strayQueues.length,
      chained: r.chained,
    };
  }
}

/** Step 4: queues per node; warns when a compute queue's MQD blocks are not one per XCC. */
function countNodeQueues(ns: NodeState): void {
  for (const w of ns.work) {
    if (w.q.gpuId === null) continue;
    const n = ns.out.get(w.q.gpuId) ?? nodeFor(ns, w.q.gpuId, w.q.node);
    n.queues++;
    // one MQD block per XCC: checked against topology, else against the Insts hqds shows
    if (w.mqd && w.mqd.type === 'compute' && w.mqd.blocks.length > 0) {
      const insts = ns.instsInHqds.get(w.q.gpuId);
      if (n.numXcc !== null && w.mqd.blocks.length !== n.numXcc) {
        ns.warnings.push(`pid ${w.pid}: compute queue at mqds line ${w.mqd.line} has ${w.mqd.blocks.length} MQD block(s), gpu ${w.q.gpuId} has num_xcc ${n.numXcc}`);
      } else if (n.numXcc === null && insts !== undefined && insts > 0 && w.mqd.blocks.length !== insts) {
        ns.warnings.push(`pid ${w.pid}: compute queue at mqds line ${w.mqd.line} has ${w.mqd.blocks.length} MQD block(s), gpu ${w.q.gpuId} shows ${insts} Inst(s) in hqds`);
      }
    }
  }
}

/** Step 5: nodes hqds (when read) should show but does not: their slots are unknown, not idle, and a warning says so. */
function nodesMissingFromHqds(ns: NodeState): void {
  if (!ns.input.hqds) return;
  const shown = new Set(ns.input.hqds.nodes.map((h) => h.gpuId));
  for (const n of ns.out.values()) {
    if (shown.has(n.gpuId)) continue;
    const want = xccsOf(ns, n).count;
    n.perXcc = want === null ? [] : Array.from({ length: want }, (_, i) => unknownXcc(i));
    const listed = ns.work.filter((w) => w.mqd !== null && w.q.gpuId === n.gpuId).length;
    ns.warnings.push(
      listed > 0
        ? `gpu ${n.gpuId} (node ${n.node ?? '?'}): mqds lists ${listed} queue(s) on it but hqds does not show it: their HQD slots are unknown`
        : `node ${n.node ?? '?'} (gpu ${n.gpuId}): in the topology but not in hqds: its HQD slots are unknown`,
    );
  }
}

// ------------------------------------------------------------------------ native join tables
// native/kfd/join.cc runs the join above (qidHints included) on the parser's raw tables and hands
// back these tables, one N-API call for a whole snapshot; -1 is null in every nullable column.
// Column layouts: the join* tables of src/kfd/columns.ts (native/kfd/columns.h), changed together
// with this decoder.

const JQ = columnCount('joinQueues');
const JADDR = columnCount('joinAddresses');
const JHQD = columnCount('joinHqds');
const JPROC = columnCount('joinProcesses');
const JRL = columnCount('joinRunlist');
const JUH = columnCount('joinUnmatchedHqds');
const JUR = columnCount('joinUnmatchedRunlist');
const JNODE = columnCount('joinNodes');
const JXCC = columnCount('joinXccs');
const JTOPO = columnCount('joinTopology');
const JSYSPROC = columnCount('joinProcs');
const JSYSQUEUE = columnCount('joinProcQueues');

/** JoinQidMatch in native/kfd/join.h, in its order */
const QID_MATCH: QidMatch[] = ['unique', 'creation-order', 'sysfs-only', 'unmatched', 'no-sysfs', 'history'];
const SOURCES: SnapshotQueue['source'][] = ['debugfs+sysfs', 'debugfs', 'sysfs'];
const LEVELS = ['low', 'normal', 'high'] as const;

/** What a parsed debugfs file leaves in a snapshot besides the join. */
export interface NativeJoinFile {
  issues: ParseIssue[];
  suppressed: number;
  lines: number;
}

/**
 * The addon's join (native/kfd/binding.cc JoinToJs: joinKfdDumps, a native sampler's joinDumps):
 * every table in one Float64Array, a header of (offset, length) pairs in JOIN_TABLES order, then
 * the tables.
 */
export interface NativeJoinedTables {
  tables: Float64Array;
  runlistEngines: string[];
  warnings: string[];
  /** joinKfdDumps with qidHints given: those hints with what this join established added (learnQidHints) */
  qidHints?: PackedQidHints;
}

/** The result of joinKfdDumps: the joined tables and what each file's parse found. */
export interface NativeJoinTables extends NativeJoinedTables {
  /** null for a file not given */
  mqdsFile: NativeJoinFile | null;
  hqdsFile: NativeJoinFile | null;
  rlsFile: NativeJoinFile | null;
}


/**
 * Qid hints as the addon takes and gives them: all of them in two values, not one N-API crossing
 * per hint (a trace hands them over with every join). rows: (pid, qid) pairs; identities: each
 * hint's debugfsIdentity followed by '\n', in row order (an identity never holds a newline).
 */
export interface PackedQidHints {
  rows: Float64Array;
  identities: string;
}

export function packQidHints(hints: Map<number, Map<string, number>>): PackedQidHints {
  let n = 0;
  for (const m of hints.values()) n += m.size;
  const rows = new Float64Array(2 * n);
  let identities = '';
  let k = 0;
  for (const [pid, m] of hints) {
    for (const [identity, qid] of m) {
      rows[k++] = pid;
      rows[k++] = qid;
      identities += `${identity}\n`;
    }
  }
  return { rows, identities };
}

export function unpackQidHints(p: PackedQidHints): Map<number, Map<string, number>> {
  const hints = new Map<number, Map<string, number>>();
  const ids = p.identities.split('\n');
  for (let k = 0; k < p.rows.length; k += 2) {
    let m = hints.get(p.rows[k]);
    if (!m) hints.set(p.rows[k], (m = new Map()));
    m.set(ids[k / 2], p.rows[k + 1]);
  }
  return hints;
}

/**
 * What a join established, added to `hints`: every queue with a qid and a debugfs side, under its
 * pid and debugfs identity (LearnQidHints in native/kfd/join.cc does the same on the addon's
 * tables). True when a hint was added or changed (a caller holding them packed packs again).
 */
export function learnQidHints(joined: Pick<JoinResult, 'processes'>, hints: Map<number, Map<string, number>>): boolean {
  let changed = false;
  for (const p of joined.processes) {
    for (const q of p.queues) {
      if (q.qid === null || q.source === 'sysfs') continue;
      let h = hints.get(p.pid);
      if (!h) hints.set(p.pid, (h = new Map()));
      const identity = debugfsIdentity(q);
      if (h.get(identity) === q.qid) continue;
      h.set(identity, q.qid);
      changed = true;
    }
  }
  return changed;
}

const JOIN_TABLES = ['queues', 'addresses', 'hqds', 'processes', 'runlist', 'unmatchedHqds', 'unmatchedRunlist', 'nodes', 'xccs', 'mqdsPids'] as const;

/** The tables of a joinKfdDumps result, as views into its one array. */
export interface JoinTableViews {
  queues: Float64Array;
  addresses: Float64Array;
  hqds: Float64Array;
  processes: Float64Array;
  runlist: Float64Array;
  unmatchedHqds: Float64Array;
  unmatchedRunlist: Float64Array;
  nodes: Float64Array;
  xccs: Float64Array;
  /** the pids of the mqds process headers, in file order */
  mqdsPids: Float64Array;
  runlistEngines: string[];
  warnings: string[];
}

export function unpackJoinTables(r: NativeJoinedTables): JoinTableViews {
  const views = {} as Record<(typeof JOIN_TABLES)[number], Float64Array>;
  JOIN_TABLES.forEach((name, i) => (views[name] = r.tables.subarray(r.tables[2 * i], r.tables[2 * i] + r.tables[2 * i + 1])));
  return { ...views, runlistEngines: r.runlistEngines, warnings: r.warnings };
}

/** The sysfs side of a join as the addon takes it, and the objects its row numbers refer to. */
export interface NativeJoinSysfs {
  topology: Float64Array | null;
  procs: Float64Array | null;
  procQueues: Float64Array | null;
  gpus: TopologyNode[];
  queues: KfdProcQueue[];
}

export function nativeJoinSysfs(topology: Topology | null | undefined, procs: KfdProcs | null | undefined): NativeJoinSysfs {
  const gpus = (topology?.nodes ?? []).filter((n) => n.isGpu);
  const topo = new Float64Array(gpus.length * JTOPO);
  gpus.forEach((n, i) => {
    const o = i * JTOPO;
    topo[o + JT.node] = n.node;
    topo[o + JT.gpuId] = n.gpuId;
    topo[o + JT.numXcc] = n.gpu ? (topologyXccs(n.gpu) ?? -1) : -1;
  });
  const queues: KfdProcQueue[] = [];
  let procRows: Float64Array | null = null;
  if (procs) {
    const rows = new Float64Array(procs.procs.length * JSYSPROC);
    procs.procs.forEach((p, i) => {
      const o = i * JSYSPROC;
      rows[o + JSP.pid] = p.pid;
      rows[o + JSP.pasid] = p.pasid ?? -1;
      rows[o + JSP.firstQueue] = queues.length;
      rows[o + JSP.queueCount] = p.queues.length;
      queues.push(...p.queues);
    });
    procRows = rows;
  }
  const queueRows = new Float64Array(queues.length * JSYSQUEUE);
  queues.forEach((q, i) => {
    const o = i * JSYSQUEUE;
    queueRows[o + JSQ.qid] = q.qid;
    queueRows[o + JSQ.typeCode] = q.typeCode;
    queueRows[o + JSQ.sizeBytes] = q.sizeBytes ?? -1;
    queueRows[o + JSQ.gpuId] = q.gpuId ?? -1;
  });
  return { topology: topology ? topo : null, procs: procRows, procQueues: procs ? queueRows : null, gpus, queues };
}

const orNull = (v: number): number | null => (v < 0 ? null : v);
const tri = (v: number): boolean | null => (v < 0 ? null : v === 1);
const hexOrNull = (v: number): string | null => (v < 0 ? null : hex(v));
const addrOrNull = (lo: number, hi: number, shift = 0): string | null => (lo < 0 ? null : addr64(lo, hi, shift));

function nativeQueue(t: JoinTableViews, r: number, sys: NativeJoinSysfs): SnapshotQueue {
  const q = t.queues;
  const o = r * JQ;
  const mqdAddresses: (string | null)[] = [];
  const a0 = q[o + Q.firstAddress];
  for (let a = a0; a < a0 + q[o + Q.addressCount]; a++) {
    mqdAddresses.push(addrOrNull(t.addresses[a * JADDR + JA.lo], t.addresses[a * JADDR + JA.hi]));
  }
  const hqds: SnapshotHqd[] = [];
  const h0 = q[o + Q.firstHqd];
  for (let h = h0; h < h0 + q[o + Q.hqdCount]; h++) {
    const x = h * JHQD;
    const r = t.hqds;
    hqds.push({ inst: r[x + JH.inst], pipe: r[x + JH.pipe], queue: r[x + JH.queue], active: tri(r[x + JH.active]), busy: tri(r[x + JH.busy]), xcc: r[x + JH.xcc] });
  }
  const sysQueue = q[o + Q.sysQueue];
  const prioPipe = q[o + Q.priorityPipe];
  const sdmaEngine = q[o + Q.sdmaEngine];
  return {
    qid: orNull(q[o + Q.qid]),
    qidMatch: QID_MATCH[q[o + Q.qidMatch]],
    source: SOURCES[q[o + Q.source]],
    type: sysQueue >= 0 ? sys.queues[sysQueue].type : MQD_QUEUE_KIND_NAMES[q[o + Q.mqdKind]],
    aql: tri(q[o + Q.aql]),
    gpuId: hexOrNull(q[o + Q.gpuId]),
    node: orNull(q[o + Q.node]),
    sizeBytes: orNull(q[o + Q.sizeBytes]),
    priority: prioPipe < 0 ? null : { pipe: prioPipe, queue: q[o + Q.priorityQueue], level: LEVELS[q[o + Q.priorityLevel]] ?? null },
    doorbell: orNull(q[o + Q.doorbell]),
    ringBase: addrOrNull(q[o + Q.ringLo], q[o + Q.ringHi], 8),
    mqdAddresses,
    hqds,
    sdma:
      sdmaEngine < 0
        ? null
        : {
            engine: sdmaEngine,
            rlc: q[o + Q.sdmaRlc],
            active: tri(q[o + Q.sdmaActive]),
            busy: tri(q[o + Q.sdmaBusy]),
            matchedBy: q[o + Q.sdmaMatchedBy] === 1 ? 'ring-base' : 'engine-rlc',
          },
    inRunlist: tri(q[o + Q.inRunlist]),
    mqdsLine: orNull(q[o + Q.mqdsLine]),
  };
}

function nativeNode(t: JoinTableViews, r: number, sys: NativeJoinSysfs): SnapshotNode {
  const n = t.nodes;
  const o = r * JNODE;
  const topoRow = n[o + JN.topologyRow];
  const topo = topoRow >= 0 ? sys.gpus[topoRow] : null;
  const perXcc: SnapshotXcc[] = [];
  const x0 = n[o + JN.firstXcc];
  for (let x = x0; x < x0 + n[o + JN.xccCount]; x++) {
    const c = x * JXCC;
    const r = t.xccs;
    perXcc.push({ inst: r[c + JX.inst], cpSlots: orNull(r[c + JX.cpSlots]), activeCp: orNull(r[c + JX.activeCp]), hiqActive: tri(r[c + JX.hiqActive]) });
  }
  const present = n[o + JN.runlistPresent];
  return {
    node: orNull(n[o + JN.node]),
    gpuId: hex(n[o + JN.gpuId]),
    name: topo ? topo.name : null,
    gfxTarget: topo ? (topo.gpu?.gfxTarget ?? null) : null,
    numXcc: orNull(n[o + JN.numXcc]),
    stopped: n[o + JN.stopped] === 1,
    activeHqds: orNull(n[o + JN.activeHqds]),
    activeSdma: orNull(n[o + JN.activeSdma]),
    cpSlots: orNull(n[o + JN.cpSlots]),
    perXcc,
    queues: n[o + JN.queues],
    runlist:
      present < 0
        ? null
        : { present: present === 1, processes: n[o + JN.runlistProcesses], mapQueues: n[o + JN.runlistMapQueues], chained: n[o + JN.runlistChained] === 1 },
  };
}

function nativeUnmatchedHqd(u: Float64Array, r: number): UnmatchedHqd {
  const o = r * JUH;
  return {
    node: u[o + UH.node],
    gpuId: hex(u[o + UH.gpuId]),
    kind: u[o + UH.kind] === 1 ? 'sdma' : 'cp',
    inst: u[o + UH.inst],
    pipe: u[o + UH.pipe],
    queue: u[o + UH.queue],
    mqdAddress: addrOrNull(u[o + UH.mqdLo], u[o + UH.mqdHi]),
    ringBase: addrOrNull(u[o + UH.ringLo], u[o + UH.ringHi], 8),
    vmid: orNull(u[o + UH.vmid]),
    busy: tri(u[o + UH.busy]),
    likelyStale: u[o + UH.likelyStale] === 1,
  };
}

/**
 * The JoinResult of the addon's tables: what joinQueues gives for the same input.
 * The objects are built here, from a few rows per queue; the addon built none per HQD slot.
 */
export function joinFromNativeTables(
  t: JoinTableViews,
  sys: NativeJoinSysfs,
  ctx: { procs?: KfdProcs | null; status?: Map<number, ProcStatus | null>; pids?: readonly number[] } = {},
): JoinResult {
  const sysProcs = new Map<number, KfdProc>();
  for (const p of ctx.procs?.procs ?? []) sysProcs.set(p.pid, p);
  const want = ctx.pids ? new Set(ctx.pids) : null;
  const processes: SnapshotProcess[] = [];
  for (let p = 0; p < t.processes.length / JPROC; p++) {
    const o = p * JPROC;
    const pr = t.processes;
    const pid = pr[o + JP.pid];
    if (want && !want.has(pid)) continue;
    const queues: SnapshotQueue[] = [];
    for (let q = pr[o + JP.firstQueue]; q < pr[o + JP.firstQueue] + pr[o + JP.queueCount]; q++) queues.push(nativeQueue(t, q, sys));
    const runlist: SnapshotProcess['runlist'] = [];
    for (let r = pr[o + JP.firstRunlist]; r < pr[o + JP.firstRunlist] + pr[o + JP.runlistCount]; r++) {
      const x = r * JRL;
      const rl = t.runlist;
      runlist.push({ gpuId: hex(rl[x + JR.gpuId]), pasid: rl[x + JR.pasid], numQueues: orNull(rl[x + JR.numQueues]), mappedQueues: rl[x + JR.mappedQueues] });
    }
    const st = ctx.status?.get(pid) ?? null;
    processes.push({ pid, nsPid: namespacePid(st), name: st?.name ?? null, queues, gpus: sysProcs.get(pid)?.gpus ?? [], runlist });
  }
  const unmatchedHqds: UnmatchedHqd[] = [];
  for (let u = 0; u < t.unmatchedHqds.length / JUH; u++) unmatchedHqds.push(nativeUnmatchedHqd(t.unmatchedHqds, u));
  const unmatchedRunlistQueues: JoinResult['unmatchedRunlistQueues'] = [];
  for (let u = 0; u < t.unmatchedRunlist.length / JUR; u++) {
    const o = u * JUR;
    const r = t.unmatchedRunlist;
    unmatchedRunlistQueues.push({
      gpuId: hex(r[o + UR.gpuId]),
      pasid: orNull(r[o + UR.pasid]),
      engine: r[o + UR.engine] < 0 ? null : t.runlistEngines[r[o + UR.engine]],
      doorbell: orNull(r[o + UR.doorbell]),
      mqdAddress: addrOrNull(r[o + UR.mqdLo], r[o + UR.mqdHi]),
    });
  }
  const nodes: SnapshotNode[] = [];
  for (let n = 0; n < t.nodes.length / JNODE; n++) nodes.push(nativeNode(t, n, sys));
  return { processes, unmatchedHqds, unmatchedRunlistQueues, nodes, warnings: t.warnings };
}
