/**
 * The queue model: joins what debugfs (mqds, hqds, rls) and sysfs (topology, proc) say into one
 * picture per process and per node (DESIGN.md "The queue model").
 *
 *  - HQD -> queue: an HQD slot's CP_MQD_BASE_ADDR equals dw128/129 of the MQD block of that XCC
 *    (per gpu). Active slots that match no MQD are reported in unmatchedHqds, not dropped.
 *  - SDMA RLC -> queue: sdma_engine_id/sdma_queue_id of the SDMA MQD (dw126/127), confirmed by
 *    the ring base; by ring base alone when the engine numbers disagree (partition modes).
 *  - runlist -> queue: MAP_QUEUES MQD address == XCC0 block address (compute); SDMA MAP_QUEUES by
 *    doorbell within the process that the compute queues identified.
 *  - sysfs queue ids: mqds does not print them (SPEC.md §1.3). Matched per (gpu, compute|sdma):
 *    first by what earlier snapshots of a trace established ('history', qidHints); then one
 *    queue on each side -> 'unique', else by creation order ('creation-order': mqds lists newest
 *    first, KFD gives the lowest free id, so oldest = lowest id unless ids were reused). With
 *    different counts only the oldest pairs are matched, a warning says so, and sysfs queues
 *    debugfs does not show yet are listed from sysfs alone.
 */
import { priorityLevel } from './decode.js';
import type { ProcStatus } from './procfs.js';
import { namespacePid } from './procfs.js';
import type {
  HqdSlot,
  Hqds,
  KfdProc,
  KfdProcGpuStats,
  KfdProcQueue,
  KfdProcs,
  MqdQueue,
  Mqds,
  RlsMapProcess,
  Rls,
  Topology,
} from './types.js';

export type QidMatch = 'unique' | 'creation-order' | 'history' | 'sysfs-only' | 'unmatched' | 'no-sysfs';

export interface SnapshotHqd {
  /** logical XCC (hqds "Inst") */
  inst: number;
  pipe: number;
  queue: number;
  active: boolean;
  busy: boolean | null;
  /** index of the MQD block (XCC) whose address matched */
  xcc: number;
}

export interface SnapshotSdmaSlot {
  engine: number;
  rlc: number;
  active: boolean;
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
  priority: { pipe: number; queue: number; level: 'low' | 'normal' | 'high' | null } | null;
  doorbell: number | null;
  ringBase: string | null;
  /** GART address of the MQD of each XCC */
  mqdAddresses: string[];
  /** hardware slots per XCC (compute) */
  hqds: SnapshotHqd[];
  /** SDMA engine/RLC holding the queue (SDMA) */
  sdma: SnapshotSdmaSlot | null;
  /** listed in the runlist (mapped by the HWS); null when the runlist was not read */
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
  runlist: { gpuId: string; pasid: number; numQueues: number; mappedQueues: number }[];
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
}

export interface SnapshotXcc {
  inst: number;
  cpSlots: number;
  activeCp: number;
  hiqActive: boolean;
}

export interface SnapshotNode {
  node: number;
  gpuId: string;
  name: string | null;
  gfxTarget: string | null;
  /** from topology; null when sysfs topology was not readable */
  numXcc: number | null;
  stopped: boolean;
  /** active compute HQD slots (HIQ excluded) */
  activeHqds: number;
  activeSdma: number;
  cpSlots: number;
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

/** What identifies a debugfs queue across snapshots: its XCC0 MQD address, or an SDMA ring. */
export function debugfsIdentity(q: Pick<SnapshotQueue, 'mqdAddresses' | 'ringBase' | 'type'>): string {
  return q.mqdAddresses.length ? `mqd:${q.mqdAddresses[0]}` : `ring:${q.ringBase}`;
}

export interface JoinResult {
  processes: SnapshotProcess[];
  unmatchedHqds: UnmatchedHqd[];
  unmatchedRunlistQueues: { gpuId: string; pasid: number | null; engine: string; doorbell: number; mqdAddress: string }[];
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

interface Work {
  q: SnapshotQueue;
  mqd: MqdQueue | null;
  pid: number;
  order: number;
}

export function joinQueues(input: JoinInput): JoinResult {
  const warnings: string[] = [];
  const topo = input.topology?.nodes ?? [];
  const nodeOfGpu = new Map<string, number>();
  for (const n of topo) if (n.isGpu) nodeOfGpu.set(n.gpuIdHex, n.node);
  for (const n of input.hqds?.nodes ?? []) if (!nodeOfGpu.has(n.gpuId)) nodeOfGpu.set(n.gpuId, n.node);

  // ---- queues from mqds
  const work: Work[] = [];
  const byPid = new Map<number, Work[]>();
  const add = (w: Work): void => {
    work.push(w);
    let l = byPid.get(w.pid);
    if (!l) byPid.set(w.pid, (l = []));
    l.push(w);
  };
  for (const p of input.mqds?.processes ?? []) {
    // mqds lists newest first; keep creation order (oldest first)
    const qs = [...p.queues].reverse();
    qs.forEach((mq, i) => {
      const first = mq.blocks[0];
      const c = first?.compute;
      const s = first?.sdma;
      add({
        pid: p.pid,
        order: i,
        mqd: mq,
        q: {
          qid: null,
          qidMatch: input.procs ? 'unmatched' : 'no-sysfs',
          source: 'debugfs',
          type: mq.type,
          aql: c ? c.aql : null,
          gpuId: mq.gpuId,
          node: mq.gpuId !== null ? (nodeOfGpu.get(mq.gpuId) ?? null) : null,
          sizeBytes: c ? c.ringSizeBytes : s ? s.ringSizeBytes : null,
          priority: c ? { pipe: c.pipePriority, queue: c.queuePriority, level: priorityLevel(c.pipePriority, c.queuePriority) } : null,
          doorbell: c ? c.doorbell : s ? s.doorbell : null,
          ringBase: c ? c.ringBase : s ? s.ringBase : null,
          mqdAddresses: c ? mq.blocks.map((b) => b.compute!.mqdAddress) : [],
          hqds: [],
          sdma: null,
          inRunlist: null,
          mqdsLine: mq.line,
        },
      });
    });
  }

  // ---- sysfs queue ids
  const sysProcs = new Map<number, KfdProc>();
  for (const p of input.procs?.procs ?? []) sysProcs.set(p.pid, p);
  if (input.procs) {
    for (const [pid, sp] of sysProcs) {
      const mine = byPid.get(pid) ?? [];
      if (input.mqds && mine.length === 0 && sp.queues.length > 0) {
        warnings.push(`process ${pid}: sysfs lists ${sp.queues.length} queue(s) that debugfs mqds does not show (created or destroyed between the reads?)`);
      }
      if (!input.mqds || mine.length === 0) {
        for (const sq of sp.queues) add({ pid, order: sq.qid, mqd: null, q: fromSysfs(sq, nodeOfGpu) });
        continue;
      }
      const groups = new Map<string, { sys: KfdProcQueue[]; dbg: Work[] }>();
      const group = (k: string) => {
        let g = groups.get(k);
        if (!g) groups.set(k, (g = { sys: [], dbg: [] }));
        return g;
      };
      for (const sq of sp.queues) group(`${sq.gpuId === null ? '?' : hex(sq.gpuId)}|${sysfsClass(sq.typeCode)}`).sys.push(sq);
      for (const w of mine) group(`${w.q.gpuId ?? '?'}|${mqdClass(w.mqd!)}`).dbg.push(w);
      const hints = input.qidHints?.get(pid);
      for (const [key, g] of groups) {
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
          warnings.push(
            `process ${pid}: ${g.sys.length} ${cls} queue(s) on gpu ${gpu} in sysfs but ${g.dbg.length} in mqds (created or destroyed between the reads?)`,
          );
          // sysfs queues debugfs did not show yet: listed from sysfs alone
          for (const sq of sys.slice(n)) add({ pid, order: Number.MAX_SAFE_INTEGER - 1024 + sq.qid, mqd: null, q: fromSysfs(sq, nodeOfGpu) });
        }
      }
    }
  }

  // ---- HQD slots -> queues
  const unmatchedHqds: UnmatchedHqd[] = [];
  const byMqdAddr = new Map<string, { w: Work; block: number }>();
  for (const w of work) w.q.mqdAddresses.forEach((a, i) => byMqdAddr.set(`${w.q.gpuId}|${a}`, { w, block: i }));
  const sdmaWork = work.filter((w) => w.mqd && w.mqd.type === 'sdma');
  for (const node of input.hqds?.nodes ?? []) {
    const insts = [...new Set(node.slots.filter((s) => s.kind !== 'sdma').map((s) => s.inst))].sort((a, b) => a - b);
    for (const slot of node.slots) {
      if (slot.kind === 'cp') {
        const hit = slot.mqdAddress && slot.mqdAddress !== '0x0' ? byMqdAddr.get(`${node.gpuId}|${slot.mqdAddress}`) : undefined;
        if (hit) {
          hit.w.q.hqds.push({ inst: slot.inst, pipe: slot.pipe, queue: slot.queue, active: slot.active, busy: slot.busy, xcc: hit.block });
          const pos = insts.indexOf(slot.inst);
          if (slot.active && pos !== hit.block) {
            warnings.push(
              `node ${node.node}: HQD Inst ${slot.inst} Pipe ${slot.pipe} Queue ${slot.queue} holds MQD block ${hit.block} of pid ${hit.w.pid}'s queue, expected block ${pos}`,
            );
          }
        } else if (slot.active) {
          unmatchedHqds.push(unmatched(node.node, node.gpuId, slot));
        }
      } else if (slot.kind === 'sdma' && slot.active) {
        const onGpu = sdmaWork.filter((w) => w.q.gpuId === node.gpuId);
        let w = onGpu.find((x) => x.mqd!.blocks[0]?.sdma?.engine === slot.pipe && x.mqd!.blocks[0]?.sdma?.rlc === slot.queue);
        let by: SnapshotSdmaSlot['matchedBy'] = 'engine-rlc';
        if (w && slot.ringBase !== null && w.q.ringBase !== slot.ringBase) {
          warnings.push(`node ${node.node}: SDMA engine ${slot.pipe} RLC ${slot.queue} ring ${slot.ringBase} differs from its MQD's ring ${w.q.ringBase}`);
        }
        if (!w) {
          const byRing = onGpu.filter((x) => x.q.ringBase === slot.ringBase);
          if (byRing.length === 1) {
            w = byRing[0];
            by = 'ring-base';
          }
        }
        if (w) w.q.sdma = { engine: slot.pipe, rlc: slot.queue, active: slot.active, busy: slot.busy, matchedBy: by };
        else unmatchedHqds.push(unmatched(node.node, node.gpuId, slot));
      }
    }
  }
  for (const w of work) w.q.hqds.sort((a, b) => a.inst - b.inst || a.pipe - b.pipe || a.queue - b.queue);

  // ---- runlist
  const unmatchedRunlistQueues: JoinResult['unmatchedRunlistQueues'] = [];
  const runlistOf = new Map<number, SnapshotProcess['runlist']>();
  if (input.rls) {
    const rlsGpus = new Map(input.rls.nodes.map((n) => [n.gpuId, n]));
    for (const w of work) {
      if (w.q.source === 'sysfs' || w.q.gpuId === null) continue;
      w.q.inRunlist = rlsGpus.has(w.q.gpuId) ? false : null;
    }
    for (const node of input.rls.nodes) {
      // MAP_QUEUES before any MAP_PROCESS belong to no known process (pasid -1)
      const groups: Pick<RlsMapProcess, 'pasid' | 'numQueues' | 'queues'>[] = [...node.processes];
      if (node.strayQueues.length) groups.push({ pasid: -1, numQueues: 0, queues: node.strayQueues });
      for (const mp of groups) {
        let pid: number | null = null;
        for (const mq of mp.queues) {
          if (mq.engine !== 'compute') continue;
          const hit = byMqdAddr.get(`${node.gpuId}|${mq.mqdAddress}`);
          if (hit && hit.block === 0) {
            hit.w.q.inRunlist = true;
            pid = hit.w.pid;
          } else {
            unmatchedRunlistQueues.push({ gpuId: node.gpuId, pasid: mp.pasid >= 0 ? mp.pasid : null, engine: mq.engine, doorbell: mq.doorbell, mqdAddress: mq.mqdAddress });
          }
        }
        for (const mq of mp.queues) {
          if (mq.engine === 'compute') continue;
          // doorbell indexes are device-wide on real KFD; the engine narrows it when a synthetic or
          // odd dump repeats them, the process (from its compute queues) narrows it further
          const cands = sdmaWork.filter(
            (w) =>
              w.q.gpuId === node.gpuId &&
              w.q.doorbell === mq.doorbell &&
              `sdma${w.mqd!.blocks[0]?.sdma?.engine}` === mq.engine &&
              (pid === null || w.pid === pid),
          );
          if (cands.length === 1) {
            cands[0].q.inRunlist = true;
            pid ??= cands[0].pid;
          } else {
            unmatchedRunlistQueues.push({ gpuId: node.gpuId, pasid: mp.pasid >= 0 ? mp.pasid : null, engine: mq.engine, doorbell: mq.doorbell, mqdAddress: mq.mqdAddress });
          }
        }
        if (pid !== null && mp.pasid >= 0) {
          let l = runlistOf.get(pid);
          if (!l) runlistOf.set(pid, (l = []));
          l.push({ gpuId: node.gpuId, pasid: mp.pasid, numQueues: mp.numQueues, mappedQueues: mp.queues.length });
        }
      }
    }
  }

  // ---- processes
  const pidSet = new Set<number>([...byPid.keys(), ...sysProcs.keys()]);
  let pids = [...pidSet].sort((a, b) => a - b);
  if (input.pids) {
    const want = new Set(input.pids);
    pids = pids.filter((p) => want.has(p));
  }
  const processes: SnapshotProcess[] = pids.map((pid) => {
    const st = input.status?.get(pid) ?? null;
    const qs = (byPid.get(pid) ?? [])
      .slice()
      .sort((a, b) => (a.q.qid ?? Infinity) - (b.q.qid ?? Infinity) || a.order - b.order)
      .map((w) => w.q);
    return {
      pid,
      nsPid: namespacePid(st),
      name: st?.name ?? null,
      queues: qs,
      gpus: sysProcs.get(pid)?.gpus ?? [],
      runlist: runlistOf.get(pid) ?? [],
    };
  });

  // ---- nodes
  const nodes = buildNodes(input, work, warnings);
  return { processes, unmatchedHqds, unmatchedRunlistQueues, nodes, warnings };
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

function unmatched(node: number, gpuId: string, s: HqdSlot): UnmatchedHqd {
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
  };
}

function buildNodes(input: JoinInput, work: Work[], warnings: string[]): SnapshotNode[] {
  const out = new Map<string, SnapshotNode>();
  const get = (gpuId: string, node: number): SnapshotNode => {
    let n = out.get(gpuId);
    if (!n) {
      out.set(
        gpuId,
        (n = {
          node,
          gpuId,
          name: null,
          gfxTarget: null,
          numXcc: null,
          stopped: false,
          activeHqds: 0,
          activeSdma: 0,
          cpSlots: 0,
          perXcc: [],
          queues: 0,
          runlist: null,
        }),
      );
    }
    return n;
  };
  for (const t of input.topology?.nodes ?? []) {
    if (!t.isGpu) continue;
    const n = get(t.gpuIdHex, t.node);
    n.name = t.name;
    n.gfxTarget = t.gpu?.gfxTarget ?? null;
    n.numXcc = t.gpu?.numXcc ?? null;
  }
  for (const h of input.hqds?.nodes ?? []) {
    const n = get(h.gpuId, h.node);
    n.stopped = h.stopped;
    const xcc = new Map<number, SnapshotXcc>();
    for (const s of h.slots) {
      if (s.kind === 'sdma') {
        if (s.active) n.activeSdma++;
        continue;
      }
      let x = xcc.get(s.inst);
      if (!x) xcc.set(s.inst, (x = { inst: s.inst, cpSlots: 0, activeCp: 0, hiqActive: false }));
      if (s.kind === 'hiq') x.hiqActive ||= s.active;
      else {
        x.cpSlots++;
        n.cpSlots++;
        if (s.active) {
          x.activeCp++;
          n.activeHqds++;
        }
      }
    }
    n.perXcc = [...xcc.values()].sort((a, b) => a.inst - b.inst);
    if (n.numXcc !== null && !h.stopped && n.perXcc.length !== n.numXcc) {
      warnings.push(`node ${h.node} (gpu ${h.gpuId}): hqds shows ${n.perXcc.length} XCC(s) but topology says num_xcc ${n.numXcc}`);
    }
  }
  for (const r of input.rls?.nodes ?? []) {
    const n = get(r.gpuId, r.node);
    n.runlist = {
      present: r.hasRunlist,
      processes: r.processes.length,
      mapQueues: r.processes.reduce((a, p) => a + p.queues.length, 0) + r.strayQueues.length,
      chained: r.chained,
    };
  }
  for (const w of work) {
    if (w.q.gpuId === null) continue;
    const n = out.get(w.q.gpuId) ?? get(w.q.gpuId, w.q.node ?? -1);
    n.queues++;
    if (w.mqd && mqdClass(w.mqd) === 'compute' && n.numXcc !== null && w.mqd.blocks.length !== n.numXcc) {
      warnings.push(`pid ${w.pid}: compute queue at mqds line ${w.mqd.line} has ${w.mqd.blocks.length} MQD block(s), gpu ${w.q.gpuId} has num_xcc ${n.numXcc}`);
    }
  }
  return [...out.values()].sort((a, b) => a.node - b.node);
}
