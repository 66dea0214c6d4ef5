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
  decodeComputeHqd,
  decodeComputeMqd,
  decodeGpuInfo,
  decodeMapProcess,
  decodeMapQueues,
  decodeSdmaHqd,
  decodeSdmaMqd,
} from './decode.js';
import { PM4_OPCODE_NAMES } from './rls-ts.js';
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
    for (let q = procs[pr + 2]; q < procs[pr + 2] + procs[pr + 3]; q++) {
      const qr = q * MQDS_QUEUE_COLS;
      const kind = queues[qr + 1];
      const queue: MqdQueue = {
        type: MQD_QUEUE_KIND_NAMES[kind] as MqdQueueType,
        typeCode: queues[qr + 2] < 0 ? null : queues[qr + 2],
        gpuId: queues[qr + 3] < 0 ? null : hex(queues[qr + 3]),
        line: queues[qr + 4],
        blocks: [],
        extraSdmaCopies: queues[qr + 7],
      };
      for (let b = queues[qr + 5]; b < queues[qr + 5] + queues[qr + 6]; b++) {
        const br = b * MQDS_BLOCK_COLS;
        const bw = words.subarray(blocks[br + 2], blocks[br + 2] + blocks[br + 3]);
        queue.blocks.push({
          index: b - queues[qr + 5],
          line: blocks[br + 1],
          words: bw,
          compute: kind === MqdQueueKind.compute || kind === MqdQueueKind.diq ? decodeComputeMqd(bw) : undefined,
          sdma: kind === MqdQueueKind.sdma ? decodeSdmaMqd(bw) : undefined,
        });
      }
      qs.push(queue);
    }
    processes.push({ pid: procs[pr], pasidField: raw.pasids[p], line: procs[pr + 1], queues: qs });
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
    for (let s = nodes[nr + 4]; s < nodes[nr + 4] + nodes[nr + 5]; s++) {
      const sr = s * HQDS_SLOT_COLS;
      const kind = slots[sr + 1];
      if (opts.inUseOnly && kind !== SlotCode.hiq && !slotInUse(kind, words, slots[sr + 7], slots[sr + 8])) continue;
      const regs = words.subarray(slots[sr + 7], slots[sr + 7] + slots[sr + 8]);
      const d = kind === SlotCode.sdma ? decodeSdmaHqd(regs) : decodeComputeHqd(regs);
      list.push({
        kind: SLOT_KINDS[kind],
        inst: slots[sr + 2] < 0 ? 0 : slots[sr + 2],
        instPrinted: slots[sr + 2] >= 0,
        mec: slots[sr + 3] < 0 ? null : slots[sr + 3],
        pipe: slots[sr + 4],
        queue: slots[sr + 5],
        line: slots[sr + 6],
        firstAddress: slots[sr + 9],
        registers: regs,
        ...d,
      });
    }
    out.push({ node: nodes[nr], gpuId: hex(nodes[nr + 1]), line: nodes[nr + 2], stopped: nodes[nr + 3] === 1, slots: list });
  }
  return { ...common(raw, path, file), nodes: out };
}

export function buildRls(raw: RlsRaw, path: Impl, file?: string): Rls {
  const { nodes, packets, words } = raw;
  const out: RlsNode[] = [];
  for (let n = 0; n < nodes.length / RLS_NODE_COLS; n++) {
    const nr = n * RLS_NODE_COLS;
    const ib = words.subarray(nodes[nr + 4], nodes[nr + 4] + nodes[nr + 5]);
    const node: RlsNode = {
      node: nodes[nr],
      gpuId: hex(nodes[nr + 1]),
      line: nodes[nr + 2],
      hasRunlist: nodes[nr + 3] !== 1,
      ibDwords: nodes[nr + 5],
      words: ib,
      packets: [],
      processes: [],
      strayQueues: [],
      chained: false,
    };
    for (let p = nodes[nr + 6]; p < nodes[nr + 6] + nodes[nr + 7]; p++) {
      const pr = p * RLS_PACKET_COLS;
      const offset = packets[pr + 1];
      const opcode = packets[pr + 2];
      const dwords = packets[pr + 3];
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
    const proc: KfdProc = { pid: procs[pr], pasid: procs[pr + 1] < 0 ? null : procs[pr + 1], queues: [], gpus: [] };
    for (let q = procs[pr + 2]; q < procs[pr + 2] + procs[pr + 3]; q++) {
      const qr = q * PROCS_QUEUE_COLS;
      const t = queues[qr + 2];
      proc.queues.push({
        qid: queues[qr + 1],
        typeCode: t,
        type: SYSFS_QUEUE_TYPES[t] ?? (t < 0 ? 'unknown' : `type-${t}`),
        sizeBytes: queues[qr + 3] < 0 ? null : queues[qr + 3],
        gpuId: queues[qr + 4] < 0 ? null : queues[qr + 4],
      });
    }
    const byGpu = new Map<number, KfdProcGpuStats>();
    for (let m = procs[pr + 4]; m < procs[pr + 4] + procs[pr + 5]; m++) {
      const mr = m * PROCS_METRIC_COLS;
      const gpu = metrics[mr + 2];
      let g = byGpu.get(gpu);
      if (!g) byGpu.set(gpu, (g = { gpuId: gpu }));
      (g as unknown as Record<string, number>)[METRIC_FIELDS[metrics[mr + 1]]] = metrics[mr + 3];
    }
    proc.gpus = [...byGpu.values()];
    out.push(proc);
  }
  return { path, procs: out, issues: raw.issues };
}
