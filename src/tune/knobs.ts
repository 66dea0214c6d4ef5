/**
 * The knobs `gpucolo tune` turns: the scenario fields (src/scenario/schema.ts) that set how much a
 * mechanism protects the high-priority side.
 *
 *  - cu-mask, sm-partition: `reserve`, the share of compute units kept for the highest-priority
 *    task. With the device's compute-unit count known (probe form) every whole number of units
 *    from all-but-one down to one is a level (the reserve is what rounds to it: fill.ts
 *    reservedUnits); without it (torch form, where the workers find the count) 5% steps.
 *  - throttle: `throttleK`, low-priority kernels in flight, from 1 up to what the low-priority
 *    tasks can have in flight at all (more would be no throttle).
 *
 * Every other mechanism has no knob in the scenario schema: stream-priority and gate act on the
 * tasks' priority order alone (which task is high priority is the scenario's question, not a
 * setting), none does nothing, xsched's environment is free-form.
 *
 * Levels are ordered from the most protective (level 0: the largest reserve, K = 1) to the least,
 * so more level = more low-priority throughput and a higher high-priority tail: the search looks
 * for the highest level that still meets the SLOs.
 */
import { MAX_THROTTLE_K } from '../limits.js';
import { MECHANISM_KNOBS, type KnobName } from '../mechanisms.js';
import type { Mechanism, Scenario } from '../scenario/schema.js';
import { formatPercent } from '../units.js';
import { outOfRange } from '../errors.js';

export type { KnobName };

/** The mechanisms with a knob, and which (the registry's knob: src/mechanisms.ts). */
export const TUNABLE: Readonly<Partial<Record<Mechanism, KnobName>>> = MECHANISM_KNOBS;

/** A scenario's knob values for one trial. */
export interface Setting {
  reserve?: number;
  throttleK?: number;
}

export interface Knob {
  mechanism: Mechanism;
  name: KnobName;
  /** levels 0 .. levels-1 */
  levels: number;
  setting(level: number): Setting;
  /** "reserve 50% (1 of 2 compute units)", "throttleK 3" */
  label(level: number): string;
}

/**
 * Low-priority launches a scheduled probe stream may have in flight: the engine's list depth
 * (src/scenario/probe-driver.ts LIST_INFLIGHT); a K at or above what LP can have in flight throttles nothing.
 */
const SCHEDULED_INFLIGHT = 64;
/** reserve steps when the compute-unit count is not known before the run */
const RESERVE_STEP = 0.05;

/** Why a mechanism cannot be tuned, or null when it has a knob. */
export function knobProblem(m: string): string | null {
  if (m in TUNABLE) return null;
  const tunable = Object.entries(TUNABLE)
    .map(([k, v]) => `${k} (${v})`)
    .join(', ');
  return `mechanism ${m} has no knob to tune in the scenario schema (tunable: ${tunable})`;
}

/** Low-priority kernels that can be in flight at once in the probe form: K beyond this throttles nothing. */
export function lpInflight(s: Pick<Scenario, 'tasks'>): number {
  const top = Math.max(...s.tasks.map((t) => t.priority));
  let sum = 0;
  for (const t of s.tasks) {
    if (t.priority === top) continue;
    if (t.arrival.kind === 'closed-loop') sum += t.arrival.concurrency;
    else sum += (t.probe?.kernels ?? 1) > 1 ? 1 : SCHEDULED_INFLIGHT;
  }
  return Math.max(1, Math.min(MAX_THROTTLE_K, sum));
}

/** The largest share below kept / units that still rounds up to `kept` units (6 decimals: written into YAML). */
function reserveFor(kept: number, units: number): number {
  return Math.floor((kept / units) * 1e6) / 1e6;
}

function reserveKnob(m: Mechanism, computeUnits: number | null): Knob {
  if (computeUnits !== null && computeUnits >= 2) {
    const cus = computeUnits;
    const kept = (level: number): number => cus - 1 - level;
    return {
      mechanism: m,
      name: 'reserve',
      levels: cus - 1,
      setting: (level) => ({ reserve: reserveFor(kept(level), cus) }),
      label: (level) => `reserve ${formatPercent(kept(level) / cus)} (${kept(level)} of ${cus} compute units)`,
    };
  }
  const steps = Math.round(1 / RESERVE_STEP) - 1;
  const share = (level: number): number => Math.round((steps - level) * RESERVE_STEP * 100) / 100;
  return { mechanism: m, name: 'reserve', levels: steps, setting: (level) => ({ reserve: share(level) }), label: (level) => `reserve ${formatPercent(share(level))}` };
}

function throttleKnob(s: Pick<Scenario, 'tasks'>): Knob {
  const kMax = lpInflight(s);
  return { mechanism: 'throttle', name: 'throttleK', levels: kMax, setting: (level) => ({ throttleK: level + 1 }), label: (level) => `throttleK ${level + 1}` };
}

/** The knob of a tunable mechanism (knobProblem() first: this throws for the others). */
export function knobFor(m: Mechanism, s: Pick<Scenario, 'tasks'>, ctx: { computeUnits: number | null }): Knob {
  const name = TUNABLE[m];
  if (name === 'reserve') return reserveKnob(m, ctx.computeUnits);
  if (name === 'throttleK') return throttleKnob(s);
  throw outOfRange(knobProblem(m) ?? `mechanism ${m}`, 'ERR_INVALID_ARG_VALUE');
}

/** The setting as lines to paste into the scenario (YAML). */
export function settingYaml(m: Mechanism, setting: Setting, label: string): string {
  const lines = [`# gpucolo tune: ${m}, ${label}`, `mechanisms: [${m}]`];
  if (setting.reserve !== undefined) lines.push(`reserve: ${setting.reserve}`);
  if (setting.throttleK !== undefined) lines.push(`throttleK: ${setting.throttleK}`);
  return `${lines.join('\n')}\n`;
}
