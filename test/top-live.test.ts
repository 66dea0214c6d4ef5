/**
 * gpucolo top, live: the sampler-backed source on a copy of the example tree that changes while
 * it samples. The ticker gets the lifecycle events the tracer's EventDeriver derives, the CPU
 * share becomes known from the second sample, and an exited process leaves the frame. Waits for
 * the samples that show each change (hang guard: test/helpers/load.ts HANG_MS), never for a time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { buildFrame, frameText } from '../src/top/frame.js';
import { initialView } from '../src/top/keys.js';
import { LiveSource } from '../src/top/live.js';
import type { TopSnapshot } from '../src/top/state.js';
import { IMPLS } from './helpers/impls.js';
import { KfdTree } from './helpers/kfd-tree.js';
import { HANG_MS } from './helpers/load.js';

let trees: KfdTree[] = [];
let sources: LiveSource[] = [];
afterEach(async () => {
  await Promise.all(sources.map((s) => s.stop()));
  trees.forEach((t) => t.dispose());
  trees = [];
  sources = [];
});

/** Starts the source; `until(pred)` resolves with the first snapshot that satisfies pred. */
function watch(source: LiveSource): (pred: (s: TopSnapshot) => boolean, what: string) => Promise<TopSnapshot> {
  let waiter: { pred: (s: TopSnapshot) => boolean; done: (s: TopSnapshot) => void } | null = null;
  source.start((s) => {
    if (waiter?.pred(s)) waiter.done(s);
  });
  return (pred, what) =>
    new Promise((resolve, reject) => {
      if (pred(source.current())) return resolve(source.current());
      const guard = setTimeout(() => reject(new Error(`no sample showed ${what} within ${HANG_MS} ms`)), HANG_MS);
      waiter = { pred, done: (s) => (clearTimeout(guard), (waiter = null), resolve(s)) };
    });
}

describe.each(IMPLS)('top live source (%s sampler)', (impl) => {
  it('ticks queue creation and a process exit, and the frame follows', async () => {
    const t = new KfdTree();
    trees.push(t);
    const source = new LiveSource({ sysfsRoot: t.sysfs, debugfsRoot: t.debugfs, procRoot: t.proc, intervalNs: 100e6, impl, label: 'tree test', recorded: true });
    sources.push(source);
    const until = watch(source);
    await until((s) => s.sample !== null, 'a first sample');
    t.addQueue(41872, 5);
    const created = await until((s) => s.events.some((e) => e.event === 'queue-created'), 'queue 5 created');
    expect(created.events.find((e) => e.event === 'queue-created')).toMatchObject({ pid: 41872, qid: 5, type: 'compute' });
    if (impl === 'native') expect(created.cost.samplerCpuShare).not.toBeNull();
    t.removeProcess(42117);
    t.writeDebugfs('mqds', t.readDebugfs('mqds').replace(/Process 42117[\s\S]*$/, ''));
    const gone = await until((s) => s.events.some((e) => e.event === 'process-exited'), 'pid 42117 exited');
    const text = frameText(buildFrame(gone, initialView({ columns: 120, rows: 0 }), { interactive: false }), null);
    expect(text).toMatch(/t=[\d.]+s {2}process-exited {3}pid 42117\n/);
    expect(text).toMatch(/t=[\d.]+s {2}queue-created {4}pid 41872 q5 compute gpu 7c1e\n/);
    expect(text).not.toMatch(/\nB {2}42117 /);
    expect(text).toContain('Processes (1 of 1; sort: pid)');
  });
});
