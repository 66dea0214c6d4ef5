/**
 * The tracer end to end against a host tree that the test changes while it samples: events must
 * land in the first sample taken after each change, the file must be valid JSON Lines from the
 * header to the footer, and the traced command must never outlive the trace.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import os from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { countersEvery, debugfsEvery, effectiveTailNs, runTrace, type TraceOptions } from '../src/trace/tracer.js';
import { cpuStatus } from '../src/trace/trace-run.js';
import { analyzeTrace, loadTrace } from '../src/trace/index.js';
import { liveGroupMembers } from '../src/supervisor/index.js';
import { TraceRecorder, numberedName } from '../src/trace/recorder.js';
import { defaultOut } from '../src/cli/trace.js';
import type { TraceEvent, TraceHeader, TraceMarker, TraceRecord, TraceSample } from '../src/trace/schema.js';
import { IMPLS, ROOT } from './helpers/impls.js';
import { KfdTree, deactivateSlot, setMqdPriority } from './helpers/kfd-tree.js';

const CLI = path.join(ROOT, 'dist/cli/cli.js');
const trees: KfdTree[] = [];
afterEach(() => {
  while (trees.length) trees.pop()!.dispose();
});
const tree = (): KfdTree => {
  const t = new KfdTree();
  trees.push(t);
  return t;
};

function readJsonl(file: string): TraceRecord[] {
  const text = fs.readFileSync(file, 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as TraceRecord);
}
const samplesOf = (r: TraceRecord[]) => r.filter((x): x is TraceSample => x.kind === 'sample');
const eventsOf = (r: TraceRecord[]) => r.filter((x): x is TraceEvent => x.kind === 'event');
const markersOf = (r: TraceRecord[]) => r.filter((x): x is TraceMarker => x.kind === 'marker');
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

function baseOptions(t: KfdTree, out: string): TraceOptions {
  return {
    intervalNs: 20e6,
    durationNs: null,
    debugfsIntervalNs: 20e6,
    sources: ['sysfs', 'debugfs'],
    sysfsRoot: t.sysfs,
    debugfsRoot: t.debugfs,
    procRoot: t.proc,
    baselineNs: 0,
    tailNs: 0,
    stopAfterNs: null,
    out,
    graceMs: 300,
  };
}

const outFile = (name: string): string => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-trace-')), name);

describe.each(IMPLS)('%s sampler: tracing a changing tree', (impl) => {
  it('records each change in the first sample taken after it', async () => {
    const t = tree();
    const out = outFile('t.jsonl');
    const origin = { ns: 0n };
    // a change happens somewhere between `before` and `after` (the rename inside fn)
    const changes: { what: string; before: bigint; after: bigint }[] = [];
    const at = (ms: number, what: string, fn: () => void) =>
      setTimeout(() => {
        const before = process.hrtime.bigint();
        fn();
        changes.push({ what, before, after: process.hrtime.bigint() });
      }, ms);
    const ctl = new AbortController();
    const timers = [
      at(250, 'queue 5 created', () => t.addQueue(41872, 5)),
      at(500, 'slot 0/2 unmapped', () => t.writeDebugfs('hqds', deactivateSlot(t.readDebugfs('hqds'), 0, 2))),
      at(750, 'priority of qid1', () => t.writeDebugfs('mqds', setMqdPriority(t.readDebugfs('mqds'), 0x71e000, 2, 15))),
      at(1000, 'queue 5 destroyed', () => t.removeQueue(41872, 5)),
      at(1250, 'process 42117 gone', () => {
        t.removeProcess(42117);
        t.writeDebugfs('mqds', t.readDebugfs('mqds').replace(/Process 42117[\s\S]*$/, ''));
        // stop a while after the last change, not at a fixed time: a loaded host delays timers
        setTimeout(() => ctl.abort(), 400);
      }),
    ];
    const res = await runTrace({ ...baseOptions(t, out), impl, signal: ctl.signal });
    timers.forEach(clearTimeout);
    expect(res.endedBy).toBe('interrupt');
    const recs = readJsonl(out);
    const header = recs[0] as TraceHeader;
    expect(header).toMatchObject({ kind: 'header', schema: 'gpucolo.trace/1', impl, sampler: impl === 'native' ? 'native-thread' : 'ts-timer', readable: ['sysfs', 'debugfs'] });
    expect(header.gpus).toEqual([{ node: 2, gpuId: '7c1e', name: 'ip discovery', gfxTarget: 'gfx942', numXcc: 4 }]);
    expect(recs.at(-1)).toMatchObject({ kind: 'footer', endedBy: 'interrupt' });
    origin.ns = BigInt(header.monotonicOriginNs);
    const samples = samplesOf(recs);
    expect(samples.length).toBeGreaterThan(10);
    samples.forEach((s, i) => {
      expect(s.seq).toBe(i);
      expect(s.t_ns).toBeGreaterThanOrEqual(s.intended_ns);
      expect(s.debugfs).toBe(true);
    });
    // the first sample is the baseline: no events for what already existed
    expect(eventsOf(recs).every((e) => e.sample > 0)).toBe(true);

    const ev = eventsOf(recs);
    const expectFirstAfter = (what: string, pred: (e: TraceEvent) => boolean, count = 1): void => {
      const change = changes.find((c) => c.what === what)!;
      const beforeNs = Number(change.before - origin.ns);
      const afterNs = Number(change.after - origin.ns);
      // the sample in progress during the change may already see it; any sample begun after must
      const firstAfter = samples.find((s) => s.t_ns > afterNs)!;
      const matching = ev.filter(pred);
      expect(matching, what).toHaveLength(count);
      for (const e of matching) {
        expect(e.sample, what).toBeLessThanOrEqual(firstAfter.seq);
        // and no sample that finished reading before the change began can have seen it
        expect(e.t_ns + samples[e.sample].read_ns, what).toBeGreaterThanOrEqual(beforeNs);
      }
    };
    expectFirstAfter('queue 5 created', (e) => e.event === 'queue-created' && e.key === '41872/q5');
    expectFirstAfter('slot 0/2 unmapped', (e) => e.event === 'hqd-unmapped' && e.pid === 41872 && e.pipe === 0 && e.queue === 2 && e.key === '41872/q0', 4);
    expectFirstAfter('priority of qid1', (e) => e.event === 'priority-changed' && e.key === '41872/q1');
    expectFirstAfter('queue 5 destroyed', (e) => e.event === 'queue-destroyed' && e.key === '41872/q5');
    expectFirstAfter('process 42117 gone', (e) => e.event === 'process-exited' && e.pid === 42117);
    const prio = ev.find((e) => e.event === 'priority-changed')!;
    expect([prio.from, prio.to]).toEqual([{ pipe: 2, queue: 11 }, { pipe: 2, queue: 15 }]);
    // queue 5 is a sysfs-only queue while mqds does not show it: no hqds claimed for it
    const withQ5 = samples.find((s) => s.processes[0].queues.some((q) => q.key === '41872/q5'))!;
    expect(withQ5.processes[0].queues.find((q) => q.key === '41872/q5')).toMatchObject({ qid: 5, type: 'compute', hqds: null, priority: null });
  });

  it('the status line: about once a second, with gpucolo\'s CPU share and of it its own work', async () => {
    const t = tree();
    const out = outFile('status.jsonl');
    const lines: string[] = [];
    await runTrace({ ...baseOptions(t, out), impl, durationNs: 2.3e9, status: (l) => lines.push(l) });
    // at ~1 s and ~2 s; the first has no CPU figure yet (a share needs two running totals)
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const l of lines) expect(l).toMatch(/^trace \d+\.\ds: \d+ samples \(\d+ missed\)(, gpucolo \d+\.\d\d% of a core( \(own work \d+\.\d\d%\))?)?, \d+ process\(es\), \d+ queue\(s\), \d+ event\(s\)$/);
    expect(lines[0]).not.toContain('of a core');
    if (samplesOf(readJsonl(out))[0].cpu_ns !== undefined) expect(lines.slice(1).some((l) => l.includes('% of a core'))).toBe(true);
    for (const l of lines) {
      const m = /gpucolo (\d+\.\d\d)% of a core \(own work (\d+\.\d\d)%\)/.exec(l);
      if (m) expect(Number(m[2])).toBeLessThanOrEqual(Number(m[1]));
    }
  });
});

describe('trace modes', () => {
  it('--debugfs-interval: debugfs every N-th sample; hqds/priority are null in the others', async () => {
    const t = tree();
    const out = outFile('d.jsonl');
    const res = await runTrace({ ...baseOptions(t, out), debugfsIntervalNs: 60e6, durationNs: 400e6 });
    expect(res.endedBy).toBe('duration');
    const s = samplesOf(readJsonl(out));
    expect(s.map((x) => x.debugfs).slice(0, 6)).toEqual([true, false, false, true, false, false]);
    const q0 = (x: TraceSample) => x.processes[0].queues[0];
    expect(q0(s[0]).hqds).toHaveLength(4);
    expect(q0(s[1])).toMatchObject({ hqds: null, priority: null, key: '41872/q0' });
    // nothing changed: the missing debugfs data is not taken as an unmap
    expect(eventsOf(readJsonl(out))).toEqual([]);
  });

  it('sysfs only (--sources sysfs): ids, types and lifecycle, no hardware slots', async () => {
    const t = tree();
    const out = outFile('s.jsonl');
    setTimeout(() => t.addQueue(42117, 1, 1), 150);
    const res = await runTrace({ ...baseOptions(t, out), sources: ['sysfs'], durationNs: 400e6 });
    expect(res.readable).toEqual(['sysfs']);
    const recs = readJsonl(out);
    expect((recs[0] as TraceHeader).debugfsIntervalNs).toBe(0);
    expect(samplesOf(recs).every((x) => !x.debugfs && x.processes.every((p) => p.queues.every((q) => q.hqds === null)))).toBe(true);
    expect(eventsOf(recs).map((e) => [e.event, e.key, e.type])).toEqual([['queue-created', '42117/q1', 'sdma']]);
  });

  it.each(IMPLS.flatMap((i) => [[i, 'incremental'], [i, 'full']] as const))('%s --sysfs-walk %s: the same lifecycle, the walk and the sampler\'s own costs recorded', async (impl, walk) => {
    const t = tree();
    const out = outFile(`walk-${walk}.jsonl`);
    setTimeout(() => t.addQueue(42117, 1, 1), 150);
    setTimeout(() => t.removeQueue(41872, 2), 250);
    await runTrace({ ...baseOptions(t, out), impl, sources: ['sysfs'], sysfsWalk: walk, countersIntervalNs: 60e6, durationNs: 400e6 });
    const recs = readJsonl(out);
    const header = recs[0] as TraceHeader;
    expect([header.sysfsWalk, header.countersIntervalNs]).toEqual([walk, 60e6]);
    expect(eventsOf(recs).map((e) => [e.event, e.key])).toEqual([
      ['queue-created', '42117/q1'],
      ['queue-destroyed', '41872/q2'],
    ]);
    const samples = samplesOf(recs);
    for (const s of samples) {
      expect(s.io_ns).toBeGreaterThan(0);
      expect(s.io_ns!).toBeLessThanOrEqual(s.read_ns);
      // a thread CPU clock exists with the addon (both samplers) or on Node >= 23.9
      if (s.read_cpu_ns !== undefined) expect(s.read_cpu_ns).toBeGreaterThanOrEqual(0);
    }
    const sampling = analyzeTrace(await loadTrace(out)).sampling;
    expect(sampling.costs!.io!.p50).toBeGreaterThan(0);
    if (samples[0].cpu_ns !== undefined) expect(sampling.costs!.cpuShare).toBeGreaterThan(0);
  });

  it('an unreadable debugfs is noticed, not fatal', async () => {
    const t = tree();
    fs.rmSync(t.debugfs, { recursive: true });
    const notes: string[] = [];
    const res = await runTrace({ ...baseOptions(t, outFile('u.jsonl')), durationNs: 100e6, log: (l) => notes.push(l) });
    expect(res.readable).toEqual(['sysfs']);
    expect(notes.join('\n')).toMatch(/debugfs .* is not readable \(root only\); recording sysfs only/);
  });

  it('debugfs lost mid-trace and back: markers, and no made-up unmap events', async () => {
    const t = tree();
    const out = outFile('lost.jsonl');
    const kfd = path.join(t.debugfs, 'kfd');
    const aside = path.join(t.root, 'kfd-aside');
    setTimeout(() => fs.renameSync(kfd, aside), 150);
    setTimeout(() => fs.renameSync(aside, kfd), 350);
    await runTrace({ ...baseOptions(t, out), durationNs: 550e6 });
    const recs = readJsonl(out);
    expect(markersOf(recs).map((m) => [m.marker, m.source])).toEqual([
      ['source-lost', 'debugfs'],
      ['source-back', 'debugfs'],
    ]);
    const lostSamples = samplesOf(recs).filter((s) => !s.debugfs);
    expect(lostSamples.length).toBeGreaterThan(0);
    expect(lostSamples.every((s) => s.issues.some((i) => /cannot read .*kfd\/mqds \(ENOENT\)/.test(i)))).toBe(true);
    // the sysfs part went on: same queues, slots unknown (null), not unmapped
    expect(lostSamples.every((s) => s.processes.length === 2 && s.processes[0].queues.every((q) => q.hqds === null))).toBe(true);
    expect(eventsOf(recs)).toEqual([]);
  });

  it('a pid reused by another process is an exit and a new start', async () => {
    const t = tree();
    const out = outFile('reuse.jsonl');
    // /proc/<pid>/stat field 22 (start time) tells two processes behind one pid apart
    const stat = (start: number) => `41872 (python3) S 41850 41850 41850 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 64 0 ${start} 0 0\n`;
    fs.writeFileSync(path.join(t.proc, '41872/stat'), stat(1000));
    setTimeout(() => {
      fs.writeFileSync(path.join(t.proc, '41872/stat'), stat(2000));
      t.removeQueue(41872, 2); // the new process has fewer queues: its queue set differs
    }, 200);
    await runTrace({ ...baseOptions(t, out), sources: ['sysfs'], durationNs: 450e6 });
    const ev = eventsOf(readJsonl(out)).filter((e) => e.pid === 41872);
    expect(ev.map((e) => `${e.event} ${e.key ?? ''}`.trim())).toEqual([
      'queue-destroyed 41872/q0',
      'queue-destroyed 41872/q1',
      'queue-destroyed 41872/q2',
      'process-exited',
      'process-started',
      'queue-created 41872/q0',
      'queue-created 41872/q1',
    ]);
    expect(new Set(ev.map((e) => e.sample)).size).toBe(1);
  });

  it('no KFD at all: a clear error before anything is written', async () => {
    const out = outFile('none.jsonl');
    await expect(runTrace({ ...baseOptions(tree(), out), sysfsRoot: '/nonexistent', debugfsRoot: '/nonexistent' })).rejects.toMatchObject({ code: 'ENOKFD' });
    expect(fs.existsSync(out)).toBe(false);
  });

  it('intervals outside 10ms..60s are refused', async () => {
    await expect(runTrace({ ...baseOptions(tree(), outFile('x.jsonl')), intervalNs: 5e6 })).rejects.toThrow(/between 10ms and 60s/);
    await expect(runTrace({ ...baseOptions(tree(), outFile('x.jsonl')), intervalNs: 61e9 })).rejects.toThrow(RangeError);
    await expect(runTrace({ ...baseOptions(tree(), outFile('x.jsonl')), intervalNs: Number.NaN })).rejects.toThrow(RangeError);
  });

  it('debugfs and tail rules with long intervals: debugfs never more often than the samples, the tail covers one interval', () => {
    expect(debugfsEvery(10e9, null)).toBe(1);
    expect(debugfsEvery(10e9, 100e6)).toBe(1);
    expect(debugfsEvery(10e9, 60e9)).toBe(6);
    expect(debugfsEvery(100e6, null)).toBe(1);
    expect(debugfsEvery(20e6, null)).toBe(5);
    expect(effectiveTailNs(10e9, 5e9)).toBe(10.1e9);
    expect(effectiveTailNs(10e9, 30e9)).toBe(30e9);
    // up to 1 s nothing changes (a tail of 0 stays 0)
    expect(effectiveTailNs(1e9, 0)).toBe(0);
    expect(effectiveTailNs(100e6, 5e9)).toBe(5e9);
    // counters: once a second by default, every sample above that
    expect(countersEvery(10e6, null)).toBe(100);
    expect(countersEvery(100e6, null)).toBe(10);
    expect(countersEvery(10e9, null)).toBe(1);
    expect(countersEvery(100e6, 250e6)).toBe(3);
    expect(countersEvery(100e6, 10e6)).toBe(1);
  });

  it.each(IMPLS)('%s: a long-study interval (10 s, as the design notes sample) is accepted and stops at once when aborted', async (impl) => {
    const out = outFile('long.jsonl');
    const ctl = new AbortController();
    const logs: string[] = [];
    const res = await runTrace({
      ...baseOptions(tree(), out),
      impl,
      intervalNs: 10e9,
      debugfsIntervalNs: null,
      tailNs: 5e9,
      signal: ctl.signal,
      log: (l) => logs.push(l),
      // the first sample is taken at t = 0; abort right after it
      onOpen: () => setTimeout(() => ctl.abort(), 50),
    });
    expect(res.endedBy).toBe('interrupt');
    const recs = readJsonl(out);
    const header = recs[0] as TraceHeader;
    expect(header.intervalNs).toBe(10e9);
    expect(header.debugfsIntervalNs).toBe(10e9);
    // the 5 s tail would end before a 10 s sampler samples again: at least one interval is kept
    expect(header.options.tailNs).toBe(10.1e9);
    expect(logs.join('\n')).toMatch(/--tail 5s is shorter than the 10s interval/);
    expect(samplesOf(recs).length).toBeGreaterThanOrEqual(1);
  });

  it('a command: baseline, KFD processes among its descendants, tail, footer; others not traced', async () => {
    const t = tree();
    const out = outFile('c.jsonl');
    const proc = path.join(t.sysfs, 'class/kfd/kfd/proc');
    // a stand-in for a HIP program: appears in (fake) KFD sysfs under its own pid, like opening
    // /dev/kfd, and disappears when it ends; the real /proc links it to the traced command
    const script = path.join(t.root, 'kfdproc.sh');
    fs.writeFileSync(
      script,
      `d="$1/$$"; mkdir -p "$1/.t$$/queues/0"; printf 0 > "$1/.t$$/queues/0/type"; printf 4096 > "$1/.t$$/queues/0/size"; printf 31774 > "$1/.t$$/queues/0/gpuid"; mv "$1/.t$$" "$d"; sleep "$2"; rm -rf "$d"\n`,
    );
    const res = await runTrace({
      ...baseOptions(t, out),
      procRoot: '/proc',
      command: ['sh', '-c', `sh ${script} ${proc} 0.4 & sh ${script} ${proc} 0.2; wait`],
      baselineNs: 150e6,
      tailNs: 150e6,
    });
    expect(res.endedBy).toBe('command-exit');
    expect(res.command?.exit).toMatchObject({ code: 0, reason: 'exited' });
    const recs = readJsonl(out);
    expect(markersOf(recs).map((x) => x.marker)).toEqual(['baseline-start', 'baseline-end', 'command-started', 'command-exited']);
    const ev = eventsOf(recs);
    const startedPids = ev.filter((e) => e.event === 'process-started').map((e) => e.pid);
    expect(startedPids).toHaveLength(2);
    expect(ev.filter((e) => e.event === 'process-exited').map((e) => e.pid).sort()).toEqual([...startedPids].sort());
    // each process came with one queue and took it along when it ended
    expect(ev.filter((e) => e.event === 'queue-created').map((e) => e.pid).sort()).toEqual([...startedPids].sort());
    expect(ev.filter((e) => e.event === 'queue-destroyed').map((e) => e.pid).sort()).toEqual([...startedPids].sort());
    // the fixture's own processes (41872, 42117) are not descendants of the command
    expect(samplesOf(recs).every((s) => s.processes.every((p) => p.pid !== 41872 && p.pid !== 42117))).toBe(true);
    const started = markersOf(recs).find((x) => x.marker === 'command-started')!;
    expect(alive(started.pid!)).toBe(false);
    expect(markersOf(recs).find((x) => x.marker === 'baseline-end')!.t_ns).toBeGreaterThanOrEqual(150e6);
  });

  it('--stop-after sends SIGTERM; a command that ignores it is killed after the grace', async () => {
    const t = tree();
    const out = outFile('k.jsonl');
    const res = await runTrace({ ...baseOptions(t, out), command: ['sh', '-c', 'trap "" TERM; sleep 30 & wait; sleep 30'], stopAfterNs: 200e6, graceMs: 300 });
    expect(res.command?.exit).toMatchObject({ reason: 'killed', signal: 'SIGKILL' });
    const recs = readJsonl(out);
    const mk = markersOf(recs);
    expect(mk.map((x) => x.marker)).toEqual(['baseline-start', 'baseline-end', 'command-started', 'stop-signal', 'command-exited']);
    const sig = mk.find((x) => x.marker === 'stop-signal')!;
    const exited = mk.find((x) => x.marker === 'command-exited')!;
    expect(exited.t_ns - sig.t_ns).toBeGreaterThanOrEqual(300e6);
    expect(alive(mk.find((x) => x.marker === 'command-started')!.pid!)).toBe(false);
  });

  it('--pid: ends after every traced pid exited (and the tail)', async () => {
    const t = tree();
    const out = outFile('p.jsonl');
    const sleeper = spawn('sleep', ['0.3']);
    t.addQueue(sleeper.pid!, 0);
    const res = await runTrace({ ...baseOptions(t, out), procRoot: '/proc', pids: [sleeper.pid!], tailNs: 100e6 });
    expect(res.endedBy).toBe('target-exit');
    const s = samplesOf(readJsonl(out));
    expect(s[0].processes.map((p) => p.pid)).toEqual([sleeper.pid]);
  });

  it('--serve exposes the current counts as Prometheus metrics', async () => {
    const t = tree();
    const ctl = new AbortController();
    let url = '';
    let running: Promise<unknown> = Promise.resolve();
    const listening = new Promise<void>((resolve) => {
      const p = runTrace({
        ...baseOptions(t, outFile('m.jsonl')),
        serve: '127.0.0.1:0',
        signal: ctl.signal,
        log: (l) => {
          const m = /metrics on (http:\S+)/.exec(l);
          if (m) {
            url = m[1];
            resolve();
          }
        },
      });
      void p.then(() => resolve());
      running = p;
    });
    await listening;
    await new Promise((r) => setTimeout(r, 200));
    const body = await (await fetch(url)).text();
    const other = (await fetch(url.replace('/metrics', '/other'))).status;
    ctl.abort();
    await running;
    expect(body).toMatch(/^gpucolo_kfd_processes 2$/m);
    expect(body).toMatch(/^gpucolo_kfd_queues\{pid="41872",gpu="7c1e",type="compute"\} 2$/m);
    expect(body).toMatch(/^gpucolo_kfd_active_hqds\{pid="41872",gpu="7c1e",inst="3"\} 2$/m);
    expect(body).toMatch(/^gpucolo_trace_samples_total \d+$/m);
    expect(other).toBe(404);
  });
});

describe('trace CLI', () => {
  const run = (args: string[], opts: { input?: string } = {}) => spawnSync(process.execPath, [CLI, 'trace', ...args], { encoding: 'utf8', timeout: 30_000, ...opts });

  it('writes to stdout with --out -, progress to stderr', () => {
    const t = tree();
    const r = run(['--root', t.root, '--interval', '20ms', '--duration', '200ms', '--out', '-']);
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(lines[0].kind).toBe('header');
    expect(lines.at(-1)).toMatchObject({ kind: 'footer', endedBy: 'duration' });
    expect(r.stderr).toMatch(/gpucolo trace: \d+ samples, \d+ events, \d+ missed intervals, ended by duration/);
  });

  it('bad options exit 2 with one line', () => {
    expect(run(['--interval', '1ms', '--duration', '1s']).status).toBe(2);
    expect(run(['--interval', 'soon']).status).toBe(2);
    expect(run(['--sources', 'nvml']).status).toBe(2);
    const r = run(['--stop-after', '1s', '--root', tree().root]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--stop-after needs a command/);
  });

  it('a full disk ends the trace with a clear error and no orphan', () => {
    const t = tree();
    const r = run(['--root', t.root, '--interval', '20ms', '--out', '/dev/full', '--baseline', '0s', '--', 'sleep', '30']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/cannot write the trace to \/dev\/full: disk full \(ENOSPC\)/);
    const started = /started sleep 30 \(pid (\d+)/.exec(r.stderr);
    if (started) expect(alive(Number(started[1]))).toBe(false);
  });

  it('a reader that closes the pipe ends the trace with a clear error and no orphan', async () => {
    const t = tree();
    const child = spawn(process.execPath, [CLI, 'trace', '--root', t.root, '--interval', '10ms', '--out', '-', '--baseline', '0s', '--', 'sleep', '30'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    // read the header, then go away like `| head -1`
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    await new Promise<void>((resolve) => {
      const wait = (): void => (/started sleep 30/.test(err) ? resolve() : void setTimeout(wait, 20));
      wait();
    });
    child.stdout.destroy();
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(1);
    expect(err).toMatch(/cannot write the trace to stdout: the reader closed the pipe \(EPIPE\)/);
    const pid = Number(/started sleep 30 \(pid (\d+)/.exec(err)![1]);
    expect(alive(pid) && liveGroupMembers('/proc', pid).length > 0).toBe(false);
  });

  it('Ctrl-C stops the command group and closes the trace with a footer', async () => {
    const t = tree();
    const out = outFile('int.jsonl');
    const child = spawn(process.execPath, [CLI, 'trace', '--root', t.root, '--interval', '20ms', '--out', out, '--baseline', '0s', '--', 'sh', '-c', 'sleep 30 & sleep 30'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    // Ctrl-C once the command runs (before that, gpucolo has not installed its handlers yet)
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (d) => {
        err += d;
        if (/started sh/.test(err)) resolve();
      });
      child.on('exit', () => reject(new Error(`gpucolo trace exited early: ${err}`)));
    });
    await new Promise((r) => setTimeout(r, 200));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(0);
    const recs = readJsonl(out);
    expect(recs.at(-1)).toMatchObject({ kind: 'footer', endedBy: 'interrupt' });
    // stopped by gpucolo on Ctrl-C: not taken for an exit of its own (no tail, no "sampling more")
    expect(markersOf(recs).map((m) => m.marker).slice(-2)).toEqual(['interrupted', 'command-exited']);
    expect(err).not.toMatch(/sampling .* more/);
    const started = markersOf(recs).find((m) => m.marker === 'command-started')!;
    expect(alive(started.pid!)).toBe(false);
    // the whole group is gone, the background sleep included (a zombie waiting for init is dead)
    expect(liveGroupMembers('/proc', started.pgid!)).toEqual([]);
  });
});

describe('trace output file', () => {
  const runIn = (cwd: string, args: string[]) => spawnSync(process.execPath, [CLI, 'trace', ...args], { cwd, encoding: 'utf8', timeout: 30_000 });

  it('an existing --out file survives a bad --serve and a failed listen byte for byte; no empty default file', async () => {
    const t = tree();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-trace-'));
    const precious = path.join(dir, 'precious.jsonl');
    const content = '{"kind":"header"}\n{"kind":"footer"}\n';
    fs.writeFileSync(precious, content);
    const bad = runIn(dir, ['--root', t.root, '--out', precious, '--duration', '1s', '--serve', 'notanaddr']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/not a listen address/);
    expect(fs.readFileSync(precious, 'utf8')).toBe(content);

    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const busy = runIn(dir, ['--root', t.root, '--out', precious, '--duration', '1s', '--serve', `127.0.0.1:${port}`]);
      // a busy port is a usage error, like in `distributed`: exit 2, one line
      expect(busy.status).toBe(2);
      expect(busy.stderr).toMatch(new RegExp(`^gpucolo: --serve 127\\.0\\.0\\.1:${port}: port ${port} is already in use on 127\\.0\\.0\\.1`));
      expect(busy.stderr.trim().split('\n')).toHaveLength(1);
      expect(fs.readFileSync(precious, 'utf8')).toBe(content);
      // the default name: nothing is left behind
      const noOut = runIn(dir, ['--root', t.root, '--duration', '1s', '--serve', `127.0.0.1:${port}`]);
      expect(noOut.status).toBe(2);
      expect(runIn(dir, ['--root', t.root, '--duration', '1s', '--serve', 'notanaddr']).status).toBe(2);
      expect(fs.readdirSync(dir)).toEqual(['precious.jsonl']);
    } finally {
      await new Promise((r) => taken.close(r));
    }
  });

  it('runTrace: an existing file is kept when --serve cannot listen', async () => {
    const t = tree();
    const out = outFile('keep.jsonl');
    fs.writeFileSync(out, 'keep me\n');
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      await expect(runTrace({ ...baseOptions(t, out), durationNs: 100e6, serve: `127.0.0.1:${port}` })).rejects.toMatchObject({ code: 'EADDRINUSE' });
      await expect(runTrace({ ...baseOptions(t, out), durationNs: 100e6, serve: 'nope' })).rejects.toThrow(RangeError);
    } finally {
      await new Promise((r) => taken.close(r));
    }
    expect(fs.readFileSync(out, 'utf8')).toBe('keep me\n');
    // an explicit --out is still replaced by a run that records
    await runTrace({ ...baseOptions(t, out), durationNs: 60e6 });
    expect(readJsonl(out)[0].kind).toBe('header');
  });

  it('generated names are created exclusively: a second tracer in the same second gets name-2', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-trace-'));
    const base = path.join(dir, defaultOut(new Date(2026, 0, 2, 3, 4, 5)));
    expect(path.basename(base)).toBe('trace-20260102-030405.jsonl');
    expect(numberedName(base, 3)).toBe(path.join(dir, 'trace-20260102-030405-3.jsonl'));
    const a = new TraceRecorder(base, { unique: true });
    const b = new TraceRecorder(base, { unique: true });
    expect(a.out).toBe(base);
    expect(b.out).toBe(path.join(dir, 'trace-20260102-030405-2.jsonl'));
    a.write({ kind: 'footer', t_ns: 0, samples: 0, events: 0, missedIntervals: 0, endedBy: 'duration' });
    a.close();
    b.close();
    // b wrote nothing: its file is gone again; a's stays
    expect(fs.readdirSync(dir)).toEqual(['trace-20260102-030405.jsonl']);
  });

  it('coalesce: the records of one event-loop turn are one write, whole lines; a failing flush calls onError once', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-trace-'));
    const file = path.join(dir, 't.jsonl');
    const footer = { kind: 'footer', t_ns: 0, samples: 0, events: 0, missedIntervals: 0, endedBy: 'duration' } as const;
    const rec = new TraceRecorder(file, { coalesce: true });
    for (let i = 0; i < 3; i++) rec.write({ ...footer, t_ns: i });
    // nothing yet: the turn is not over
    expect(fs.readFileSync(file, 'utf8')).toBe('');
    expect(rec.records).toBe(0);
    await new Promise((r) => setImmediate(r));
    expect(readJsonl(file).map((r) => r.t_ns)).toEqual([0, 1, 2]);
    expect(rec.records).toBe(3);
    // close() writes what is pending
    rec.write({ ...footer, t_ns: 3 });
    rec.close();
    expect(readJsonl(file).map((r) => r.t_ns)).toEqual([0, 1, 2, 3]);
    const errors: string[] = [];
    const full = new TraceRecorder('/dev/full', { coalesce: true, onError: (e) => errors.push(e.code) });
    expect(full.write(footer)).toBe(true);
    expect(full.write(footer)).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(errors).toEqual(['ENOSPC']);
    expect(full.error?.message).toMatch(/cannot write the trace to \/dev\/full: disk full \(ENOSPC\)/);
    expect(full.write(footer)).toBe(false);
    full.close();
    expect(errors).toEqual(['ENOSPC']);
  });

  it('two CLI runs with the default name started together write two valid files', async () => {
    const t = tree();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-trace-'));
    const start = () =>
      new Promise<number | null>((resolve) => {
        const c = spawn(process.execPath, [CLI, 'trace', '--root', t.root, '--interval', '20ms', '--duration', '300ms'], { cwd: dir, stdio: 'ignore' });
        c.on('exit', (code) => resolve(code));
      });
    expect(await Promise.all([start(), start()])).toEqual([0, 0]);
    const files = fs.readdirSync(dir);
    expect(files).toHaveLength(2);
    for (const f of files) {
      const recs = readJsonl(path.join(dir, f));
      expect(recs.filter((r) => r.kind === 'header')).toHaveLength(1);
      expect(recs.at(-1)?.kind).toBe('footer');
    }
  });
});

describe('cpuStatus: the status line\'s CPU part', () => {
  it('the CPU share over the span, and of it the own work less the fs calls', () => {
    expect(cpuStatus(10e6, 1e9, 4e6)).toBe('gpucolo 1.00% of a core (own work 0.60%)');
    expect(cpuStatus(10e6, 1e9, 0)).toBe('gpucolo 1.00% of a core (own work 1.00%)');
  });

  it('no own work where a sample lacked its fs time or the calls outlasted the CPU', () => {
    expect(cpuStatus(10e6, 1e9, null)).toBe('gpucolo 1.00% of a core');
    expect(cpuStatus(10e6, 1e9, 12e6)).toBe('gpucolo 1.00% of a core');
  });
});
