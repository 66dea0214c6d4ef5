/**
 * Staged pipelines: planner time for 10 stages x 100 categories x 1000 items (target < 100 ms;
 * the first case is the input of the planner test in test/staged-plan.test.ts, which checks the
 * plan and leaves its time to this bench), with the plan's model loads vs the per-item order's,
 * and the journal's cost per item (10000 records; write + fsync every 100, every 20 and every
 * record: the runner flushes every 20 records, or each record once items take over 100 ms).
 *
 * Both run in rounds (bench/interleave.ts; at least 5): the planner cases in an order that
 * alternates between rounds, 20 timed calls per case and round; the journal's three flush regimes
 * likewise, one fresh journal each per round, so the ratio between two regimes is taken within a
 * round (median (min-max) over the rounds).
 *
 *   npm run bench:staged -- [--rounds N] [--records N]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { planPipeline, type PlanInput } from '../src/runners/staged/planner.js';
import { openJournal } from '../src/runners/staged/journal.js';
import { formatLoad, formatSpread, interleaveRuns, metricRatio, metricSpread, spread, type Metrics } from './interleave.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const ROUNDS = Math.max(5, arg('--rounds', 5));
const RECORDS = Math.max(100, arg('--records', 10000));

const S = 10;
const C = 100;
const N = 1000;
const cases: { label: string; input: PlanInput }[] = [
  {
    // test/staged-plan.test.ts: chain(10, 30), cats(100, 1000), 100 MB
    label: "the unit test's input: chain of 30 MB models, 3 fit",
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

const msf = (x: number): string => x.toFixed(2);
const median = (xs: number[]): number => spread(xs).median;

async function planner(): Promise<void> {
  // the first call of a case runs cold (JIT), as the one call of the unit test does
  const cold = cases.map(({ input }) => {
    const t0 = performance.now();
    planPipeline(input);
    return performance.now() - t0;
  });
  const all: number[][] = cases.map(() => []);
  const run = await interleaveRuns(
    cases.map(({ input }, i) => ({
      name: String(i),
      run: (): Metrics => {
        const times: number[] = [];
        for (let r = 0; r < 20; r++) {
          const t0 = performance.now();
          planPipeline(input);
          times.push(performance.now() - t0);
        }
        all[i].push(...times);
        return { medianMs: median(times), maxMs: Math.max(...times) };
      },
    })),
    { rounds: ROUNDS },
  );
  console.log(`\nplanner: ${S} stages x ${C} categories x ${N} items; ${ROUNDS} rounds x 20 calls per case, cases in alternating order; ${formatLoad(run.load)}`);
  console.log('\n| case | median per round: median (min-max) | slowest call of all | first (cold) call | plan loads | naive per-item loads |\n|---|---|---|---|---|---|');
  cases.forEach(({ label, input }, i) => {
    const plan = planPipeline(input);
    console.log(
      `| ${label} | ${formatSpread(metricSpread(run, String(i), 'medianMs')!, msf)} ms | ${msf(Math.max(...all[i]))} ms | ${msf(cold[i])} ms | ${plan.loads.toLocaleString('en')} (${plan.mode}) | ${plan.naiveLoads.toLocaleString('en')} |`,
    );
  });
  const worst = Math.max(...all.flat(), ...cold);
  console.log(`\nplanner target < 100 ms per call: ${worst < 100 ? 'met' : 'NOT met'} in every call (slowest ${msf(worst)} ms, cold first calls included)`);
}

async function journal(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-bench-staged-'));
  const regimes = [100, 20, 1];
  let n = 0;
  try {
    const run = await interleaveRuns(
      regimes.map((B) => ({
        name: String(B),
        run: (): Metrics => {
          const file = path.join(dir, `journal-${B}-${n++}.jsonl`);
          const { journal } = openJournal(file);
          const t0 = process.hrtime.bigint();
          let appendNs = 0n;
          for (let i = 0; i < RECORDS; i++) {
            const a = process.hrtime.bigint();
            journal.append({ category: `c${i % 100}`, item: `item-${i}`, stage: `s${i % 10}`, output: { score: i / RECORDS, label: 'positive' }, ms: 12.5 });
            appendNs += process.hrtime.bigint() - a;
            if ((i + 1) % B === 0) journal.flush();
          }
          journal.close();
          const totalNs = Number(process.hrtime.bigint() - t0);
          const t1 = performance.now();
          const reopened = openJournal(file);
          const reopenMs = performance.now() - t1;
          reopened.journal.close();
          if (reopened.done.size !== RECORDS) throw new Error(`journal: reopened ${reopened.done.size} of ${RECORDS} records`);
          fs.rmSync(file);
          return { perItemUs: totalNs / RECORDS / 1e3, appendUs: Number(appendNs) / RECORDS / 1e3, reopenMs };
        },
      })),
      { rounds: ROUNDS, warmupRuns: 1 },
    );
    const us2 = (x: number): string => x.toFixed(1);
    const x2 = (x: number): string => `${x.toFixed(1)}x`;
    console.log(`\njournal: ${RECORDS.toLocaleString('en')} records per run, write + fsync every 100 / 20 / 1 records, ${ROUNDS} interleaved rounds (one fresh journal per regime and round); ${formatLoad(run.load)}`);
    console.log('\n| flush every | per item, in all: median (min-max) | append alone | reopen | vs every 20 records, per round |\n|---|---|---|---|---|');
    for (const B of regimes) {
      const ratio = B === 20 ? '1' : formatSpread(metricRatio(run, 'perItemUs', String(B), '20')!, x2);
      console.log(
        `| ${B} record${B > 1 ? 's' : ''} | ${formatSpread(metricSpread(run, String(B), 'perItemUs')!, us2)} µs | ${formatSpread(metricSpread(run, String(B), 'appendUs')!, us2)} µs | ${formatSpread(metricSpread(run, String(B), 'reopenMs')!, us2)} ms | ${ratio} |`,
      );
    }
    const worst = Math.max(...regimes.map((B) => metricSpread(run, String(B), 'perItemUs')!.max));
    console.log(`\njournal target < 1 ms per item: ${worst < 1000 ? 'met' : 'NOT met'} in every round and regime (worst ${us2(worst)} µs per item)`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  console.log(
    `\n${new Date().toISOString().slice(0, 10)}, ${os.hostname()} (${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} at the start), Node ${process.version}; \`npm run bench:staged${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\``,
  );
  await planner();
  await journal();
}

main().catch((err) => {
  console.error(`bench: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
