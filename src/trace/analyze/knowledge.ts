/**
 * What a sample actually read. A sample's issues say when its debugfs text was not whole (a dump
 * cut at a line or a dword, two dumps appended, a broken block) and, from the join, which GPUs and
 * XCCs (Inst) its hqds did not show. Both trace sources write them: the tracer as
 * `mqds:<line>: <message>` / `hqds:<line>: <message>`, the dump reader as `<file>:<line>: <message>`
 * (the file named snapshot_mqd_..., snapshot_hqd_...) plus the join's warnings.
 *
 * What a sample did not read is unknown, never "none": the figures built on it (queue sets, per-XCC
 * counts, mappings) count only what was read. Issue texts that only say a line was not understood
 * (a shell prompt pasted into a dump) lose nothing and leave the sample whole.
 */
import type { TraceQueue, TraceSample } from '../schema.js';

export interface SampleKnowledge {
  /** the mqds text was read whole: every queue of every process is in the sample */
  mqdsWhole: boolean;
  /** the hqds text was read whole */
  hqdsWhole: boolean;
  /** GPUs (gpu_id hex) whose node hqds did not show */
  unknownGpus: Set<string>;
  /** per node: the Insts hqds did not show */
  unknownInsts: Map<number, Set<number>>;
}

/** Parser issues that mean mqds content was lost (kfd/mqds-parser.ts wording). */
const MQDS_LOST =
  /dump cut\?|malformed MQD dump line|MQD block has \d+ dwords|MQD dump offset|MQD dump starts at offset|MQD dump line outside a queue|unrecognised (?:process|queue) header|queue header outside a process|more issue\(s\)/;
/** Parser issues that mean hqds content was lost (kfd/hqds-parser.ts wording). */
const HQDS_LOST =
  /dump cut\?|two dumps appended|malformed register line|HQD dump has \d+ registers|SDMA RLC dump has no registers|register dump outside a slot|unrecognised (?:node|slot) header|slot header outside a Node|more issue\(s\)/;
/** Join warnings (kfd/join.ts wording) naming what hqds did not show. */
const GPU_NOT_SHOWN = /^gpu ([0-9a-f]+) \(node [^)]*\): mqds lists \d+ queue\(s\) on it but hqds does not show it/;
const NODE_NOT_SHOWN = /^node [^ ]+ \(gpu ([0-9a-f]+)\): in the topology but not in hqds/;
const INSTS_NOT_SHOWN = /^node (\d+) \(gpu [0-9a-f]+\): hqds shows Inst .* XCC\(s\) \(.*\): Inst ([\d,]+) unknown$/;

/** Which debugfs file an issue is about: `mqds:12: ...`, `snapshot_mqd_3_1700000000.txt:12: ...`. */
function fileOf(issue: string): 'mqds' | 'hqds' | null {
  const m = /^([^\s:]+):(?:\d+:)? /.exec(issue);
  if (!m) return null;
  const f = m[1].toLowerCase();
  if (f === 'mqds' || /mqd/.test(f)) return 'mqds';
  if (f === 'hqds' || /hqd/.test(f)) return 'hqds';
  return null;
}

const cache = new WeakMap<TraceSample, SampleKnowledge>();

export function knowledgeOf(s: TraceSample): SampleKnowledge {
  let k = cache.get(s);
  if (k) return k;
  k = { mqdsWhole: true, hqdsWhole: true, unknownGpus: new Set(), unknownInsts: new Map() };
  for (const issue of s.issues) {
    const file = fileOf(issue);
    if (file === 'mqds' && MQDS_LOST.test(issue)) k.mqdsWhole = false;
    else if (file === 'hqds' && HQDS_LOST.test(issue)) k.hqdsWhole = false;
    let m: RegExpExecArray | null;
    if ((m = GPU_NOT_SHOWN.exec(issue)) || (m = NODE_NOT_SHOWN.exec(issue))) k.unknownGpus.add(m[1]);
    else if ((m = INSTS_NOT_SHOWN.exec(issue))) {
      const node = Number(m[1]);
      let set = k.unknownInsts.get(node);
      if (!set) k.unknownInsts.set(node, (set = new Set()));
      for (const i of m[2].split(',')) set.add(Number(i));
    }
  }
  cache.set(s, k);
  return k;
}

/** An HQD tuple whose active flag was read (0 or 1); newer traces write null for a slot cut before CP_HQD_ACTIVE. */
export const activeKnown = (h: readonly (number | null)[]): boolean => h[3] === 0 || h[3] === 1;

/**
 * The sample's HQD list of this queue is complete: mqds and hqds were read whole, hqds showed the
 * queue's GPU and every XCC of its node, and every slot's active flag was read.
 */
export function queueHqdsKnown(s: TraceSample, q: TraceQueue, node: number | null): boolean {
  if (q.hqds === null) return false;
  const k = knowledgeOf(s);
  if (!k.mqdsWhole || !k.hqdsWhole) return false;
  if (q.gpuId !== null && k.unknownGpus.has(q.gpuId)) return false;
  if (node !== null && (k.unknownInsts.get(node)?.size ?? 0) > 0) return false;
  return q.hqds.every(activeKnown);
}
