/** Trace reading (readTrace), the queue-usage analysis and the `gpucolo analyze` command. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { analyzeTrace, slotSignature, type QueueUsageReport } from '../src/trace/analyze/index.js';
import { distribution, nearestRank, confidenceRanks } from '../src/stats/index.js';
import { readDumpDir } from '../src/trace/dumps.js';
import { readTrace, type Trace } from '../src/trace/read.js';
import { renderMarkdown } from '../src/trace/report-md.js';
import { DEBUGFS, ROOT } from './helpers/impls.js';
import { cutBeforeLine, cutMqdAtDword, dropNodeSection, synthHqds, synthMqds, type SynthScenario } from './helpers/kfd-synth.js';
import { makeTree } from './helpers/tree.js';
import {
  STEP,
  compute,
  footer,
  header,
  lifecycleRecords,
  marker,
  proc,
  records,
  sample,
  tOf,
  tmpDir,
  writeJsonl,
} from './helpers/trace-build.js';

const CLI = path.join(ROOT, 'dist/cli/cli.js');

function run(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', input, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function lifecycleReport(): Promise<{ trace: Trace; report: QueueUsageReport }> {
  const trace = await readTrace(writeJsonl(lifecycleRecords()));
  return { trace, report: analyzeTrace(trace) };
}

const pidOf = (r: QueueUsageReport, pid: number) => r.processes.find((p) => p.pid === pid)!;
const queueOf = (r: QueueUsageReport, key: string) => r.processes.flatMap((p) => p.queues).find((q) => q.key === key)!;

// ------------------------------------------------------------------------------------ readTrace

describe('readTrace', () => {
  it('reads every record kind of a complete trace', async () => {
    const { trace } = await lifecycleReport();
    expect(trace.header.schema).toBe('gpucolo.trace/1');
    expect(trace.samples).toHaveLength(30);
    expect(trace.markers.map((m) => m.marker)).toEqual(['baseline-start', 'baseline-end', 'command-started', 'stop-signal', 'command-exited']);
    expect(trace.events.filter((e) => e.event === 'queue-created').map((e) => e.key)).toEqual(['100/q0', '100/q1', '100/q2', '200/q0']);
    expect(trace.footer).toMatchObject({ kind: 'footer', endedBy: 'command-exit', samples: 30 });
    expect(trace.issues).toEqual([]);
    expect(trace.origin).toMatchObject({ format: 'jsonl', times: 'recorded', costsMeasured: true });
  });

  it('a truncated last line (killed tracer) is an issue, not a failure', async () => {
    const recs = lifecycleRecords().slice(0, -1); // no footer
    const file = writeJsonl(recs, { tail: '{"kind":"sample","t_ns":3000000000,"seq":30,"intend' });
    const trace = await readTrace(file);
    expect(trace.footer).toBeNull();
    expect(trace.samples).toHaveLength(30);
    expect(trace.issues).toEqual([{ line: recs.length + 1, message: expect.stringMatching(/^not valid JSON .*truncated last line/) }]);
    const r = analyzeTrace(trace);
    expect(r.input.complete).toBe(false);
    expect(r.input.notes.join('\n')).toMatch(/no footer/);
    expect(r.sampling.traceIssues).toHaveLength(1);
  });

  it('invalid records become issues with their line; the rest is kept', async () => {
    const h = header();
    const good = sample(0, 0, []);
    const file = writeJsonl([h, good, { ...good, seq: 'one' }, { kind: 'bogus', t_ns: 1 }, h, sample(1, STEP, []), marker('tail-end', 2 * STEP)], { tail: 'garbage\n' });
    const trace = await readTrace(file);
    expect(trace.samples.map((s) => s.seq)).toEqual([0, 1]);
    expect(trace.markers).toHaveLength(1);
    expect(trace.issues).toEqual([
      { line: 3, message: expect.stringMatching(/^invalid sample record: seq: /) },
      { line: 4, message: 'unknown record kind "bogus": ignored' },
      { line: 5, message: 'a second header: ignored' },
      { line: 8, message: expect.stringMatching(/^not valid JSON/) },
    ]);
  });

  it('reads from a stream (stdin) and skips blank lines', async () => {
    const text = `${JSON.stringify(header())}\n\n${JSON.stringify(sample(0, 0, []))}\n`;
    const trace = await readTrace('-', { input: Readable.from([text]) });
    expect(trace.origin.path).toBe('<stdin>');
    expect(trace.samples).toHaveLength(1);
  });

  describe('bad inputs give one clear error', () => {
    const rejects = async (content: string, code: string, message: RegExp) => {
      const file = path.join(tmpDir(), 't.jsonl');
      fs.writeFileSync(file, content);
      const err = await readTrace(file).then(
        () => null,
        (e: Error & { code?: string }) => e,
      );
      expect(err).not.toBeNull();
      expect(err!.code).toBe(code);
      expect(err!.message).toMatch(message);
      expect(err!.message).not.toContain('\n');
      expect(err!.message.startsWith(file)).toBe(true);
    };
    it('empty file', () => rejects('', 'EBADTRACE', /: empty: no trace header$/));
    it('no header', () => rejects(`${JSON.stringify(sample(0, 0, []))}\n`, 'EBADTRACE', /:1: not a gpucolo trace: the first record must be the header, found a "sample" record/));
    it('not JSON at all', () => rejects('hello\n', 'EBADTRACE', /:1: not a gpucolo trace: the first line is not JSON/));
    it('unknown schema', () => rejects(`${JSON.stringify({ ...header(), schema: 'gpucolo.trace/9' })}\n`, 'EBADTRACE', /:1: unknown trace schema "gpucolo.trace\/9" \(this gpucolo reads gpucolo.trace\/1\)/));
    it('invalid header', () => rejects(`\n${JSON.stringify({ ...header(), gpus: [{ node: 'x' }] })}\n`, 'EBADTRACE', /:2: invalid trace header: gpus\.0\.node: /));
    it('unreadable file', async () => {
      const missing = path.join(tmpDir(), 'nope.jsonl');
      await expect(readTrace(missing)).rejects.toMatchObject({ code: 'ENOENT', message: `cannot read ${missing} (ENOENT)` });
      await expect(readTrace(tmpDir())).rejects.toMatchObject({ code: 'EISDIR' });
    });
  });
});

// ------------------------------------------------------------------------------------ statistics

describe('order statistics', () => {
  it('nearest rank, never interpolated', () => {
    const xs = [10, 20, 30, 40];
    expect(nearestRank(xs, 50)).toBe(20);
    expect(nearestRank(xs, 99)).toBe(40);
    expect(nearestRank([], 50)).toBeNull();
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(nearestRank(hundred, 99)).toBe(99);
    expect(nearestRank(hundred, 50)).toBe(50);
  });

  it('confidence ranks: the textbook n = 100 median interval, none for p99 from 100 samples', () => {
    expect(confidenceRanks(100, 0.5)).toEqual([40, 61]);
    expect(confidenceRanks(100, 0.99)).toBeNull();
    expect(confidenceRanks(2000, 0.99)).not.toBeNull();
  });

  it('says when there are too few samples', () => {
    const d = distribution([5, 1, 3]);
    expect(d).toMatchObject({ n: 3, min: 1, max: 5, p50: 3, p99: 5, mean: 3 });
    expect(d.caveats).toContain('p99 needs >= 100 samples, have 3 (p99 = max)');
    expect(distribution([]).caveats).toEqual(['no samples']);
  });

  it('slot signatures', () => {
    expect(slotSignature([[0, 0, 2, 1], [1, 0, 2, 1]])).toBe('0/2');
    expect(slotSignature([[0, 0, 2, 1], [1, 1, 2, 1]])).toBe('0:0/2 1:1/2');
    expect(slotSignature([[0, 0, 2, 0]])).toBe('unmapped');
  });
});

// ------------------------------------------------------------------------------------ analysis

describe('analyzeTrace on the reference scenario', () => {
  it('queue count per sample 0,2,3,...,3,2,0 and the stability verdict with its rule', async () => {
    const { report } = await lifecycleReport();
    const p = pidOf(report, 100);
    expect(p.queueCount.runs.map((r) => [r.value, r.samples])).toEqual([
      [0, 1],
      [2, 1],
      [3, 22],
      [2, 1],
      [0, 1],
    ]);
    expect(p.queueCount.whilePresent).toEqual({ samples: 26, min: 0, avg: 70 / 26, max: 3 });
    // window seq 3..27, one sample dropped at each end (queues appeared, process exited): seq 4..26
    expect(p.queueSet.window).toEqual({ fromNs: tOf(3), toNs: tOf(27), samples: 25 });
    expect(p.queueSet.considered).toBe(23);
    expect(p.queueSet.share).toBeCloseTo(22 / 23);
    expect(p.queueSet.verdict).toBe('stable');
    expect(p.queueSet.modal).toEqual(['100/q0', '100/q1', '100/q2']);
    expect(p.queueCount.steady).toEqual({ samples: 23, min: 2, avg: (22 * 3 + 2) / 23, max: 3 });
    expect(report.rules.stable).toMatch(/>= 95% of the considered window samples/);
    // a stricter rule turns the same data unstable
    const strict = analyzeTrace((await lifecycleReport()).trace, { stableShare: 0.99 });
    expect(pidOf(strict, 100).queueSet.verdict).toBe('unstable');
  });

  it('lists the queue keys and when the set changed', async () => {
    const { report } = await lifecycleReport();
    const p = pidOf(report, 100);
    expect(p.keys).toEqual(['100/q0', '100/q1', '100/q2']);
    expect(p.queueSet.changes).toEqual([
      { t_ns: tOf(3), seq: 3, added: ['100/q0', '100/q1'], removed: [] },
      { t_ns: tOf(4), seq: 4, added: ['100/q2'], removed: [] },
      { t_ns: tOf(26), seq: 26, added: [], removed: ['100/q2'] },
      { t_ns: tOf(27), seq: 27, added: [], removed: ['100/q0', '100/q1'] },
    ]);
    expect(p).toMatchObject({ firstSeenNs: tOf(2), lastSeenNs: tOf(27), exitedNs: tOf(28), startedNs: tOf(2), presentAtBaseline: false, targeted: true });
  });

  it('per queue: type, priority changes, first/last seen, lifetime', async () => {
    const { report } = await lifecycleReport();
    const q0 = queueOf(report, '100/q0');
    expect(q0).toMatchObject({ type: 'compute', qids: [0], gpuId: '7c1e', node: 2, firstSeenNs: tOf(3), lastSeenNs: tOf(26), samplesPresent: 24, createdNs: tOf(3), destroyedNs: tOf(27), presentAtEnd: false });
    expect(q0.lifetimeNs).toBe(tOf(27) - tOf(3));
    expect(q0.priority.initial).toEqual({ pipe: 1, queue: 7, level: 'normal' });
    expect(q0.priority.final).toEqual({ pipe: 2, queue: 11, level: 'high' });
    expect(q0.priority.changes).toEqual([{ t_ns: tOf(15), seq: 15, from: { pipe: 1, queue: 7, level: 'normal' }, to: { pipe: 2, queue: 11, level: 'high' } }]);
    const q2 = queueOf(report, '100/q2');
    expect(q2).toMatchObject({ type: 'sdma-xgmi', mapping: null, sdma: { rlcs: ['2/0'], samples: 22, activeSamples: 22 } });
    const other = queueOf(report, '200/q0');
    expect(other).toMatchObject({ destroyedNs: null, presentAtEnd: true, lifetimeNs: null, observedNs: tOf(29) - tOf(5) });
  });

  it('a queue caught while its sysfs files vanish (type unknown) keeps the type it had', async () => {
    const recs = lifecycleRecords();
    const withQ0 = recs.filter((r) => r.kind === 'sample' && r.processes.some((p) => p.queues.some((q) => q.key === '100/q0')));
    const last = withQ0.at(-1) as Extract<(typeof recs)[number], { kind: 'sample' }>;
    for (const p of last.processes) for (const q of p.queues) if (q.key === '100/q0') q.type = 'unknown';
    const report = analyzeTrace(await readTrace(writeJsonl(recs)));
    expect(queueOf(report, '100/q0').type).toBe('compute');
  });

  it('MQD -> HQD mapping per XCC against the header numXcc: partial sample, slot move', async () => {
    const { report } = await lifecycleReport();
    const m0 = queueOf(report, '100/q0').mapping!;
    expect(m0).toMatchObject({ numXcc: 4, samples: 24, fullyMappedSamples: 23, unmappedSamples: 0, sameSlotOnAllXccs: true, slotsUsed: ['0/2'], slotChanges: 0 });
    expect(m0.activeXccs).toMatchObject({ min: 3, max: 4, histogram: { 3: 1, 4: 23 } });
    expect(m0.mismatches).toEqual([{ t_ns: tOf(12), seq: 12, kind: 'partial', detail: 'active on 3 of 4 XCCs (inst 0,1,2)' }]);
    const m1 = queueOf(report, '100/q1').mapping!;
    expect(m1.slotsUsed).toEqual(['1/2', '3/5']);
    expect(m1.slotChanges).toBe(1);
    expect(m1.slots.map((s) => [s.value, s.fromNs, s.samples])).toEqual([
      ['1/2', tOf(3), 7],
      ['3/5', tOf(10), 17],
    ]);
    expect(m1.mismatches).toEqual([]);
  });

  it('numXcc comes from the header, not a constant', async () => {
    const h = header({ gpus: [{ node: 2, gpuId: '7c1e', name: '', gfxTarget: null, numXcc: 8 }] });
    const s = [sample(0, 0, [proc(1, [compute('1/q0', { qid: 0, mqd: '0x1000', slot: [0, 2], xccs: 8 })])]), sample(1, STEP, [proc(1, [compute('1/q0', { qid: 0, mqd: '0x1000', slot: [0, 2], xccs: 4 })])])];
    const r = analyzeTrace(await readTrace(writeJsonl(records(h, s))));
    const m = queueOf(r, '1/q0').mapping!;
    expect(m.numXcc).toBe(8);
    expect(m.fullyMappedSamples).toBe(1);
    expect(m.mismatches).toEqual([{ t_ns: STEP, seq: 1, kind: 'partial', detail: 'active on 4 of 8 XCCs (inst 0,1,2,3)' }]);
    expect(r.gpus[0].perXcc).toHaveLength(8);
    expect(r.gpus[0].unbalancedSamples).toBe(1);
  });

  it('split slots and an Inst beyond numXcc are mismatches', async () => {
    const q = compute('1/q0', { qid: 0, mqd: '0x1000', slot: [0, 2] });
    q.hqds = [
      [0, 0, 2, 1],
      [1, 1, 2, 1],
      [2, 0, 2, 1],
      [3, 0, 2, 1],
      [4, 0, 2, 1],
    ];
    const r = analyzeTrace(await readTrace(writeJsonl(records(header(), [sample(0, 0, [proc(1, [q])])]))));
    const m = queueOf(r, '1/q0').mapping!;
    expect(m.sameSlotOnAllXccs).toBe(false);
    expect(m.mismatches.map((x) => x.kind).sort()).toEqual(['inst-out-of-range', 'split-slots']);
    expect(r.gpus[0].instsOutOfRange).toEqual([4]);
  });

  it('lifecycle: from command-started to queue-created, from stop/exit to queue-destroyed', async () => {
    const { report } = await lifecycleReport();
    const l = pidOf(report, 100).lifecycle;
    expect(l.startRef).toEqual({ kind: 'command-started', t_ns: 150e6 });
    expect(l.stopRef).toEqual({ kind: 'stop-signal', t_ns: tOf(25) + 50e6 });
    expect(l.exitRef).toEqual({ kind: 'command-exited', t_ns: tOf(27) + 50e6 });
    expect(l.creationBatches).toEqual([
      { t_ns: tOf(3), afterStartNs: tOf(3) - 150e6, queues: ['100/q0', '100/q1'] },
      { t_ns: tOf(4), afterStartNs: tOf(4) - 150e6, queues: ['100/q2'] },
    ]);
    expect(l.allDestroyedNs).toBe(tOf(27));
    expect(l.allDestroyedAfterStopNs).toBe(tOf(27) - tOf(25) - 50e6);
    expect(l.allDestroyedAfterExitNs).toBe(-50e6);
    const t2 = queueOf(report, '100/q2').timing;
    expect(t2).toEqual({
      createdAfterStartNs: tOf(4) - 150e6,
      createdResolutionNs: tOf(4) - tOf(3),
      destroyedAfterStopNs: tOf(26) - tOf(25) - 50e6,
      destroyedAfterExitNs: tOf(26) - tOf(27) - 50e6,
      destroyedResolutionNs: tOf(26) - tOf(25),
    });
    // pid 200 has no command marker before it: its start reference is still the command (first seen after it)
    expect(pidOf(report, 200).lifecycle.queuesAtEnd).toBe(1);
  });

  it('baseline and overall counts', async () => {
    const { report } = await lifecycleReport();
    expect(report.overall.baseline).toEqual({ endNs: tOf(1), samples: 2, maxQueues: 0, pidsWithQueues: [] });
    expect(report.overall).toMatchObject({ processes: 2, processesWithQueues: 2, distinctQueues: 4 });
    expect(report.overall.queueCount).toMatchObject({ samples: 30, min: 0, max: 4 });
  });

  it('two processes: disjoint queues and slots, total == sum, shared qids reported as normal', async () => {
    const { report } = await lifecycleReport();
    const c = report.coexistence!;
    expect(c.pids).toEqual([100, 200]);
    expect(c.samplesTogether).toBe(22); // seq 5..26
    expect(c).toMatchObject({ queuesDisjoint: true, hqdSlotsDisjoint: true, sdmaDisjoint: true, totalEqualsSum: true, conflicts: [], qidsShared: [0] });
    expect(c.steadyCounts).toEqual([
      { pid: 100, count: 3 },
      { pid: 200, count: 1 },
    ]);
    expect(c.sameSteadyCount).toBe(false);
  });

  it('two processes on one HQD slot or one MQD are conflicts', async () => {
    const a = compute('1/q0', { qid: 0, mqd: '0x1000', slot: [0, 2] });
    const b = compute('2/q0', { qid: 0, mqd: '0x1000', slot: [0, 2], active: [1, 0, 0, 0] });
    const r = analyzeTrace(await readTrace(writeJsonl(records(header(), [sample(0, 0, [proc(1, [a]), proc(2, [b])])]))));
    const c = r.coexistence!;
    expect(c.queuesDisjoint).toBe(false);
    expect(c.hqdSlotsDisjoint).toBe(false);
    expect(c.totalEqualsSum).toBe(false);
    expect(c.totalMismatches).toEqual([{ t_ns: 0, seq: 0, total: 1, sum: 2 }]);
    expect(c.conflicts).toContainEqual({ t_ns: 0, seq: 0, kind: 'hqd-slot', what: '2|0/0/2', holders: ['1/q0', '2/q0'] });
    expect(c.conflicts).toContainEqual({ t_ns: 0, seq: 0, kind: 'queue', what: '7c1e|0x1000', holders: ['1/q0', '2/q0'] });
  });

  it('per-XCC distribution of active HQDs per GPU', async () => {
    const { report } = await lifecycleReport();
    const g = report.gpus[0];
    expect(g).toMatchObject({ node: 2, gpuId: '7c1e', numXcc: 4, samples: 30, instsOutOfRange: [] });
    expect(g.perXcc.map((x) => x.inst)).toEqual([0, 1, 2, 3]);
    // seq 5..26: 100/q0 + 100/q1 + 200/q0 = 3 per XCC (XCC 3 has 2 at seq 12)
    expect(g.perXcc[0].active).toMatchObject({ min: 0, max: 3 });
    expect(g.perXcc[3].active.max).toBe(3);
    expect(g.unbalancedSamples).toBe(1);
    expect(g.unmatched).toMatchObject({ max: 0 });
  });

  it('sampling quality: jitter, costs, missed intervals, with the small-sample caveat', async () => {
    const { report } = await lifecycleReport();
    const s = report.sampling;
    expect(s).toMatchObject({ samples: 30, debugfsSamples: 30, queueListSamples: 30, missedIntervals: 2, footerMissedIntervals: 0, seqGaps: 0, complete: true, endedBy: 'command-exit' });
    // jitter = (seq % 5) us: six samples each of 0..4 us
    expect(s.jitterNs).toMatchObject({ n: 30, min: 0, p50: 2000, p99: 4000, max: 4000 });
    expect(s.jitterNs!.caveats).toContain('p99 needs >= 100 samples, have 30 (p99 = max)');
    expect(s.costs!.read).toMatchObject({ p50: 1014, p99: 1029, max: 1029 });
    expect(s.costs!.parse).toMatchObject({ p50: 500, p99: 500 });
    expect(s.costs!.debugfsRead).toBeNull();
  });

  it('sample issues are counted; sysfs-only samples split the read cost', async () => {
    const s = [
      sample(0, 0, [], { debugfs: true, read_ns: 9000, issues: ['mqds:3: bad line'] }),
      sample(1, STEP, [], { debugfs: false, read_ns: 100 }),
      sample(2, 2 * STEP, [], { debugfs: false, read_ns: 120, issues: ['mqds:3: bad line'] }),
    ];
    const r = analyzeTrace(await readTrace(writeJsonl(records(header(), s))));
    expect(r.sampling.sampleIssues).toEqual({ samples: 2, total: 2, top: [{ message: 'mqds:3: bad line', count: 2 }] });
    expect(r.sampling.costs!.debugfsRead).toMatchObject({ n: 1, max: 9000 });
    expect(r.sampling.costs!.sysfsRead).toMatchObject({ n: 2, max: 120 });
  });

  it('parse cost: samples that skipped parsing (no debugfs change, parse_ns 0) are counted as unchanged, not as 0 ns', async () => {
    // what the samplers write: a parse when a debugfs file changed, 0 when none did, 0 without debugfs
    const s = [
      sample(0, 0, [], { parse_ns: 40_000 }),
      sample(1, STEP, [], { parse_ns: 0 }),
      sample(2, 2 * STEP, [], { parse_ns: 0 }),
      sample(3, 3 * STEP, [], { parse_ns: 60_000 }),
      sample(4, 4 * STEP, [], { parse_ns: 0 }),
      sample(5, 5 * STEP, [], { parse_ns: 0, debugfs: false }),
    ];
    const file = writeJsonl(records(header(), s));
    const r = analyzeTrace(await readTrace(file));
    const c = r.sampling.costs!;
    expect(c.parse).toMatchObject({ n: 2, min: 40_000, p50: 40_000, max: 60_000 });
    expect(c.parsedSamples).toBe(2);
    expect(c.unchangedSamples).toBe(3);
    const text = run(['analyze', file]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('parse p50 40 us over 2 parsed sample(s), 3 unchanged;');
    expect(text.stdout).not.toMatch(/parse p50 0 ns/);
    expect(renderMarkdown(r)).toContain('| parse cost | p50 40 us, p99 60 us, max 60 us (n=2) over 2 parsed sample(s), 3 unchanged |');
  });

  it('CPU shares: gpucolo over the span from the running totals, and its own work less the fs calls inside the span', async () => {
    // 4 samples 100 ms apart: cpu_ns 1, 2, 3, 4 ms running total (1% of a core); io_ns 0.4 ms
    // each, of which the first sample's came before the span: own work (3 - 1.2) ms / 300 ms
    const s = [0, 1, 2, 3].map((i) => sample(i, i * 100_000_000, [], { io_ns: 400_000, read_cpu_ns: 600_000, cpu_ns: (i + 1) * 1_000_000 }));
    const file = writeJsonl(records(header(), s));
    const c = analyzeTrace(await readTrace(file)).sampling.costs!;
    expect(c.cpuShare).toBeCloseTo(0.01, 12);
    expect(c.ownShare).toBeCloseTo(0.006, 12);
    expect(c.readCpuShare).toBeCloseTo(0.006, 12);
    const text = run(['analyze', file]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('gpucolo 1.00% of a core (own work 0.60%, the rest in fs calls)');
    const md = renderMarkdown(analyzeTrace(await readTrace(file)));
    expect(md).toContain('| gpucolo CPU (sampler + JS thread) | 1.00% of one core over the span |');
    expect(md).toContain('| gpucolo own work (CPU - file-system calls) | 0.60% of one core over the span |');
  });

  it('own work is null (not 0, not negative) where a sample lacks io_ns or the fs calls outlasted the CPU', async () => {
    const lacking = [0, 1, 2].map((i) => sample(i, i * 100_000_000, [], { cpu_ns: (i + 1) * 1_000_000, ...(i === 1 ? {} : { io_ns: 100_000 }) }));
    const a = analyzeTrace(await readTrace(writeJsonl(records(header(), lacking)))).sampling.costs!;
    expect(a.cpuShare).toBeCloseTo(0.01, 12);
    expect(a.ownShare).toBeNull();
    // reads that waited: 5 ms in fs calls per 100 ms against 1 ms of CPU
    const waited = [0, 1, 2].map((i) => sample(i, i * 100_000_000, [], { cpu_ns: (i + 1) * 1_000_000, io_ns: 5_000_000 }));
    const file = writeJsonl(records(header(), waited));
    const b = analyzeTrace(await readTrace(file)).sampling.costs!;
    expect(b.cpuShare).toBeCloseTo(0.01, 12);
    expect(b.ownShare).toBeNull();
    const text = run(['analyze', file]);
    expect(text.stdout).toMatch(/gpucolo 1\.00% of a core$/m);
    expect(text.stdout).not.toContain('own work');
    expect(renderMarkdown(analyzeTrace(await readTrace(file)))).not.toContain('gpucolo own work');
  });

  it('parse cost: null (not 0) when no sample parsed anything', async () => {
    const s = [sample(0, 0, [], { parse_ns: 0 }), sample(1, STEP, [], { parse_ns: 0 }), sample(2, 2 * STEP, [], { parse_ns: 0, debugfs: false })];
    const file = writeJsonl(records(header(), s));
    const r = analyzeTrace(await readTrace(file));
    expect(r.sampling.costs).toMatchObject({ parse: null, parsedSamples: 0, unchangedSamples: 2 });
    const j = JSON.parse(run(['analyze', file, '--json']).stdout) as QueueUsageReport;
    expect(j.sampling.costs!.parse).toBeNull();
    const text = run(['analyze', file]).stdout;
    expect(text).toContain('parse - (no sample parsed debugfs; 2 unchanged);');
    expect(text).not.toMatch(/parse p50/);
  });

  it('a sample whose hqds could not be read is left out of the per-XCC distribution; a parse issue is not', async () => {
    const q = compute('1/q0', { qid: 0, mqd: '0x1000', slot: [0, 2] });
    const s = [
      sample(0, 0, [proc(1, [q])], { issues: ['hqds:57: unknown line "x"'] }),
      sample(1, STEP, [], { issues: ['cannot read /sys/kernel/debug/kfd/hqds (EACCES)'] }),
      sample(2, 2 * STEP, []),
    ];
    const r = analyzeTrace(await readTrace(writeJsonl(records(header(), s))));
    expect(r.gpus[0].samples).toBe(2);
    expect(r.gpus[0].perXcc[0].active).toMatchObject({ min: 0, max: 1 });
  });

  it('a debugfs-only trace counts only samples that read debugfs', async () => {
    const h = header({ sources: ['debugfs'], readable: ['debugfs'] });
    const q = compute('1/mqd0x1000', { mqd: '0x1000', slot: [0, 2] });
    const s = [sample(0, 0, [proc(1, [q])]), sample(1, STEP, [], { debugfs: false }), sample(2, 2 * STEP, [proc(1, [q])])];
    const r = analyzeTrace(await readTrace(writeJsonl(records(h, s))));
    expect(r.sampling.queueListSamples).toBe(2);
    expect(pidOf(r, 1).queueCount.whilePresent).toMatchObject({ samples: 2, min: 1, max: 1 });
    expect(pidOf(r, 1).queueSet.changes).toEqual([]);
  });

  it('too few samples and no queues are verdicts of their own', async () => {
    const s = [sample(0, 0, [proc(1, []), proc(2, [compute('2/q0', { qid: 0, mqd: '0x1000', slot: [0, 2] })])])];
    const r = analyzeTrace(await readTrace(writeJsonl(records(header(), s, [], footer(0)))));
    expect(pidOf(r, 1).queueSet.verdict).toBe('no-queues');
    expect(pidOf(r, 2).queueSet.verdict).toBe('too-few-samples');
    expect(r.coexistence).toBeNull();
  });

  it('Markdown shows the verdicts, the tables and the rules', async () => {
    const { report } = await lifecycleReport();
    const md = renderMarkdown(report);
    expect(md).toMatch(/^# Queue usage report\n/);
    expect(md).toContain('queue set **stable** (95.7% of 23 samples)');
    expect(md).toContain('| `100/q1` | 1 | compute | 7c1e | normal 1/7 |');
    expect(md).toContain('| `100/q0` | t=1.2 s | 12 | partial | active on 3 of 4 XCCs (inst 0,1,2) |');
    expect(md).toContain('## Rules');
    expect(md).toContain('p99 needs >= 100 samples, have 30 (p99 = max)');
    for (const line of md.split('\n').filter((l) => l.startsWith('|'))) expect(line.endsWith('|')).toBe(true);
  });
});

// ------------------------------------------------------------------------------------ CLI

// -------------------------------------------------------------- damaged input (issue 17)

const FIX_MQDS = fs.readFileSync(path.join(DEBUGFS, 'kfd/mqds'), 'latin1');
const FIX_HQDS = fs.readFileSync(path.join(DEBUGFS, 'kfd/hqds'), 'latin1');

/** A dump directory: snapshot i (1-based, unix stamps 10 s apart) of each [mqds, hqds] pair. */
function dumpDir(points: [string, string][]): string {
  const files: Record<string, string> = {};
  points.forEach(([m, h], i) => {
    files[`snapshot_mqd_${i + 1}_${1738650000 + i * 10}.txt`] = m;
    files[`snapshot_hqd_${i + 1}_${1738650000 + i * 10}.txt`] = h;
  });
  return makeTree(files, 'gpucolo-damaged-dumps-');
}

describe('analyze counts only what was read', () => {
  it('an mqds dump cut at dword 40: no phantom queue, no queue destroyed, no process exited', () => {
    for (const dw of [40, 88]) {
      const dir = dumpDir([
        [FIX_MQDS, FIX_HQDS],
        [cutMqdAtDword(FIX_MQDS, 2, 0, dw), FIX_HQDS],
        [FIX_MQDS, FIX_HQDS],
        [FIX_MQDS, FIX_HQDS],
      ]);
      const r = analyzeTrace(readDumpDir(dir));
      fs.rmSync(dir, { recursive: true });
      expect(r.processes.map((p) => [p.pid, p.exitedNs])).toEqual([
        [41872, null],
        [42117, null],
      ]);
      const keys = r.processes.flatMap((p) => p.queues.map((q) => q.key));
      expect(keys).toEqual(['41872/mqd0x712000', '41872/mqd0x71e000', '41872/sdma0x7f3a8a000000', '42117/mqd0x72a000']);
      for (const q of r.processes.flatMap((p) => p.queues)) expect([q.key, q.createdNs, q.destroyedNs, q.gaps]).toEqual([q.key, null, null, 0]);
      expect(r.processes.every((p) => p.queueSet.verdict === 'stable' && !p.queueSet.changed)).toBe(true);
      expect(r.sampling).toMatchObject({ samples: 4, queueListSamples: 3, incompleteSamples: { mqds: 1, hqds: 0 } });
    }
  });

  it('a queue that really goes during a cut is destroyed between the samples around the cut', () => {
    const without42117 = FIX_MQDS.slice(0, FIX_MQDS.indexOf('Process 42117'));
    const dir = dumpDir([
      [FIX_MQDS, FIX_HQDS],
      [cutMqdAtDword(FIX_MQDS, 2, 0, 40), FIX_HQDS],
      [without42117, FIX_HQDS],
    ]);
    const r = analyzeTrace(readDumpDir(dir));
    fs.rmSync(dir, { recursive: true });
    const p = r.processes.find((x) => x.pid === 42117)!;
    expect(p.exitedNs).toBe(20e9 + 10e9); // the third snapshot (t = stamp - first + one interval)
    expect(p.queues[0].destroyedNs).toBe(30e9);
  });

  it('an hqds dump cut after Inst 1: the sample is no HQD data, no unbalanced XCCs, no partial mapping', () => {
    const dir = dumpDir([
      [FIX_MQDS, FIX_HQDS],
      [FIX_MQDS, cutBeforeLine(FIX_HQDS, '   Inst 2, HIQ')],
      [FIX_MQDS, FIX_HQDS],
    ]);
    const r = analyzeTrace(readDumpDir(dir));
    fs.rmSync(dir, { recursive: true });
    const g = r.gpus[0];
    expect(g).toMatchObject({ numXcc: 4, samples: 2, unbalancedSamples: 0 });
    expect(g.perXcc.map((x) => [x.inst, x.samples, x.active.avg])).toEqual([
      [0, 2, 2],
      [1, 2, 2],
      [2, 2, 2],
      [3, 2, 2],
    ]);
    const q = r.processes[0].queues.find((x) => x.key === '41872/mqd0x712000')!;
    expect(q.mapping).toMatchObject({ samples: 2, fullyMappedSamples: 2, mismatches: [] });
    expect(r.sampling.incompleteSamples).toEqual({ mqds: 0, hqds: 1 });
  });

  it('a GPU node missing from one hqds dump (cut at a node boundary) is unknown there; the other node counts', () => {
    const s: SynthScenario = {
      nodes: [
        { node: 2, gpuId: 0x7c1e, numXcc: 2 },
        { node: 3, gpuId: 0x7c1f, numXcc: 2 },
      ],
      pids: [500],
      queues: [
        { pid: 500, kind: 'compute', gpu: 0, mqd: 0x800000, ring: 0x7f0000200000, doorbell: 0x1000, priority: 7, slot: [0, 2] },
        { pid: 500, kind: 'compute', gpu: 1, mqd: 0x900000, ring: 0x7f0000400000, doorbell: 0x1002, priority: 7, slot: [1, 3] },
      ],
      header: 'dkms',
      instPrinted: true,
      mapProcessDwords: 21,
      sdmaQuirk: true,
    };
    const [m, h] = [synthMqds(s), synthHqds(s)];
    const dir = dumpDir([
      [m, h],
      [m, dropNodeSection(h, 3)],
      [m, h],
    ]);
    const t = readDumpDir(dir);
    fs.rmSync(dir, { recursive: true });
    expect(t.samples[1].issues).toContain('gpu 7c1f (node ?): mqds lists 1 queue(s) on it but hqds does not show it: their HQD slots are unknown');
    const r = analyzeTrace(t);
    expect(r.gpus.map((g) => [g.node, g.samples, g.perXcc.map((x) => x.active.min)])).toEqual([
      [2, 3, [1, 1]],
      [3, 2, [1, 1]],
    ]);
    const q = r.processes[0].queues.find((x) => x.key === '500/mqd0x900000')!;
    expect(q.mapping).toMatchObject({ samples: 2, unmappedSamples: 0, fullyMappedSamples: 2, mismatches: [] });
  });

  it('an HQD slot whose active flag was not read (null in newer traces) is unknown, not inactive', async () => {
    const q = compute('1/q0', { qid: 0, mqd: '0x1000', slot: [0, 2] });
    const trace = await readTrace(writeJsonl(records(header(), [0, 1, 2].map((i) => sample(i, i * STEP, [proc(1, [q])])))));
    const cut = structuredClone(trace.samples[1].processes[0].queues[0].hqds!);
    (cut[3] as (number | null)[])[3] = null;
    trace.samples[1] = { ...trace.samples[1], processes: [{ ...trace.samples[1].processes[0], queues: [{ ...q, hqds: cut }] }] };
    const r = analyzeTrace(trace);
    expect(queueOf(r, '1/q0').mapping).toMatchObject({ samples: 2, fullyMappedSamples: 2, mismatches: [] });
    expect(r.gpus[0].perXcc.map((x) => x.samples)).toEqual([3, 3, 3, 2]);
    expect(r.gpus[0].unbalancedSamples).toBe(0);
  });

  it('"co-located" only for processes alive in the same samples', async () => {
    const a = compute('1/q0', { qid: 0, mqd: '0x1000', slot: [0, 2] });
    const b = compute('2/q0', { qid: 0, mqd: '0x2000', slot: [1, 2] });
    const one = [0, 1, 2].map((i) => sample(i, i * STEP, [proc(1, [a])]));
    const then = [3, 4, 5].map((i) => sample(i, i * STEP, [proc(2, [b])]));
    const r = analyzeTrace(await readTrace(writeJsonl(records(header(), [...one, ...then]))));
    expect(r.processes.map((p) => p.pid)).toEqual([1, 2]);
    expect(r.coexistence).toBeNull();
    // a third process that overlaps the second: those two are co-located, the first is not
    const c = compute('3/q0', { qid: 0, mqd: '0x3000', slot: [2, 2] });
    const both = [6, 7].map((i) => sample(i, i * STEP, [proc(2, [b]), proc(3, [c])]));
    const r2 = analyzeTrace(await readTrace(writeJsonl(records(header(), [...one, ...then, ...both]))));
    expect(r2.coexistence).toMatchObject({ pids: [2, 3], samplesTogether: 2 });
  });
});

describe('gpucolo analyze', () => {
  it('is built (npm test builds it first)', () => {
    expect(fs.existsSync(CLI)).toBe(true);
  });

  it('prints a text summary', () => {
    const r = run(['analyze', writeJsonl(lifecycleRecords())]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Trace .*trace\.jsonl: 30 sample\(s\) over 2\.9 s, every 100 ms, sources sysfs\+debugfs\n/);
    expect(r.stdout).toContain('Process 100: queues min/avg/max 0 / 2.69 / 3 (n=26); set stable (95.7% of 23)');
    expect(r.stdout).toMatch(/\n {2}100\/q1 +compute +7c1e +normal 1\/7 +4\/4 +1\/2 3\/5 +\+150 ms +t=2\.7 s\n/);
    expect(r.stdout).toContain('Co-located 100, 200: queues disjoint yes, HQD slots disjoint yes, total = sum yes (22 samples together)');
  });

  it('--json prints the report object; stdin works', () => {
    const text = fs.readFileSync(writeJsonl(lifecycleRecords()), 'utf8');
    const r = run(['analyze', '-', '--json'], text);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as QueueUsageReport;
    expect(j.schema).toBe('gpucolo.queue-usage/1');
    expect(j.input.path).toBe('<stdin>');
    expect(j.processes.map((p) => p.queueSet.verdict)).toEqual(['stable', 'stable']);
  });

  it('--md writes the Markdown atomically (no temp file left)', () => {
    const dir = tmpDir();
    const md = path.join(dir, 'report.md');
    const r = run(['analyze', writeJsonl(lifecycleRecords(), { dir }), '--md', md]);
    expect(r.code).toBe(0);
    expect(fs.readFileSync(md, 'utf8')).toMatch(/^# Queue usage report/);
    expect(fs.readdirSync(dir).sort()).toEqual(['report.md', 'trace.jsonl']);
  });

  it('unreadable or invalid input: one line, exit 1', () => {
    const missing = path.join(tmpDir(), 'missing.jsonl');
    let r = run(['analyze', missing]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`gpucolo: cannot read ${missing} (ENOENT)\n`);
    const empty = path.join(tmpDir(), 'empty.jsonl');
    fs.writeFileSync(empty, '');
    r = run(['analyze', empty]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`gpucolo: ${empty}: empty: no trace header\n`);
    r = run(['analyze', tmpDir()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^gpucolo: .*: not a dump directory: no KFD dumps .*\n$/);
    expect(r.stdout).toBe('');
  });

  it('bad usage: exit 2', () => {
    expect(run(['analyze']).code).toBe(2);
    expect(run(['analyze', 'x.jsonl', '--bogus']).code).toBe(2);
  });
});
