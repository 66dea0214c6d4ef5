/**
 * The HQD slot grid of one GPU node: per XCC a block of pipes (rows) x queues (columns), each CP
 * slot marked with the process that holds it and its priority level:
 *
 *   AH  held by the process tagged A, high priority (N normal, L low, ? not known)
 *   A~  A's MQD is in the slot, but the dump ended before CP_HQD_ACTIVE (active unknown)
 *   A-  A's MQD is in the slot, not active
 *   !!  active, but its MQD belongs to no known queue (unmatchedHqds)
 *   ..  free (or, without the slot layout, no queue seen there)
 *   --  not a KFD slot (the kernel's own queues: absent from the hqds dump)
 */
import type { TraceGpu, TraceSample } from '../trace/schema.js';
import type { XccSlots } from './state.js';
import type { FrameLine, Segment, Tone } from './text.js';

/** gfx9 MEC as the KFD uses it: 4 pipes x 8 queues per XCC (the grid grows if a slot lies beyond). */
const DEFAULT_PIPES = 4;
const DEFAULT_QUEUES = 8;
const CELL = 2;
const GAP = '   ';

interface Holder {
  tag: string;
  level: 'low' | 'normal' | 'high' | null;
  active: number | null;
}

/** What is known of each slot of this GPU: "inst/pipe/queue" -> holder or 'unmatched'. */
export function slotHolders(gpu: TraceGpu, sample: TraceSample, tags: Map<number, string>): Map<string, Holder | 'unmatched'> {
  const out = new Map<string, Holder | 'unmatched'>();
  for (const p of sample.processes) {
    for (const q of p.queues) {
      if (q.gpuId !== gpu.gpuId || !q.hqds) continue;
      for (const [inst, pipe, queue, active] of q.hqds) {
        const key = `${inst}/${pipe}/${queue}`;
        const prev = out.get(key);
        // two MQDs naming one slot: the active one is the one in it
        if (prev && prev !== 'unmatched' && prev.active === 1) continue;
        out.set(key, { tag: tags.get(p.pid) ?? '#', level: q.priority?.level ?? null, active });
      }
    }
  }
  for (const [node, inst, pipe, queue] of sample.unmatchedHqds) {
    if (node === gpu.node) out.set(`${inst}/${pipe}/${queue}`, 'unmatched');
  }
  return out;
}

const LEVEL_CHAR = { high: 'H', normal: 'N', low: 'L' } as const;

function cell(h: Holder | 'unmatched' | undefined, exists: boolean): Segment {
  if (h === 'unmatched') return { text: '!!', tone: 'warn' };
  if (h === undefined) return exists ? { text: '..', tone: 'dim' } : { text: '--', tone: 'dim' };
  if (h.active === null) return { text: `${h.tag}~`, tone: 'unknown' };
  if (h.active === 0) return { text: `${h.tag}-`, tone: 'dim' };
  const tone: Tone = h.level ?? 'unknown';
  return { text: `${h.tag}${h.level ? LEVEL_CHAR[h.level] : '?'}`, tone };
}

/** Pipes and queues the blocks show: the layout's (or gfx9's), grown to hold every slot seen. */
function dimensions(layout: XccSlots | null, holders: Map<string, unknown>): { pipes: number; queues: number } {
  let pipes = layout ? 0 : DEFAULT_PIPES;
  let queues = layout ? 0 : DEFAULT_QUEUES;
  const grow = (pq: string): void => {
    const [p, q] = pq.split('/').map(Number);
    pipes = Math.max(pipes, p + 1);
    queues = Math.max(queues, q + 1);
  };
  for (const set of layout?.values() ?? []) for (const pq of set) grow(pq);
  for (const key of holders.keys()) grow(key.slice(key.indexOf('/') + 1));
  return { pipes, queues };
}

/** One XCC's block: a title line, a header line and one line per pipe, each `width` wide. */
function xccBlock(inst: number, dims: { pipes: number; queues: number }, layout: XccSlots | null, holders: Map<string, Holder | 'unmatched'>): FrameLine[] {
  const width = 3 + dims.queues * (CELL + 1);
  const head = `   ${Array.from({ length: dims.queues }, (_, q) => `q${q}`.padEnd(CELL)).join(' ')}`;
  const lines: FrameLine[] = [[{ text: `XCC ${inst}`.padEnd(width), tone: 'title' }], [{ text: head.padEnd(width), tone: 'dim' }]];
  const known = layout?.get(inst);
  for (let p = 0; p < dims.pipes; p++) {
    const line: FrameLine = [{ text: `p${p} `.padEnd(3), tone: 'dim' }];
    for (let q = 0; q < dims.queues; q++) {
      if (q > 0) line.push({ text: ' ' });
      line.push(cell(holders.get(`${inst}/${p}/${q}`), known === undefined ? layout === null : known.has(`${p}/${q}`)));
    }
    line.push({ text: ' ' });
    lines.push(line);
  }
  return lines;
}

/**
 * The grid lines of one GPU: XCC blocks side by side, as many as fit in `columns`. `layout` is
 * the GPU's CP slots per XCC when the full hqds dump was read, else null ('..' then means no
 * queue seen there, since free slots and the kernel's own cannot be told apart).
 */
export function gridLines(gpu: TraceGpu, sample: TraceSample, layout: XccSlots | null, tags: Map<number, string>, columns: number): FrameLine[] {
  const holders = slotHolders(gpu, sample, tags);
  const insts = new Set<number>(Array.from({ length: gpu.numXcc }, (_, i) => i));
  for (const i of layout?.keys() ?? []) insts.add(i);
  for (const key of holders.keys()) insts.add(Number(key.split('/')[0]));
  const dims = dimensions(layout, holders);
  const blocks = [...insts].sort((a, b) => a - b).map((i) => xccBlock(i, dims, layout, holders));
  const blockWidth = 3 + dims.queues * (CELL + 1);
  const perRow = Math.max(1, Math.floor((columns + GAP.length) / (blockWidth + GAP.length)));
  const out: FrameLine[] = [];
  for (let b = 0; b < blocks.length; b += perRow) {
    const row = blocks.slice(b, b + perRow);
    for (let l = 0; l < row[0].length; l++) out.push(row.flatMap((blk, i) => (i > 0 ? [{ text: GAP }, ...blk[l]] : blk[l])));
  }
  return out;
}

/** Active CP slots of this GPU by XCC, for the one-line summary ("2+2+2+2"); null when hqds was not read. */
export function activePerXcc(gpu: TraceGpu, sample: TraceSample, tags: Map<number, string>): number[] | null {
  if (!sample.debugfs) return null;
  const counts = Array.from({ length: gpu.numXcc }, () => 0);
  for (const [key, h] of slotHolders(gpu, sample, tags)) {
    if (h !== 'unmatched' && h.active !== 1) continue;
    const inst = Number(key.split('/')[0]);
    counts[inst] = (counts[inst] ?? 0) + 1;
  }
  return counts;
}
