/**
 * bench/kfd-churn.ts, the changing host tree of bench/trace.ts: every step differs from the one
 * before in mqds, hqds and the proc tables (rls every other step), both parsers accept every step alike, the
 * join finds the queues the step was built with, a sampler on the tree parses and joins in every
 * sample, and the writer process applies steps on its own.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CHURN_STEPS, ChurnTree, churnStep, churnSteps, startChurnWriter } from '../bench/kfd-churn.js';
import { buildProcs } from '../src/kfd/build.js';
import { joinQueues, parseHqds, parseMqds, parseRls } from '../src/index.js';
import { parseHqdsRaw, parseMqdsRaw, parseRlsRaw, readKfdProcsRaw, readTopology } from '../src/kfd/parse.js';
import type { NativeSample } from '../src/native.js';
import { SampleAssembler } from '../src/trace/assemble.js';
import { startSampler } from '../src/trace/sampler.js';
import { expectedJoin } from './helpers/kfd-synth.js';
import { IMPLS } from './helpers/impls.js';
import { HANG_MS } from './helpers/load.js';

const trees: ChurnTree[] = [];
afterEach(() => {
  for (const t of trees.splice(0)) t.dispose();
});
const tree = (): ChurnTree => {
  const t = new ChurnTree();
  trees.push(t);
  return t;
};

describe('kfd churn: the changing tree of bench/trace.ts', () => {
  const steps = churnSteps();

  it('has CHURN_STEPS steps that repeat with that period; no two steps are byte-equal in any debugfs file', () => {
    expect(steps).toHaveLength(CHURN_STEPS);
    expect(churnStep(CHURN_STEPS + 3).hqds).toBe(steps[3].hqds);
    expect(churnStep(-1).mqds).toBe(steps[CHURN_STEPS - 1].mqds);
    for (const f of ['mqds', 'hqds'] as const) {
      expect(new Set(steps.map((s) => s[f])).size, f).toBe(CHURN_STEPS);
      for (let k = 0; k < CHURN_STEPS; k++) expect(steps[k][f], `${f} step ${k}`).not.toBe(steps[(k + 1) % CHURN_STEPS][f]);
    }
    // the runlist changes with the set of mapped queues: every other step, as on a GPU it does not every sample
    expect(new Set(steps.map((s) => s.rls)).size).toBe(4);
    for (let k = 0; k < CHURN_STEPS; k += 2) expect(steps[k + 1].rls).not.toBe(steps[(k + 2) % CHURN_STEPS].rls);
    // cu_occupancy differs between consecutive steps, so the proc tables do too
    for (let k = 0; k < CHURN_STEPS; k++) expect(steps[k].cuOccupancy).not.toEqual(steps[(k + 1) % CHURN_STEPS].cuOccupancy);
  });

  it('every step is a valid dump: no issue from either parser, the same tables from both', () => {
    for (const s of steps) {
      const tables = IMPLS.map((impl) => ({
        mqds: parseMqdsRaw(Buffer.from(s.mqds, 'latin1'), impl),
        hqds: parseHqdsRaw(Buffer.from(s.hqds, 'latin1'), impl),
        rls: parseRlsRaw(Buffer.from(s.rls, 'latin1'), impl),
      }));
      for (const t of tables) for (const part of [t.mqds, t.hqds, t.rls]) expect(part.issues, `step ${s.step}`).toEqual([]);
      if (tables.length === 2) expect(tables[0]).toEqual(tables[1]);
    }
  });

  it('the join of a step (with the tree\'s sysfs) finds the queues, slots and runlist the step was built with', () => {
    const t = tree();
    for (const impl of IMPLS) {
      for (const s of steps) {
        t.apply(s.step);
        const topology = readTopology({ sysfsRoot: t.sysfs, impl });
        const procs = buildProcs(readKfdProcsRaw(t.sysfs, impl), impl);
        const j = joinQueues({ mqds: parseMqds(Buffer.from(s.mqds), { impl }), hqds: parseHqds(Buffer.from(s.hqds), { impl }), rls: parseRls(Buffer.from(s.rls), { impl }), topology, procs });
        expect(j.warnings, `step ${s.step}`).toEqual([]);
        expect(j.unmatchedHqds.filter((h) => h.kind === 'cp')).toEqual([]);
        const want = expectedJoin(s.scenario);
        for (const p of j.processes) {
          const exp = want.get(p.pid)!;
          expect(p.queues.map((q) => [q.qid, q.type === 'compute' ? 'compute' : 'sdma', q.inRunlist]), `step ${s.step} pid ${p.pid}`).toEqual(
            exp.map((e, qid) => [qid, e.kind, e.inRunlist]),
          );
          expect(p.queues.map((q) => q.hqds.filter((h) => h.active).map((h) => `${h.inst}/${h.pipe}/${h.queue}`))).toEqual(exp.map((e) => e.slots));
          // sysfs and debugfs agree on every queue (ids from sysfs, the rest from debugfs)
          for (const q of p.queues) expect(q.source).toBe('debugfs+sysfs');
        }
        expect(j.processes.map((p) => p.pid).sort()).toEqual([...want.keys()].sort());
      }
    }
  });

  it('apply() makes queue directories come and go with the step', () => {
    const t = tree();
    const qdir = path.join(t.sysfs, 'class/kfd/kfd/proc/42117/queues');
    const occ = path.join(t.sysfs, 'class/kfd/kfd/proc/41872/stats_31774/cu_occupancy');
    t.apply(0);
    expect(fs.readdirSync(qdir).sort()).toEqual(['0', '1']);
    expect(fs.readFileSync(path.join(qdir, '1', 'type'), 'latin1')).toBe('0');
    const occ0 = fs.readFileSync(occ, 'latin1');
    t.apply(2);
    expect(fs.readdirSync(qdir)).toEqual(['0']);
    expect(fs.readFileSync(occ, 'latin1')).not.toBe(occ0);
    expect(fs.readFileSync(path.join(t.debugfs, 'kfd/hqds'), 'latin1')).toBe(steps[2].hqds);
    t.apply(4);
    expect(fs.readdirSync(qdir).sort()).toEqual(['0', '1']);
    // nothing left behind by the renames
    expect(fs.readdirSync(path.dirname(qdir)).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it.each(IMPLS)('a sampler on the tree (%s parsers, TS timers) parses and joins again in every sample', async (impl) => {
    // the TS sampler calls onSample between two samples: the next step is in place for the next sample
    const t = tree();
    const got: NativeSample[] = [];
    const assembler = new SampleAssembler({ topology: readTopology({ sysfsRoot: t.sysfs, impl }), procRoot: t.proc, impl });
    const joined: number[] = [];
    const sp = startSampler({ sysfsRoot: t.sysfs, debugfsRoot: t.debugfs, intervalNs: 2e6, debugfsEvery: 1, maxSamples: 6, impl: 'ts' }, (s) => {
      got.push(s);
      const out = assembler.assemble(s);
      joined.push(out.processes.reduce((n, p) => n + p.queues.length, 0));
      t.apply(t.step + 1);
    });
    await sp.done;
    expect(got).toHaveLength(6);
    for (const s of got) {
      // procs, mqds and hqds are new in every sample (parsed); rls repeats on every other step
      expect(s.same?.procs || s.same?.mqds || s.same?.hqds).toBeFalsy();
      expect(s.parseNs).toBeGreaterThan(0);
    }
    expect(got.map((s) => s.same?.rls ?? false)).toEqual([false, true, false, true, false, true]);
    // steps 0..5: 42117 has its second queue on steps 0, 1, 4, 5
    expect(joined).toEqual([5, 5, 4, 4, 5, 5]);
  });

  it('the writer process applies step after step on its own schedule and reports what it did', async () => {
    const t = tree();
    const hqds = path.join(t.debugfs, 'kfd/hqds');
    const w = await startChurnWriter(t, 5);
    const seen = new Set<string>();
    const deadline = Date.now() + HANG_MS;
    while (seen.size < 3 && Date.now() < deadline) {
      seen.add(fs.readFileSync(hqds, 'latin1'));
      await new Promise((r) => setTimeout(r, 5));
    }
    const res = await w.stop();
    expect(seen.size).toBeGreaterThanOrEqual(3);
    for (const text of seen) expect(steps.map((s) => s.hqds)).toContain(text);
    expect(res.steps).toBeGreaterThanOrEqual(3);
    expect(res.cpuNs).toBeGreaterThan(0);
    expect(w.child.exitCode).toBe(0);
  });
});
