/**
 * Checks a spec for the pure-TS engine and decides what each stream is created with, exactly as
 * the native engine's Prepare() (native/dispatch/engine.cc) does for the cpu backend, with the
 * same statuses and the same wording, so a bad spec reads the same whichever engine got it:
 *  - none: every stream at priority 0 (the cpu backend's least); no masks;
 *  - stream-priority: HP at 15, LP at 0; with levels, level 0..levels-1 spread over 0..15;
 *  - cu-mask: HP gets CUs [0, ceil(reserve * CUs)), the others the rest; both sides need >= 1;
 *  - sm-partition: unsupported on cpu; throttle: K >= 1.
 * durationNs 0 (no end) is accepted as from the native binding, which always has a cancel flag:
 * such a run ends at maxLaunches, at the end of its lists, or on cancel().
 */
import type { NativeDispatchSpec } from '../../native.js';
import { STATUS, type PreparedStream } from './layout.js';

export const TS_PRIORITY_LEAST = 0;
export const TS_PRIORITY_GREATEST = 15;

export type Prepared = { status: 0; streams: PreparedStream[] } | { status: number; error: string };

const fmtG = (x: number): string => String(Number(x.toPrecision(6)));

export function prepare(spec: NativeDispatchSpec, computeUnits: number): Prepared {
  const fail = (status: number, error: string): Prepared => ({ status, error });
  if (spec.device !== 0) return fail(STATUS.NO_DEVICE, `cpu device_info(${spec.device}): no cpu device ${spec.device} (only device 0)`);
  if (spec.streams.length === 0) return fail(STATUS.INVALID, 'no streams');
  for (const s of spec.streams) {
    if (!(s.kernel.blocks >= 1)) return fail(STATUS.INVALID, `stream '${s.name}': kernel has 0 blocks`);
    if ((s.arrival === 'fixed-rate' || s.arrival === 'poisson') && !(s.rateHz > 0 && Number.isFinite(s.rateHz))) {
      return fail(STATUS.INVALID, `stream '${s.name}': rate_hz must be > 0 (got ${fmtG(s.rateHz)})`);
    }
    if (s.arrival === 'list') {
      for (let i = 1; i < s.timesNs.length; i++) if (s.timesNs[i] < s.timesNs[i - 1]) return fail(STATUS.INVALID, `stream '${s.name}': times_ns must be non-decreasing`);
    }
  }
  const cus = computeUnits;
  const spatial = spec.mechanism === 'cu-mask' || spec.mechanism === 'sm-partition';
  if (spec.mechanism === 'sm-partition') return fail(STATUS.UNSUPPORTED, "mechanism sm-partition: backend 'cpu' has no SM partitions");
  let reserved = 0;
  if (spatial) {
    if (!(spec.reserve > 0 && spec.reserve < 1)) return fail(STATUS.INVALID, `reserve must be between 0 and 1 exclusive (got ${fmtG(spec.reserve)})`);
    reserved = Math.ceil(spec.reserve * cus - 1e-9);
    if (reserved < 1 || reserved >= cus) {
      return fail(
        STATUS.INVALID,
        `reserve ${fmtG(spec.reserve)} of ${cus} compute units keeps ${reserved} for high-priority streams and ${cus - reserved} for the others; both need at least 1`,
      );
    }
  }
  if (spec.mechanism === 'throttle' && !(spec.throttleK >= 1)) return fail(STATUS.INVALID, 'throttle_k must be at least 1');

  const out: PreparedStream[] = [];
  for (const [i, s] of spec.streams.entries()) {
    const name = s.name || `stream${i}`;
    let priority = TS_PRIORITY_LEAST; // the runtimes' default priority 0, in range here
    if (spec.mechanism === 'stream-priority') {
      priority = s.highPriority ? TS_PRIORITY_GREATEST : TS_PRIORITY_LEAST;
      const level = s.level ?? -1;
      const levels = s.levels ?? 0;
      if (level >= 0 && levels > 1) {
        if (level >= levels) return fail(STATUS.INVALID, `stream '${name}': level ${level} of ${levels} levels`);
        // level 0 -> least, levels-1 -> greatest; lround: halves away from zero (all positive here)
        priority = TS_PRIORITY_LEAST + Math.round(((TS_PRIORITY_GREATEST - TS_PRIORITY_LEAST) * level) / (levels - 1));
      }
    }
    const cuMask: number[] = [];
    if (spec.mechanism === 'cu-mask') {
      for (let w = 0; w < Math.ceil(cus / 32); w++) cuMask.push(0);
      const from = s.highPriority ? 0 : reserved;
      const to = s.highPriority ? reserved : cus;
      for (let b = from; b < to; b++) cuMask[b >>> 5] = (cuMask[b >>> 5] | (1 << (b & 31))) >>> 0;
    }
    out.push({ name, highPriority: s.highPriority, priority, cuMask });
  }
  return { status: 0, streams: out };
}
