/**
 * Staged pipelines: planner time for 10 stages x 100 categories x 1000 items (target < 100 ms;
 * the first case is the input of the planner test in test/staged-plan.test.ts, which checks the
 * plan and leaves its time to this bench), with the plan's model loads vs the per-item order's,
 * and the journal's cost per item (append 10000 records, flush with fsync every 20 records and
 * every record: the runner's two regimes).
 *
 *   npx tsx bench/staged.ts
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { planPipeline, type PlanInput } from '../src/runners/staged/planner.js';
import { openJournal } from '../src/runners/staged/journal.js';

const S = 10;
const C = 100;
const N = 1000;
const cases: { label: string; input: PlanInput }[] = [
  {
    // test/staged-plan.test.ts: chain(10, 30), cats(100, 1000), 100 MB
    label: 'the unit test\'s input: chain of 30 MB models, 3 fit',
    input: {
      stages: Array.from({ length: S }, (_, i) => ({ name: `s${i}`, memoryMB: 30, inputs: i ? [`s${i - 1}`] : [] })),
      categories: Array.from({ length: C }, (_, i) => ({ name: `c${i}`, items: N })),
      gpuMemoryMB: 100,
    },
  },
  {
    label: 'chain, 3 of 10 models fit',
    input: {
      stages: Array.from({ length: S }, (_, i) => ({ name: `s${i}`, memoryMB: 1000 + 100 * i, inputs: i ? [`s${i - 1}`] : [] })),
      categories: Array.from({ length: C }, (_, i) => ({ name: `c${i}`, items: N })),
      gpuMemoryMB: 4000,
    },
  },
  {
    label: 'stage 0 done, 9 scorers reading it, 3 fit',
    input: {
      stages: Array.from({ length: S }, (_, i) => ({ name: `s${i}`, memoryMB: 1000, inputs: i ? ['s0'] : [] })),
      categories: Array.from({ length: C }, (_, i) => ({ name: `c${i}`, items: N, remaining: { s0: 0 } })),
      gpuMemoryMB: 3000,
    },
  },
  {
    label: 'all fit',
    input: {
      stages: Array.from({ length: S }, (_, i) => ({ name: `s${i}`, memoryMB: 100, inputs: i ? [`s${i - 1}`] : [] })),
      categories: Array.from({ length: C }, (_, i) => ({ name: `c${i}`, items: N })),
      gpuMemoryMB: 4000,
    },
  },
];
console.log(`planner: ${S} stages x ${C} categories x ${N} items`);
for (const { label, input } of cases) {
  // the first call of a case runs cold (JIT), as the one call of the unit test does
  const c0 = performance.now();
  planPipeline(input);
  const cold = performance.now() - c0;
  const times: number[] = [];
  let plan = planPipeline(input);
  for (let r = 0; r < 20; r++) {
    const t0 = performance.now();
    plan = planPipeline(input);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const first = (() => {
    const t0 = performance.now();
    planPipeline(input);
    return performance.now() - t0;
  })();
  console.log(
    `  ${label}: median ${times[10].toFixed(2)} ms, max ${times[19].toFixed(2)} ms (last ${first.toFixed(2)} ms, first call ${cold.toFixed(2)} ms); mode ${plan.mode}; loads ${plan.loads} vs naive ${plan.naiveLoads} (${(plan.naiveLoads / Math.max(1, plan.loads)).toFixed(0)}x fewer)`,
  );
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-bench-staged-'));
const R = 10000;
// the runner's two regimes: fast items flush every 20 records, items slower than 100 ms one by one
for (const B of [20, 1]) {
  const file = path.join(dir, `journal-${B}.jsonl`);
  const { journal } = openJournal(file);
  const t0 = process.hrtime.bigint();
  let appendNs = 0n;
  for (let i = 0; i < R; i++) {
    const a = process.hrtime.bigint();
    journal.append({ category: `c${i % 100}`, item: `item-${i}`, stage: `s${i % 10}`, output: { score: i / R, label: 'positive' }, ms: 12.5 });
    appendNs += process.hrtime.bigint() - a;
    if ((i + 1) % B === 0) journal.flush();
  }
  journal.close();
  const totalNs = Number(process.hrtime.bigint() - t0);
  const t1 = performance.now();
  const reopened = openJournal(file);
  const readMs = performance.now() - t1;
  reopened.journal.close();
  console.log(
    `journal: ${R} records, flush (write + fsync) every ${B}: ${(totalNs / R / 1000).toFixed(2)} µs/item in all, append alone ${(Number(appendNs) / R / 1000).toFixed(2)} µs/item; ${fs.statSync(file).size} bytes; reopen ${readMs.toFixed(1)} ms (${reopened.done.size} done)`,
  );
}
fs.rmSync(dir, { recursive: true, force: true });
