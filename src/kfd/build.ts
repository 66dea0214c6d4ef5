/** Raw tables (raw.ts) -> friendly objects (types.ts). One implementation for both paths. */
import type { Impl } from '../native.js';
import {
  HQDS_NODE_COLS,
  HQDS_SLOT_COLS,
  HqdSlotKind as SlotCode,
  MQDS_BLOCK_COLS,
  MQDS_PROC_COLS,
  MQDS_QUEUE_COLS,
  MQD_QUEUE_KIND_NAMES,
  MqdQueueKind,
  PROCS_METRIC_COLS,
  PROCS_PROC_COLS,
  PROCS_QUEUE_COLS,
  RLS_NODE_COLS,
  RLS_PACKET_COLS,
  type HqdsRaw,
  type MqdsRaw,
  type ProcsRaw,
  type RawCommon,
  type RlsRaw,
  type TopologyRaw,
} from './raw.js';
import {
  HqdsNodeCol as HN,
  HqdsSlotCol as HS,
  MqdsBlockCol as MB,
  MqdsProcCol as MP,
  MqdsQueueCol as MQ,
  ProcsMetricCol as PM,
  ProcsProcCol as PP,
  ProcsQueueCol as PQ,
  RlsNodeCol as RN,
  RlsPacketCol as RP,
} from './columns.js';
import {
  decodeComputeHqd,
  decodeComputeMqd,
  decodeGpuInfo,
  decodeMapProcess,
  decodeMapQueues,
  decodeSdmaHqd,
  decodeSdmaMqd,
} from './decode.js';
import { PM4_OPCODE_NAMES } from './rls-parser.js';
import type {
  HqdNode,
  HqdSlot,
  Hqds,
  KfdProc,
  KfdProcGpuStats,
  KfdProcs,
  MqdProcess,
  MqdQueue,
  MqdQueueType,
  Mqds,
  RlsNode,
  Rls,
  Topology,
} from './types.js';

const hex = (v: number): string => (v >>> 0).toString(16);

function common(raw: RawCommon, path: Impl, file?: string) {
  return {
    path,
    file,
    issues: raw.issues,
    suppressed: raw.suppressed,
    partial: raw.issues.some((i) => i.severity === 'error') || raw.suppressed > 0,
    lines: raw.lines,
  };
}

export function buildMqds(raw: MqdsRaw, path: Impl, file?: string): Mqds {
  const { procs, queues, blocks, words } = raw;
  const processes: MqdProcess[] = [];
  for (let p = 0; p < procs.length / MQDS_PROC_COLS; p++) {
    const pr = p * MQDS_PROC_COLS;
    const qs: MqdQueue[] = [];
    for (let q = procs[pr + MP.firstQueue]; q < procs[pr + MP.firstQueue] + procs[pr + MP.queueCount]; q++) {
      const qr = q * MQDS_QUEUE_COLS;
      const kind = queues[qr + MQ.kind];
      const queue: MqdQueue = {
        type: MQD_QUEUE_KIND_NAMES[kind] as MqdQueueType,
        typeCode: queues[qr + MQ.typeCode] < 0 ? null : queues[qr + MQ.typeCode],
        gpuId: queues[qr + MQ.gpuId] < 0 ? null : hex(queues[qr + MQ.gpuId]),
        line: queues[qr + MQ.line],
        blocks: [],
        extraSdmaCopies: queues[qr + MQ.extraCopies],
      };
      for (let b = queues[qr + MQ.firstBlock]; b < queues[qr + MQ.firstBlock] + queues[qr + MQ.blockCount]; b++) {
        const br = b * MQDS_BLOCK_COLS;
        const bw = words.subarray(blocks[br + MB.wordOffset], blocks[br + MB.wordOffset] + blocks[br + MB.wordCount]);
        queue.blocks.push({
          index: b - queues[qr + MQ.firstBlock],
          line: blocks[br + MB.line],
          words: bw,
          compute: kind === MqdQueueKind.compute || kind === MqdQueueKind.diq ? decodeComputeMqd(bw) : undefined,
          sdma: kind === MqdQueueKind.sdma ? decodeSdmaMqd(bw) : undefined,
        });
      }
      qs.push(queue);
    }
    processes.push({ pid: procs[pr + MP.pid], pasidField: raw.pasids[p], line: procs[pr + MP.line], queues: qs });
  }
  return { ...common(raw, path, file), processes };
}

const SLOT_KINDS = ['hiq', 'cp', 'sdma'] as const;

/**
 * Slots whose registers say nothing is there (compute: not active and no MQD address; SDMA: ring
 * disabled) can be left out with `inUseOnly`: the tracer needs only the others, and most of an
 * hqds dump is empty slots.
 */
function slotInUse(kind: number, words: Uint32Array, at: number, count: number): boolean {
  if (count === 0) return false;
  if (kind === SlotCode.sdma) return (words[at] & 1) === 1;
  return (count > 2 && (words[at + 2] & 1) === 1) || words[at] !== 0 || (count > 1 && words[at + 1] !== 0);
}

export function buildHqds(raw: HqdsRaw, path: Impl, file?: string, opts: { inUseOnly?: boolean } = {}): Hqds {
  const { nodes, slots, words } = raw;
  const out: HqdNode[] = [];
  for (let n = 0; n < nodes.length / HQDS_NODE_COLS; n++) {
    const nr = n * HQDS_NODE_COLS;
    const list: HqdSlot[] = [];
    for (let s = nodes[nr + HN.firstSlot]; s < nodes[nr + HN.firstSlot] + nodes[nr + HN.slotCount]; s++) {
      const sr = s * HQDS_SLOT_COLS;
      const kind = slots[sr + HS.kind];
      const at = slots[sr + HS.wordOffset];
      const count = slots[sr + HS.wordCount];
      if (opts.inUseOnly && kind !== SlotCode.hiq && !slotInUse(kind, words, at, count)) continue;
      const regs = words.subarray(at, at + count);
      const d = kind === SlotCode.sdma ? decodeSdmaHqd(regs) : decodeComputeHqd(regs);
      list.push({
        kind: SLOT_KINDS[kind],
        inst: slots[sr + HS.inst] < 0 ? 0 : slots[sr + HS.inst],
        instPrinted: slots[sr + HS.inst] >= 0,
        mec: slots[sr + HS.mec] < 0 ? null : slots[sr + HS.mec],
        pipe: slots[sr + HS.pipe],
        queue: slots[sr + HS.queue],
        line: slots[sr + HS.line],
        firstAddress: slots[sr + HS.firstRegisterAddress],
        registers: regs,
        ...d,
      });
    }
    out.push({
      node: nodes[nr + HN.node],
      gpuId: hex(nodes[nr + HN.gpuId]),
      line: nodes[nr + HN.line],
      stopped: nodes[nr + HN.stopped] === 1,
      slots: list,
    });
  }
  return { ...common(raw, path, file), nodes: out };
}

export function buildRls(raw: RlsRaw, path: Impl, file?: string): Rls {
  const { nodes, packets, words } = raw;
  const out: RlsNode[] = [];
  for (let n = 0; n < nodes.length / RLS_NODE_COLS; n++) {
    const nr = n * RLS_NODE_COLS;
    const ib = words.subarray(nodes[nr + RN.wordOffset], nodes[nr + RN.wordOffset] + nodes[nr + RN.wordCount]);
    const node: RlsNode = {
      node: nodes[nr + RN.node],
      gpuId: hex(nodes[nr + RN.gpuId]),
      line: nodes[nr + RN.line],
      hasRunlist: nodes[nr + RN.noRunlist] !== 1,
      ibDwords: nodes[nr + RN.wordCount],
      words: ib,
      packets: [],
      processes: [],
      strayQueues: [],
      chained: false,
    };
    for (let p = nodes[nr + RN.firstPacket]; p < nodes[nr + RN.firstPacket] + nodes[nr + RN.packetCount]; p++) {
      const pr = p * RLS_PACKET_COLS;
      const offset = packets[pr + RP.dwordOffset];
      const opcode = packets[pr + RP.opcode];
      const dwords = packets[pr + RP.dwords];
      node.packets.push({ offset, opcode, name: PM4_OPCODE_NAMES[opcode] ?? 'UNKNOWN', dwords });
      if (opcode === 0xa1) {
        node.processes.push({ ...decodeMapProcess(ib, offset, dwords), offset });
      } else if (opcode === 0xa2) {
        const mq = { ...decodeMapQueues(ib, offset, dwords), offset };
        const last = node.processes[node.processes.length - 1];
        (last ? last.queues : node.strayQueues).push(mq);
      } else if (opcode === 0xa5) {
        node.chained = true;
      }
    }
    out.push(node);
  }
  return { ...common(raw, path, file), nodes: out };
}

export function buildTopology(raw: TopologyRaw, path: Impl): Topology {
  return {
    path,
    issues: raw.issues,
    nodes: raw.nodes.map((n) => {
      const properties: Record<string, string> = {};
      n.keys.forEach((k, i) => (properties[k] = n.values[i]));
      const isGpu = n.gpuId !== 0;
      return {
        node: n.node,
        gpuId: n.gpuId,
        gpuIdHex: hex(n.gpuId),
        name: n.name,
        isGpu,
        properties,
        gpu: isGpu ? decodeGpuInfo(properties) : null,
      };
    }),
  };
}

export const SYSFS_QUEUE_TYPES = ['compute', 'sdma', 'hiq', 'diq', 'sdma-xgmi', 'sdma-by-engine-id'];

const METRIC_FIELDS: (keyof KfdProcGpuStats)[] = ['vramBytes', 'sdmaUs', 'evictedMs', 'cuOccupancy', 'faults', 'pageIn', 'pageOut'];

export function buildProcs(raw: ProcsRaw, path: Impl): KfdProcs {
  const { procs, queues, metrics } = raw;
  const out: KfdProc[] = [];
  for (let p = 0; p < procs.length / PROCS_PROC_COLS; p++) {
    const pr = p * PROCS_PROC_COLS;
    const pasid = procs[pr + PP.pasid];
    const proc: KfdProc = { pid: procs[pr + PP.pid], pasid: pasid < 0 ? null : pasid, queues: [], gpus: [] };
    for (let q = procs[pr + PP.firstQueue]; q < procs[pr + PP.firstQueue] + procs[pr + PP.queueCount]; q++) {
      const qr = q * PROCS_QUEUE_COLS;
      const t = queues[qr + PQ.type];
      proc.queues.push({
        qid: queues[qr + PQ.qid],
        typeCode: t,
        type: SYSFS_QUEUE_TYPES[t] ?? (t < 0 ? 'unknown' : `type-${t}`),
        sizeBytes: queues[qr + PQ.size] < 0 ? null : queues[qr + PQ.size],
        gpuId: queues[qr + PQ.gpuId] < 0 ? null : queues[qr + PQ.gpuId],
      });
    }
    const byGpu = new Map<number, KfdProcGpuStats>();
    for (let m = procs[pr + PP.firstMetric]; m < procs[pr + PP.firstMetric] + procs[pr + PP.metricCount]; m++) {
      const mr = m * PROCS_METRIC_COLS;
      const gpu = metrics[mr + PM.gpuId];
      let g = byGpu.get(gpu);
      if (!g) byGpu.set(gpu, (g = { gpuId: gpu }));
      (g as unknown as Record<string, number>)[METRIC_FIELDS[metrics[mr + PM.metric]]] = metrics[mr + PM.value];
    }
    proc.gpus = [...byGpu.values()];
    out.push(proc);
  }
  return { path, procs: out, issues: raw.issues };
}
