/**
 * The phases of a scenario and the order they run in. Every phase runs once per round; each round
 * starts one phase later than the one before (src/stats/rounds.ts rotatedOrder), so a slow drift
 * on the host (another job starting, a cache warming, thermal throttling) reaches every phase
 * alike instead of landing on whichever phase happens to run last, and the spread between rounds
 * shows it.
 */
import { outOfRange } from '../errors.js';
import { rotatedOrder } from '../stats/index.js';
import type { Mechanism, Scenario, Task } from './schema.js';

export interface PhaseSpec {
  /** `standalone:<task>`, `corun:none`, `corun:<mechanism>` */
  name: string;
  kind: 'standalone' | 'corun';
  mechanism: Mechanism;
  tasks: Task[];
}

/** Every task standalone, all tasks co-run with no mechanism, then co-run with each mechanism asked for. */
export function phaseSpecs(s: Pick<Scenario, 'tasks'>, mechanisms: readonly Mechanism[]): PhaseSpec[] {
  const out: PhaseSpec[] = s.tasks.map((t) => ({ name: `standalone:${t.name}`, kind: 'standalone', mechanism: 'none', tasks: [t] }));
  out.push({ name: 'corun:none', kind: 'corun', mechanism: 'none', tasks: s.tasks });
  for (const m of [...new Set(mechanisms)]) if (m !== 'none') out.push({ name: `corun:${m}`, kind: 'corun', mechanism: m, tasks: s.tasks });
  return out;
}

export interface PlannedRun {
  phase: PhaseSpec;
  /** 1-based */
  round: number;
  /** 0-based place in the round's order */
  position: number;
}

/**
 * Every run of every phase, round after round, each round in the order rotated by its index:
 * round 1 standalone A, standalone B, corun:none, corun:m1; round 2 standalone B, corun:none,
 * corun:m1, standalone A; and so on.
 */
export function runSchedule(phases: readonly PhaseSpec[], rounds: number): PlannedRun[] {
  if (!Number.isInteger(rounds) || rounds < 1) throw outOfRange(`rounds must be an integer >= 1 (got ${rounds})`);
  const out: PlannedRun[] = [];
  for (let r = 0; r < rounds; r++) rotatedOrder(phases, r).forEach((phase, position) => out.push({ phase, round: r + 1, position }));
  return out;
}
