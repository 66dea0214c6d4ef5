/**
 * Where a compute queue lands in hardware: its MQD -> HQD slots per XCC, checked against the
 * GPU's XCC count, with the slot history and every mismatch (partial, split slots, out-of-range or
 * duplicate inst).
 */
import { countStats } from '../../stats/index.js';
import { gpuOf, isCompute, type Ctx } from './context.js';
import type { QueueObs } from './queue-observations.js';
import { capped, runs } from './series.js';
import { sameTuples } from './unchanged-samples.js';
import type { MappingMismatch, QueueMapping } from './types.js';

/** One HQD tuple of a trace: [inst, pipe, queue, active 0|1, or null when not read]. */
type HqdTuple = readonly [number, number, number, number | null];

/** Slot signature of one sample: "pipe/queue" (one slot on every active XCC), "inst:pipe/queue ...", or "unmapped". */
export function slotSignature(hqds: readonly HqdTuple[]): string {
  const active = hqds.filter((h) => h[3] === 1).slice().sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
  if (active.length === 0) return 'unmapped';
  const slots = new Set(active.map((h) => `${h[1]}/${h[2]}`));
  if (slots.size === 1) return [...slots][0];
  return active.map((h) => `${h[0]}:${h[1]}/${h[2]}`).join(' ');
}

/** What is wrong with one sample's HQD list of a queue (time-less: the caller adds when). */
function mismatchesOf(hqds: readonly HqdTuple[], numXcc: number | null): Omit<MappingMismatch, 't_ns' | 'seq'>[] {
  const active = hqds.filter((h) => h[3] === 1);
  if (active.length === 0) return [];
  const out: Omit<MappingMismatch, 't_ns' | 'seq'>[] = [];
  const insts = active.map((h) => h[0]);
  const distinct = [...new Set(insts)].sort((a, b) => a - b);
  if (distinct.length !== insts.length) out.push({ kind: 'duplicate-inst', detail: `two active slots on one XCC (inst ${insts.join(',')})` });
  const slots = new Set(active.map((h) => `${h[1]}/${h[2]}`));
  if (slots.size > 1) out.push({ kind: 'split-slots', detail: `different slots on different XCCs: ${slotSignature(hqds)}` });
  if (numXcc !== null) {
    const outside = distinct.filter((i) => i >= numXcc);
    if (outside.length) out.push({ kind: 'inst-out-of-range', detail: `inst ${outside.join(',')} but the GPU has ${numXcc} XCC(s)` });
    const inside = distinct.filter((i) => i < numXcc);
    if (inside.length < numXcc) out.push({ kind: 'partial', detail: `active on ${inside.length} of ${numXcc} XCCs (inst ${inside.join(',') || 'none'})` });
  }
  return out;
}

function countSlotChanges(signatures: string[]): number {
  let changes = 0;
  let prev: string | null = null;
  for (const s of signatures) {
    if (s === 'unmapped') continue;
    if (prev !== null && s !== prev) changes++;
    prev = s;
  }
  return changes;
}

/** What one sample's HQD list says about a queue (computed once per distinct list). */
interface HqdReading {
  activeXccs: number;
  signature: string;
  mismatches: Omit<MappingMismatch, 't_ns' | 'seq'>[];
}

function readHqds(hqds: readonly HqdTuple[], numXcc: number | null): HqdReading {
  return {
    activeXccs: new Set(hqds.filter((h) => h[3] === 1).map((h) => h[0])).size,
    signature: slotSignature(hqds),
    mismatches: mismatchesOf(hqds, numXcc),
  };
}

export function queueMapping(ctx: Ctx, o: QueueObs): QueueMapping | null {
  if (!isCompute(o.last) || o.hqds.length === 0) return null;
  const numXcc = gpuOf(ctx, o.last)?.numXcc ?? null;
  const readings: HqdReading[] = [];
  o.hqds.forEach(({ hqds }, i) => readings.push(i > 0 && sameTuples(o.hqds[i - 1].hqds, hqds) ? readings[i - 1] : readHqds(hqds, numXcc)));
  const counts = readings.map((r) => r.activeXccs);
  const histogram: Record<string, number> = {};
  for (const c of counts) histogram[c] = (histogram[c] ?? 0) + 1;
  const signatures = readings.map((r) => r.signature);
  const mapped = [...new Set(signatures.filter((x) => x !== 'unmapped'))];
  const [slots, slotsOmitted] = capped(
    runs(o.hqds.map(({ sample }, i) => ({ t: sample.t_ns, value: signatures[i] }))),
    ctx.opts.maxListed,
  );
  const [mismatches, mismatchesOmitted] = capped(
    o.hqds.flatMap(({ sample }, i) => readings[i].mismatches.map((m) => ({ t_ns: sample.t_ns, seq: sample.seq, ...m }))),
    ctx.opts.maxListed,
  );
  return {
    numXcc,
    samples: o.hqds.length,
    activeXccs: { ...countStats(counts), histogram },
    fullyMappedSamples: numXcc === null ? 0 : counts.filter((c) => c === numXcc).length,
    unmappedSamples: counts.filter((c) => c === 0).length,
    sameSlotOnAllXccs: mapped.length === 0 ? null : mapped.every((x) => !x.includes(':')),
    slots,
    slotsOmitted,
    slotsUsed: mapped,
    slotChanges: countSlotChanges(signatures),
    mismatches,
    mismatchesOmitted,
  };
}
