/** Reports of scenario runs: atomic writes, charts, report.md, compare (library and command). */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { TopLevelSpec } from 'vega-lite';
import { compareCommand } from '../src/cli/compare.js';
import { CliError } from '../src/cli/errors.js';
import {
  chartSpecs,
  compareResults,
  fmtNum,
  loadResults,
  renderCharts,
  renderMarkdown,
  renderSpecs,
  sloBounds,
  writeFileAtomic,
  writeJsonAtomic,
  type ChartFile,
} from '../src/report/index.js';
import type { PhaseResult, Results, TaskResult } from '../src/scenario/types.js';

// ------------------------------------------------------------------------------------ fixtures

/** A plausible latency CDF: 100 points, median p50, a tail rising to p50 * tail. */
function cdf(p50: number, tail: number): [number, number][] {
  return Array.from({ length: 100 }, (_, i) => {
    const f = (i + 1) / 100;
    return [p50 * (0.6 + 0.8 * f + (tail - 1.4) * f ** 12), f];
  });
}

function task(name: string, o: { priority: number; n: number; p50: number; p99: number; ci: [number, number] | null; thr: number; share?: number | null; sloPass?: boolean | null }): TaskResult {
  const unsupported = o.n < 1000 ? ['p999'] : [];
  if (o.n < 100) unsupported.push('p99');
  return {
    name,
    priority: o.priority,
    workload: `probe: 1 ms kernel, 1 block(s) on cpu`,
    requests: { issued: o.n, completed: o.n, errors: 0 },
    latencyMs: {
      n: o.n,
      p50: o.n ? o.p50 : null,
      p90: o.n ? o.p50 * 1.5 : null,
      p95: o.n ? o.p50 * 1.8 : null,
      p99: o.n ? o.p99 : null,
      p999: o.n ? o.p99 * 1.3 : null,
      max: o.n ? o.p99 * 1.5 : null,
      mean: o.n ? o.p50 * 1.1 : null,
      ci99: o.ci,
      unsupported: o.n ? unsupported : ['p50', 'p90', 'p95', 'p99', 'p999'],
    },
    throughput: o.thr,
    throughputShare: o.share ?? null,
    slowdownP99: null,
    deadline: name === 'lp' ? { ms: 100, missed: 3, total: o.n, ratio: o.n ? 3 / o.n : 0 } : null,
    busyShare: 0.4,
    slo:
      name === 'hp'
        ? [{ text: 'P99 < 5 ms', pass: o.sloPass ?? null, detail: `P99 ${o.p99} ms (n=${o.n})` }]
        : [{ text: 'throughput >= 30% of standalone', pass: o.share == null ? null : o.share >= 0.3, detail: o.share == null ? 'standalone phase' : `throughput ${Math.round(o.share * 100)}% of standalone` }],
    cdf: o.n ? cdf(o.p50, o.p99 / o.p50) : [],
  };
}

function phase(name: string, tasks: TaskResult[], extra: Partial<PhaseResult> = {}): PhaseResult {
  const corun = name.startsWith('corun:');
  return {
    name,
    kind: corun ? 'corun' : 'standalone',
    mechanism: corun ? name.slice(6) : 'none',
    status: 'ok',
    measuredS: 10,
    tasks,
    utilisation: corun ? { value: 0.87, source: 'busy-time' } : { value: null, source: 'unavailable', reason: 'standalone' },
    fairness: corun ? 0.93 : null,
    notes: [],
    ...extra,
  };
}

function makeResults(): Results {
  return {
    schema: 'gpucolo.results/1',
    gpucoloVersion: '0.1.0',
    createdAt: '2025-01-02T03:04:05.000Z',
    partial: false,
    scenario: {
      name: 'hp-lp',
      source: 'examples/hp-lp.yaml',
      form: 'probe',
      config: { name: 'hp-lp', tasks: [{ name: 'hp', priority: 10, slo: { percentile: 99, below: 5e6 } }, { name: 'lp', priority: 0, slo: { minThroughputShare: 0.3 } }] },
    },
    host: { hostname: 'testhost', os: 'linux 6.8', cpus: 16, node: 'v20.20.2' },
    backend: { name: 'cpu', device: 'cpu', gpu: null, why: 'no GPU backend on this host' },
    phases: [
      phase('standalone:hp', [task('hp', { priority: 10, n: 500, p50: 0.412, p99: 1.21, ci: [1.1, 1.35], thr: 50, sloPass: true })]),
      phase('standalone:lp', [task('lp', { priority: 0, n: 2000, p50: 30.2, p99: 41, ci: [39.8, 44], thr: 200 })]),
      phase('corun:none', [
        task('hp', { priority: 10, n: 500, p50: 2.3, p99: 8.1, ci: [7.5, 9.0], thr: 50, share: 1, sloPass: false }),
        task('lp', { priority: 0, n: 1900, p50: 31, p99: 45, ci: [43, 47], thr: 190, share: 0.95 }),
      ]),
      phase(
        'corun:throttle',
        [
          task('hp', { priority: 10, n: 500, p50: 0.45, p99: 1.5, ci: [1.3, 1.7], thr: 50, share: 1, sloPass: true }),
          task('lp', { priority: 0, n: 1500, p50: 40, p99: 60, ci: [57, 63], thr: 150, share: 0.75 }),
        ],
        { notes: ['LP kept to 1 kernel in flight; held 1234 times'] },
      ),
      phase('corun:gate', [], {
        status: 'failed',
        reason: 'worker lp exited with code 1',
        stderrTail: ['Traceback (most recent call last):', '  File "model_worker.py", line 12', 'RuntimeError: CUDA error: out of memory'],
        utilisation: { value: null, source: 'unavailable', reason: 'phase failed' },
        fairness: null,
      }),
      phase('corun:xsched', [], {
        status: 'skipped',
        reason: 'xsched preload not found: /opt/xsched/lib/libshimcuda.so',
        utilisation: { value: null, source: 'unavailable', reason: 'phase skipped' },
        fairness: null,
      }),
    ],
    success: [
      {
        row: 'hp P99 < 5 ms',
        phases: [
          { phase: 'corun:none', value: 8.1, pass: false, detail: 'P99 8.1 ms (CI 7.5-9 ms, n=500)' },
          { phase: 'corun:throttle', value: 1.5, pass: true, detail: 'P99 1.5 ms (CI 1.3-1.7 ms, n=500)' },
        ],
        pass: true,
        best: 'corun:throttle',
      },
      {
        row: 'lp throughputShare > 90%',
        phases: [
          { phase: 'corun:none', value: 0.95, pass: true, detail: 'throughput 95% of standalone' },
          { phase: 'corun:throttle', value: 0.75, pass: false, detail: 'throughput 75% of standalone' },
        ],
        pass: true,
        best: 'corun:none',
      },
      { row: 'utilisation > 95%', phases: [], pass: null, best: null },
    ],
  };
}

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-report-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

// ------------------------------------------------------------------------------------ writes

describe('writeFileAtomic / writeJsonAtomic', () => {
  it('writes and replaces a file whole, leaving no temp file', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'w-'));
    const f = path.join(dir, 'results.json');
    writeJsonAtomic(f, { a: 1 });
    expect(fs.readFileSync(f, 'utf8')).toBe('{\n  "a": 1\n}\n');
    writeFileAtomic(f, new Uint8Array([104, 105]));
    expect(fs.readFileSync(f, 'utf8')).toBe('hi');
    expect(fs.readdirSync(dir)).toEqual(['results.json']);
  });

  it('into a missing directory: ENOENT naming the target', () => {
    const f = path.join(tmp, 'no-such-dir', 'x.json');
    let err: NodeJS.ErrnoException | undefined;
    try {
      writeFileAtomic(f, 'x');
    } catch (e) {
      err = e as NodeJS.ErrnoException;
    }
    expect(err?.code).toBe('ENOENT');
    expect(err?.path).toBe(f);
    expect(err?.message).toContain(f);
    expect(err?.message).not.toContain('\n');
    expect(fs.existsSync(path.dirname(f))).toBe(false);
  });

  it('a failed rename removes its temp file (target is a directory)', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'w-'));
    fs.mkdirSync(path.join(dir, 'taken'));
    expect(() => writeFileAtomic(path.join(dir, 'taken'), 'x')).toThrow(/cannot write .*taken/);
    expect(fs.readdirSync(dir)).toEqual(['taken']);
  });

  it('a symlink is never written through: refused (ELOOP, one line), the link and the file it points to unchanged', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'w-'));
    fs.mkdirSync(path.join(dir, 'real'));
    const real = path.join(dir, 'real', 'results.json');
    fs.writeFileSync(real, 'old');
    const link = path.join(dir, 'link.json');
    fs.symlinkSync(path.join('real', 'results.json'), link);
    expect(() => writeFileAtomic(link, 'new')).toThrow(expect.objectContaining({ code: 'ELOOP', path: link }));
    expect(() => writeFileAtomic(link, 'new')).toThrow(/^cannot write .*link\.json: it is a symbolic link \(to .*results\.json\)[^\n]*\(ELOOP\)$/);
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(real, 'utf8')).toBe('old');
    // a dangling link: nothing is created where it points
    const dangling = path.join(dir, 'dangling.json');
    fs.symlinkSync(path.join(dir, 'real', 'later.json'), dangling);
    expect(() => writeFileAtomic(dangling, 'made')).toThrow(expect.objectContaining({ code: 'ELOOP' }));
    expect(fs.existsSync(path.join(dir, 'real', 'later.json'))).toBe(false);
    expect(fs.readdirSync(dir).sort()).toEqual(['dangling.json', 'link.json', 'real']);
    expect(fs.readdirSync(path.join(dir, 'real'))).toEqual(['results.json']);
  });

  /**
   * A character device to write to: a fresh node in a temp directory where mknod works (root, a
   * file system without nodev), so a regression replaces that node and not the host's /dev/null.
   */
  const charDevice = (name: 'null' | 'full'): string | null => {
    const real = `/dev/${name}`;
    if (!fs.existsSync(real)) return null;
    const node = path.join(fs.mkdtempSync(path.join(tmp, 'dev-')), name);
    if (spawnSync('mknod', [node, 'c', '1', name === 'null' ? '3' : '7']).status === 0) {
      try {
        fs.closeSync(fs.openSync(node, 'w'));
        return node;
      } catch {
        // nodev mount: fall back to the host's node
      }
    }
    return real;
  };

  it('a character device is written in place, never replaced by a file', () => {
    const dev = charDevice('null');
    if (!dev) return;
    writeFileAtomic(dev, 'x');
    writeJsonAtomic(dev, { a: 1 });
    expect(fs.lstatSync(dev).isCharacterDevice()).toBe(true);
    expect(fs.readdirSync(path.dirname(dev)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('/dev/full: ENOSPC, one line naming the target, and it stays a device', () => {
    const dev = charDevice('full');
    if (!dev) return;
    let err: NodeJS.ErrnoException | undefined;
    try {
      writeFileAtomic(dev, 'x');
    } catch (e) {
      err = e as NodeJS.ErrnoException;
    }
    expect(err?.code).toBe('ENOSPC');
    expect(err?.path).toBe(dev);
    expect(err?.message).toBe(`cannot write ${dev}: no space left on device (ENOSPC)`);
    expect(fs.lstatSync(dev).isCharacterDevice()).toBe(true);
  });

  it('a FIFO is written to, not replaced', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'w-'));
    const fifo = path.join(dir, 'fifo');
    if (spawnSync('mkfifo', [fifo]).status !== 0) return;
    const reader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'ignore'] });
    let got = '';
    reader.stdout.on('data', (d) => (got += d));
    // 'close': cat exited and its output was read to the end (no race against a timer: on a busy
    // host cat may take seconds; a writer that never closed the FIFO would hit the test timeout)
    const closed = new Promise((r) => reader.on('close', r));
    try {
      writeFileAtomic(fifo, 'through the pipe');
      await closed;
    } finally {
      reader.kill('SIGKILL');
    }
    expect(got).toBe('through the pipe');
    expect(fs.lstatSync(fifo).isFIFO()).toBe(true);
    expect(fs.readdirSync(dir)).toEqual(['fifo']);
  });
});

// ------------------------------------------------------------------------------------ charts

describe('charts', () => {
  it('sloBounds reads percentile SLOs from the parsed config (below in ns)', () => {
    expect(sloBounds(makeResults())).toEqual({ hp: { percentile: 99, belowMs: 5 } });
    expect(sloBounds({ ...makeResults(), scenario: { ...makeResults().scenario, config: null } })).toEqual({});
  });

  it("a CDF's subtitle names what was left out of that task's chart", () => {
    const r = makeResults();
    Object.assign(r.phases[1], { status: 'failed', reason: 'lp crashed', tasks: [] });
    const subtitle = (name: string): unknown => {
      const t = chartSpecs(r).find((c) => c.name === name)?.spec?.title;
      return typeof t === 'object' && t !== null && 'subtitle' in t ? t.subtitle : undefined;
    };
    expect(subtitle('latency-cdf-lp')).toContain('left out: standalone:lp (failed); corun:gate (failed); corun:xsched (skipped)');
    expect(subtitle('latency-cdf-hp')).toContain('left out: corun:gate (failed); corun:xsched (skipped)');
  });

  it('renders every chart to SVG and PNG', async () => {
    const out = path.join(tmp, 'run1');
    const charts = await renderCharts(makeResults(), out);
    expect(charts.map((c) => c.name)).toEqual(['latency-cdf-hp', 'latency-cdf-lp', 'p99-by-mechanism', 'throughput-share']);
    for (const c of charts) {
      expect(c.error).toBeUndefined();
      expect(c.svg).toBe(path.join(out, 'charts', `${c.name}.svg`));
      const svg = fs.readFileSync(c.svg, 'utf8');
      expect(svg.startsWith('<svg')).toBe(true);
      expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
      expect(c.png).toBe(path.join(out, 'charts', `${c.name}.png`));
      expect(fs.readFileSync(c.png!).subarray(0, 8).equals(PNG_MAGIC)).toBe(true);
    }
    const cdfHp = fs.readFileSync(charts[0].svg, 'utf8');
    expect(cdfHp).toContain('hp: latency CDF per phase');
    expect(cdfHp).toContain('corun:throttle');
    expect(cdfHp).toContain('left out: corun:gate (failed); corun:xsched (skipped)');
    expect(cdfHp).toContain('SLO: P99 &lt; 5 ms');
    const p99 = fs.readFileSync(charts[2].svg, 'utf8');
    expect(p99).toMatch(/>hp</);
    expect(p99).toMatch(/>lp</);
    expect(p99).not.toContain('>corun:gate<');
    // only the charts and nothing half-written
    expect(fs.readdirSync(path.join(out, 'charts')).sort()).toEqual(charts.flatMap((c) => [`${c.name}.png`, `${c.name}.svg`]).sort());
  });

  it('png: false writes SVGs only', async () => {
    const out = path.join(tmp, 'run-svg-only');
    const charts = await renderCharts(makeResults(), out, { png: false });
    expect(charts.every((c) => c.png === undefined && !c.error)).toBe(true);
    expect(fs.readdirSync(path.join(out, 'charts')).every((f) => f.endsWith('.svg'))).toBe(true);
  });

  it('a chart that fails is reported; the others are still written', async () => {
    const out = path.join(tmp, 'run-bad');
    const good: TopLevelSpec = { data: { values: [{ x: 'a', y: 1 }] }, mark: 'bar', encoding: { x: { field: 'x', type: 'nominal' }, y: { field: 'y', type: 'quantitative' } } };
    const bad = { data: { values: [] }, mark: 'no-such-mark' } as unknown as TopLevelSpec;
    const charts = await renderSpecs(
      [
        { name: 'bad', spec: bad },
        { name: 'good', spec: good },
        { name: 'empty', empty: 'no data' },
      ],
      out,
    );
    const [b, g, e] = charts;
    expect(b.error).toMatch(/^vega-lite compile: ./);
    expect(b.error).not.toContain('\n');
    expect(b.svg).toBe('');
    expect(g.error).toBeUndefined();
    expect(fs.readFileSync(g.svg, 'utf8').startsWith('<svg')).toBe(true);
    expect(e).toEqual({ name: 'empty', svg: '', error: 'no data' });
    expect(fs.readdirSync(path.join(out, 'charts')).sort()).toEqual(['good.png', 'good.svg']);
  });

  it('leaves out non-finite points and says so when a task has nothing to draw', async () => {
    const r = makeResults();
    for (const p of r.phases) for (const t of p.tasks) if (t.name === 'lp') t.cdf = t.cdf.map(([, f]) => [Number.NaN, f]);
    const charts = await renderCharts(r, path.join(tmp, 'run-nan'), { png: false });
    const lp = charts.find((c) => c.name === 'latency-cdf-lp')!;
    expect(lp.error).toBe('no latency samples for lp in any phase');
    expect(charts.filter((c) => c.error)).toHaveLength(1);
  });

  it('resvg renders a PNG without any font (text left out), as on a font-less host', async () => {
    const { createRequire } = await import('node:module');
    const { Resvg } = createRequire(import.meta.url)('@resvg/resvg-js') as typeof import('@resvg/resvg-js');
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="40"><rect width="100" height="40" fill="white"/><text x="5" y="25">hp</text></svg>';
    const png = new Resvg(svg, { font: { loadSystemFonts: false }, fitTo: { mode: 'width', value: 200 }, logLevel: 'off' }).render().asPng();
    expect(Buffer.from(png).subarray(0, 8).equals(PNG_MAGIC)).toBe(true);
  });
});

// ------------------------------------------------------------------------------------ markdown

describe('renderMarkdown', () => {
  const charts: ChartFile[] = [
    { name: 'latency-cdf-hp', svg: '/x/charts/latency-cdf-hp.svg', png: '/x/charts/latency-cdf-hp.png' },
    { name: 'throughput-share', svg: '', error: 'no co-run phase has throughput shares' },
  ];
  const md = renderMarkdown(makeResults(), charts);

  it('says what ran', () => {
    expect(md).toMatch(/^# gpucolo report: hp-lp\n/);
    expect(md).toContain('Scenario **hp-lp** (`examples/hp-lp.yaml`) in **probe** form on backend **cpu** (cpu): no GPU backend on this host.');
    expect(md).toContain('Host testhost (linux 6.8, 16 CPUs, Node v20.20.2); 2025-01-02T03:04:05.000Z; gpucolo 0.1.0');
    expect(md).not.toContain('PARTIAL');
  });

  it('has the success table with PASS/FAIL/n.a.', () => {
    expect(md).toContain('| row | best phase | value | verdict | per phase |');
    expect(md).toContain('| hp P99 < 5 ms | corun:throttle | P99 1.5 ms (CI 1.3-1.7 ms, n=500) | PASS | corun:none FAIL, corun:throttle PASS |');
    expect(md).toContain('| utilisation > 95% | - | - | n.a. | no co-run phase to judge |');
  });

  it('has per-phase tables with CIs, parentheses for unsupported percentiles, shares, misses and SLOs', () => {
    expect(md).toContain('### corun:none');
    expect(md).toContain('| task | priority | n | P50 | P90 | P99 [CI] | P99.9 | max | throughput/s | share of standalone | slowdown P99 | deadline misses | SLO verdicts |');
    // hp: n=500 cannot support P99.9
    expect(md).toContain('| hp | 10 | 500 | 2.3 | 3.45 | 8.1 [7.5–9] | (10.5) | 12.1 | 50 | 100% | - | - | FAIL P99 < 5 ms |');
    expect(md).toContain('| lp | 0 | 1900 | 31 | 46.5 | 45 [43–47] | 58.5 | 67.5 | 190 | 95% | - | 3/1900 (0.158%) | PASS throughput >= 30% of standalone |');
    expect(md).toContain('Values in (parentheses): the sample is too small');
    expect(md).toContain("Utilisation: 87% (busy-time). Fairness (Jain's index over priority-weighted throughput shares): 0.93.");
    expect(md).toContain('- LP kept to 1 kernel in flight; held 1234 times');
  });

  it('lists failed and skipped phases with reason and stderr tail', () => {
    expect(md).toContain('### corun:gate: failed\n\nReason: worker lp exited with code 1');
    expect(md).toContain('```\nTraceback (most recent call last):\n  File "model_worker.py", line 12\nRuntimeError: CUDA error: out of memory\n```');
    expect(md).toContain('### corun:xsched: skipped\n\nReason: xsched preload not found');
    expect(md).not.toContain('### corun:gate\n');
  });

  it('links charts and reports the ones not drawn', () => {
    expect(md).toContain('![latency-cdf-hp](charts/latency-cdf-hp.svg)');
    expect(md).toContain('- throughput-share: not drawn: no co-run phase has throughput shares');
  });

  it('shows a PARTIAL banner when the run stopped early', () => {
    expect(renderMarkdown({ ...makeResults(), partial: true })).toContain('> **PARTIAL RESULTS**');
  });

  it('formats numbers with about three significant digits', () => {
    expect([0.41234, 12.345, 145.2, 12345, 0, null, Number.NaN].map(fmtNum)).toEqual(['0.412', '12.3', '145', '12345', '0', '-', '-']);
  });
});

describe('renderMarkdown: rounds, quality, censoring, sample sizes', () => {
  /** makeResults() as a run of 2 rounds with a noisy quality block and a censored P99 */
  function withRounds(): Results {
    const r = makeResults();
    r.rounds = 2;
    r.quality = {
      verdict: 'noisy',
      warnings: [{ code: 'host-interference', phase: 'corun:none', round: 2, message: 'round 2: corun:none: other processes used 1.20 of 2 cores during the measurement (load average 4)' }],
      unknown: [{ code: 'gpu-processes-unknown', message: 'other processes on an NVIDIA GPU: unknown' }],
    };
    const none = r.phases.find((p) => p.name === 'corun:none')!;
    const hp = none.tasks.find((t) => t.name === 'hp')!;
    hp.spread = { p99: { min: 7.9, median: 8.05, max: 8.2, n: 2 }, throughput: { min: 49, median: 50, max: 51, n: 2 } };
    hp.requests.censored = 6;
    hp.latencyMs = { ...hp.latencyMs, censored: 6, censoredAtOrAbove: ['p99', 'p999', 'max', 'mean'], ci99: null };
    none.rounds = [1, 2].map((round) => ({
      round,
      position: round === 1 ? 2 : 1,
      status: 'ok' as const,
      startedAt: '2025-01-02T03:04:05.000Z',
      measuredS: 5,
      host: { wallS: 5, cpus: 16, foreignCores: round === 2 ? 1.2 : 0.01, ownCores: 2, stealShare: 0, loadAverage1: 4 },
      tasks: [{ name: 'hp', requests: { issued: 250, completed: 247, censored: 3, errors: 0 }, n: 250, p50: 2.3, p99: 8, ci50: null, ci99: null, unsupported: ['p999'], censoredAtOrAbove: ['p99'], throughput: 50, throughputShare: 1, slowdownP99: 2, submitLagMs: null }],
    }));
    r.success[0].phases[0] = { phase: 'corun:none', value: 8.1, pass: null, detail: 'inconclusive: host-interference (round 2): round 2: corun:none: other processes used 1.20 of 2 cores; value: P99 8.1 ms' };
    r.success[2] = { ...r.success[2], pass: null, inconclusive: 'corun:none: host-interference: x' };
    return r;
  }
  const md = renderMarkdown(withRounds());

  it('opens with the quality block: verdict, every warning with its code, what could not be checked', () => {
    const q = md.indexOf('## Quality: **NOISY**');
    expect(q).toBeGreaterThan(0);
    expect(q).toBeLessThan(md.indexOf('## Success criteria'));
    expect(md).toContain('- `host-interference` (corun:none): round 2: corun:none: other processes used 1.20 of 2 cores during the measurement (load average 4)');
    expect(md).toContain('Not checked:\n- `gpu-processes-unknown`: other processes on an NVIDIA GPU: unknown');
    expect(renderMarkdown({ ...makeResults(), rounds: 2, quality: { verdict: 'ok', warnings: [] } })).toMatch(/## Quality: \*\*ok\*\*\n\nNo warning: /);
  });

  it('success rows on a flagged figure say inconclusive, with the reason', () => {
    expect(md).toContain('| hp P99 < 5 ms | corun:throttle | P99 1.5 ms (CI 1.3-1.7 ms, n=500) | PASS | corun:none inconclusive, corun:throttle PASS |');
    expect(md).toContain('| utilisation > 95% | - | - | inconclusive: corun:none: host-interference: x | no co-run phase to judge |');
    expect(md).toContain('Inconclusive:\n- hp P99 < 5 ms, corun:none: inconclusive: host-interference (round 2)');
  });

  it('pooled figures with the rounds\' spread, >= for censored lower bounds, and a table of the rounds with the host load', () => {
    expect(md).toContain('| task | priority | n | P50 | P90 | P99 [CI] | P99 rounds min / med / max | P99.9 | max | throughput/s | throughput rounds min / med / max | share of standalone |');
    expect(md).toContain('| hp | 10 | 500 (6 censored) | 2.3 | 3.45 | >=8.1 | 7.9 / 8.05 / 8.2 | (>=10.5) | >=12.1 | 50 | 49 / 50 / 51 | 100% |');
    expect(md).toContain('Values marked >=: lower bounds.');
    expect(md).toContain('| 2 | 2 | ok | 5 | hp: n 250 (3 censored), P50 2.3, P99 >=8, 50/s (100%) | others 1.2 of 16 cores, load 4 |');
  });

  it('says what a P99 without a CI is and how long to run for one', () => {
    expect(md).not.toContain('## Sample sizes'); // every task here has n >= 368
    const small = withRounds();
    small.phases[0].tasks[0].latencyMs.n = 105;
    // 105 requests in 10 s measured = 10.5/s; 368 over 2 rounds = 184 per round = 18 s
    expect(renderMarkdown(small)).toContain('## Sample sizes');
    expect(renderMarkdown(small)).toContain('- standalone:hp, hp: n=105: P99 is the 2nd largest value, no CI (a CI needs n >= 368); run --duration 18s (with 2 rounds) for 368 samples, or --min-samples 368.');
  });
});

// ------------------------------------------------------------------------------------ compare

function modified(): Results {
  const b = makeResults();
  b.createdAt = '2025-02-01T00:00:00.000Z';
  const none = b.phases.find((p) => p.name === 'corun:none')!;
  const hp = none.tasks.find((t) => t.name === 'hp')!;
  hp.latencyMs.p99 = 20;
  hp.latencyMs.ci99 = [18, 22]; // A: 7.5-9 -> no overlap
  const lp = none.tasks.find((t) => t.name === 'lp')!;
  lp.latencyMs.p99 = 46;
  lp.latencyMs.ci99 = [44, 48]; // A: 43-47 -> overlap
  b.phases = b.phases.filter((p) => p.name !== 'corun:throttle');
  b.phases.push(phase('corun:stream-priority', [task('hp', { priority: 10, n: 500, p50: 1, p99: 2, ci: [1.8, 2.2], thr: 50 })]));
  b.success[0] = { ...b.success[0], pass: false };
  return b;
}

describe('compareResults', () => {
  const c = compareResults(makeResults(), modified());

  it('matches phases and tasks by name and flags P99 changes beyond the CIs', () => {
    const row = (p: string, t: string) => c.rows.find((r) => r.phase === p && r.task === t)!;
    expect(row('corun:none', 'hp').p99).toMatchObject({ a: 8.1, b: 20, change: 'significant' });
    expect(row('corun:none', 'hp').p99.ratio).toBeCloseTo(20 / 8.1, 10);
    expect(row('corun:none', 'lp').p99.change).toBe('within noise');
    expect(row('standalone:hp', 'hp').p99.change).toBe('within noise');
    expect(row('standalone:hp', 'hp').p50).toEqual({ a: 0.412, b: 0.412, ratio: 1, unsupported: { a: false, b: false }, lowerBound: { a: false, b: false } });
    expect(row('standalone:hp', 'hp').p999.unsupported).toEqual({ a: true, b: true });
    expect(row('corun:none', 'lp').throughput.ratio).toBe(1);
  });

  it('lists phases only one file has, and success rows A vs B', () => {
    expect(c.missing).toEqual([
      { in: 'a', phase: 'corun:throttle' },
      { in: 'b', phase: 'corun:stream-priority' },
    ]);
    expect(c.success[0]).toEqual({ row: 'hp P99 < 5 ms', a: true, b: false });
    expect(c.lines).toContain('only in A: phase corun:throttle');
    expect(c.lines).toContain('  hp P99 < 5 ms: PASS -> FAIL  (changed)');
    expect(c.lines[0]).toMatch(/^P99: 1 significant change\(s\), \d+ within noise/);
    expect(c.table.rows.find((r) => r[0] === 'corun:none' && r[1] === 'hp' && r[2] === 'P99 ms')).toEqual([
      'corun:none',
      'hp',
      'P99 ms',
      '8.1',
      '20',
      '2.47x',
      'significant (CI 7.5-9 vs 18-22)',
    ]);
    // hp has 500 samples: P99.9 is shown in parentheses
    expect(c.table.rows.find((r) => r[0] === 'corun:none' && r[1] === 'hp' && r[2] === 'P99.9 ms')?.slice(3, 6)).toEqual(['(10.5)', '(10.5)', '1.00x']);
    expect(c.lines).toContain('(values): the sample is too small to support that percentile.');
  });

  it('says each run\'s quality and rounds, and marks censored lower bounds', () => {
    const a = makeResults();
    const b = modified();
    b.rounds = 2;
    b.quality = { verdict: 'noisy', warnings: [{ code: 'standalone-drift', message: 'x' }, { code: 'host-interference', message: 'y' }] };
    const hp = b.phases.find((p) => p.name === 'corun:none')!.tasks.find((t) => t.name === 'hp')!;
    hp.latencyMs.censoredAtOrAbove = ['p99', 'p999', 'max', 'mean'];
    const cmp = compareResults(a, b);
    expect(cmp.intro).toContain('quality: A not recorded, B noisy (standalone-drift, host-interference); rounds: A 1, B 2');
    expect(cmp.intro.at(-1)).toMatch(/^note: a noisy run's differences may be the host's/);
    expect(cmp.rows.find((r) => r.phase === 'corun:none' && r.task === 'hp')!.p99.lowerBound).toEqual({ a: false, b: true });
    expect(cmp.table.rows.find((r) => r[0] === 'corun:none' && r[1] === 'hp' && r[2] === 'P99 ms')![4]).toBe('>=20');
    expect(cmp.lines).toContain('>=values: lower bounds (requests unfinished when the phase stopped waiting are counted at their age then).');
    // files from before rounds and quality: no such line
    expect(compareResults(makeResults(), makeResults()).intro).toHaveLength(2);
  });

  it('lists tasks only one file has', () => {
    const b = makeResults();
    b.phases[2].tasks = b.phases[2].tasks.filter((t) => t.name !== 'lp');
    expect(compareResults(makeResults(), b).missing).toEqual([{ in: 'a', phase: 'corun:none', task: 'lp' }]);
  });
});

describe('loadResults', () => {
  const file = (name: string, text: string): string => {
    const f = path.join(tmp, name);
    fs.writeFileSync(f, text);
    return f;
  };
  const codeOf = (f: () => unknown): { code?: string; message: string } => {
    try {
      f();
    } catch (e) {
      return e as { code?: string; message: string };
    }
    throw new Error('did not throw');
  };

  it('reads a valid results.json', () => {
    const f = path.join(tmp, 'ok.json');
    writeJsonAtomic(f, makeResults());
    expect(loadResults(f).scenario.name).toBe('hp-lp');
  });

  it('missing file: ENOENT naming the file', () => {
    const e = codeOf(() => loadResults(path.join(tmp, 'nope.json')));
    expect(e.code).toBe('ENOENT');
    expect(e.message).toBe(`cannot read ${path.join(tmp, 'nope.json')}: no such file`);
  });

  it('bad JSON: EBADRESULTS with the parse position', () => {
    const f = file('bad.json', '{"schema": "gpucolo.results/1",,}');
    const e = codeOf(() => loadResults(f));
    expect(e.code).toBe('EBADRESULTS');
    expect(e.message).toMatch(new RegExp(`^${f}: not JSON \\(.*position \\d+`));
    expect(e.message).not.toContain('\n');
  });

  it('another schema or a wrong shape: EBADRESULTS', () => {
    const e1 = codeOf(() => loadResults(file('queues.json', '{"schema":"gpucolo.queues/1"}')));
    expect(e1.code).toBe('EBADRESULTS');
    expect(e1.message).toContain('not a gpucolo results file (schema "gpucolo.queues/1", expected "gpucolo.results/1")');
    const r = makeResults() as unknown as { phases: { tasks: unknown }[] };
    r.phases[0].tasks = 'none';
    const e2 = codeOf(() => loadResults(file('shape.json', JSON.stringify(r))));
    expect(e2.code).toBe('EBADRESULTS');
    expect(e2.message).toMatch(/shape\.json: bad results: phases\.0\.tasks: /);
  });
});

describe('compare command', () => {
  async function run(args: string[]): Promise<string> {
    let out = '';
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out += String(chunk);
      return true;
    });
    try {
      await compareCommand().parseAsync(['node', 'gpucolo-compare', ...args]);
    } finally {
      spy.mockRestore();
    }
    return out;
  }

  it('prints a table for two run directories, and JSON with --json', async () => {
    const a = fs.mkdtempSync(path.join(tmp, 'runA-'));
    const b = fs.mkdtempSync(path.join(tmp, 'runB-'));
    writeJsonAtomic(path.join(a, 'results.json'), makeResults());
    writeJsonAtomic(path.join(b, 'results.json'), modified());
    const text = await run([a, path.join(b, 'results.json')]);
    expect(text).toContain(`A: ${path.join(a, 'results.json')} (hp-lp, probe on cpu, testhost, 2025-01-02T03:04:05.000Z)`);
    expect(text).toMatch(/\ncorun:none +hp +P99 ms +8\.1 +20 +2\.47x +significant \(CI 7\.5-9 vs 18-22\)\n/);
    expect(text).toContain('only in B: phase corun:stream-priority');
    const json = JSON.parse(await run([a, b, '--json']));
    expect(json.schema).toBe('gpucolo.compare/1');
    expect(json.rows.find((r: { phase: string; task: string }) => r.phase === 'corun:none' && r.task === 'hp').p99.change).toBe('significant');
  });

  it('a bad file is a CliError with exit code 1 and one line', async () => {
    const a = path.join(tmp, 'ok.json');
    writeJsonAtomic(a, makeResults());
    const err = await run([a, path.join(tmp, 'missing-run')]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).exitCode).toBe(1);
    expect((err as CliError).message).toBe(`cannot read ${path.join(tmp, 'missing-run')}: no such file`);
  });
});
