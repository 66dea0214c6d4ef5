/**
 * Issue 17 item 7: only regular files are read as inputs, each kind with a size cap. A FIFO,
 * /dev/zero, /dev/urandom, a directory, a symlink loop or an oversize file given as a file is one
 * line and exit 2, never a hang or a read that eats memory; inside a recorded tree it is an issue
 * (both parser implementations word it the same). No test here measures time: a hang would trip
 * the spawn timeout or the test timeout (hang guards, not speed limits).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { INPUT_LIMITS, InputFileError, isBadInput, openInputFile, readInputFile, readInputTail, readInputText } from '../src/input-file.js';
import { loadScenario } from '../src/scenario/load.js';
import { loadExperiment, loadModels } from '../src/runners/experiment/config.js';
import { loadPipeline } from '../src/runners/staged/schema.js';
import { loadItems } from '../src/runners/staged/items.js';
import { openJournal } from '../src/runners/staged/journal.js';
import { loadResults } from '../src/report/compare.js';
import { loadTrace } from '../src/trace/read.js';
import { snapshot } from '../src/kfd/snapshot.js';
import { readKfdProcsRaw, readTopologyRaw } from '../src/kfd/parse.js';
import { readProcStatus } from '../src/procfs.js';
import { startSampler, type RawSample } from '../src/trace/sampler.js';
import { HANG_MS } from './helpers/load.js';
import { IMPLS, ROOT } from './helpers/impls.js';
import { copyTree } from './helpers/tree.js';

const EXAMPLE = path.join(ROOT, 'examples/kfd-mi300x');
const MiB = 1024 * 1024;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-inputs-'));
  dirs.push(d);
  return d;
}

function mkfifo(p: string): void {
  const r = spawnSync('mkfifo', [p]);
  if (r.status !== 0) throw new Error(`mkfifo ${p} failed: ${r.stderr}`);
}

/** A directory with every kind of bad input: fifo, loop (two links to each other), dir, and a sparse file of `size` bytes. */
function hostile(bigBytes: number): { dir: string; fifo: string; loop: string; sub: string; big: string } {
  const dir = tmp();
  const fifo = path.join(dir, 'fifo.yaml');
  mkfifo(fifo);
  fs.symlinkSync('loop-b.yaml', path.join(dir, 'loop-a.yaml'));
  fs.symlinkSync('loop-a.yaml', path.join(dir, 'loop-b.yaml'));
  const sub = path.join(dir, 'a-dir.yaml');
  fs.mkdirSync(sub);
  const big = path.join(dir, 'big.yaml');
  fs.writeFileSync(big, '');
  fs.truncateSync(big, bigBytes); // sparse: no disk used
  return { dir, fifo, loop: path.join(dir, 'loop-a.yaml'), sub, big };
}

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('did not throw');
}

/** The command line from the sources (tsx), as a user runs it. */
function cli(args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/cli.ts'), ...args], {
    encoding: 'utf8',
    cwd,
    env: { ...process.env, ...env },
    timeout: HANG_MS,
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** One line on stderr, exit 2, naming the file. */
function expectUsageLine(r: ReturnType<typeof cli>, file: string, what: RegExp): void {
  expect(r.signal, r.stderr).toBeNull();
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
  expect(r.stderr).toContain(file);
  expect(r.stderr).toMatch(what);
}

describe('readInputFile: only regular files, within the cap', () => {
  const h = hostile(INPUT_LIMITS.config.maxBytes + 1);

  it('refuses a FIFO, /dev/zero, /dev/urandom (ENOTREG), a directory (EISDIR), a symlink loop (ELOOP), an oversize file (EFBIG)', () => {
    const cases: [string, string, RegExp][] = [
      [h.fifo, 'ENOTREG', /a FIFO, not a regular file/],
      ['/dev/zero', 'ENOTREG', /a character device, not a regular file/],
      ['/dev/urandom', 'ENOTREG', /a character device, not a regular file/],
      [h.sub, 'EISDIR', /a directory/],
      [h.loop, 'ELOOP', /symbolic links/],
      [h.big, 'EFBIG', /4 MiB limit for config files/],
      [path.join(h.dir, 'none'), 'ENOENT', /no such file/],
    ];
    for (const [p, c, words] of cases) {
      const err = thrown(() => readInputFile(p, { kind: 'config', what: 'scenario' }));
      expect(err, p).toBeInstanceOf(InputFileError);
      expect((err as InputFileError).code, p).toBe(c);
      expect(err.message, p).toContain(`cannot read scenario ${p}: `);
      expect(err.message, p).toMatch(words);
      expect(err.message.includes('\n'), p).toBe(false);
      expect(isBadInput(err)).toBe(true);
    }
  });

  it('reads pseudo-files to EOF whatever stat says (0 for /proc), and holds the cap on the bytes read', () => {
    expect(fs.statSync('/proc/self/status').size).toBe(0);
    expect(readInputText('/proc/self/status', { kind: 'sysfs' })).toMatch(/^Name:/);
    // stat says 0, the content is more than 64 bytes: the cap is enforced while reading
    expect(code(() => readInputFile('/proc/self/status', { kind: 'sysfs', maxBytes: 64 }))).toBe('EFBIG');
    const d = tmp();
    fs.writeFileSync(path.join(d, 'exact'), 'x'.repeat(100));
    expect(readInputFile(path.join(d, 'exact'), { kind: 'config', maxBytes: 100 }).length).toBe(100);
    expect(code(() => readInputFile(path.join(d, 'exact'), { kind: 'config', maxBytes: 99 }))).toBe('EFBIG');
    fs.writeFileSync(path.join(d, 'empty'), '');
    expect(readInputFile(path.join(d, 'empty'), { kind: 'config' }).length).toBe(0);
  });

  it('readInputTail: the last maxBytes of a longer file, the whole of a shorter one; still only regular files', () => {
    const d = tmp();
    const f = path.join(d, 'log');
    fs.writeFileSync(f, `${'a'.repeat(1000)}END`);
    expect(readInputTail(f, { kind: 'log', maxBytes: 10 })).toEqual({ buf: Buffer.from('aaaaaaaEND'), truncated: true });
    expect(readInputTail(f, { kind: 'log' }).truncated).toBe(false);
    expect(code(() => readInputTail('/dev/zero', { kind: 'log' }))).toBe('ENOTREG');
  });

  it('openInputFile (traces): a FIFO is refused without waiting for a writer', async () => {
    await expect(openInputFile(h.fifo, { kind: 'trace' })).rejects.toMatchObject({ code: 'ENOTREG' });
    await expect(openInputFile('/dev/urandom', { kind: 'trace' })).rejects.toMatchObject({ code: 'ENOTREG' });
    await expect(openInputFile(h.big, { kind: 'trace', maxBytes: 1024 })).rejects.toMatchObject({ code: 'EFBIG' });
    const ok = await openInputFile(h.big, { kind: 'trace' });
    expect(ok.size).toBe(INPUT_LIMITS.config.maxBytes + 1);
    await ok.fh.close();
  });
});

describe('every loader refuses them, naming the file', () => {
  const h = hostile(256 * MiB + 1);
  const bad = [h.fifo, '/dev/zero', '/dev/urandom', h.sub, h.loop, h.big];

  it('scenario, experiment, models, pipeline files', () => {
    for (const p of bad) {
      for (const load of [loadScenario, loadExperiment, loadModels, loadPipeline]) {
        const err = thrown(() => load(p));
        expect(['ENOTREG', 'EISDIR', 'ELOOP', 'EFBIG'], `${load.name} ${p}: ${err.message}`).toContain((err as { code?: string }).code);
        expect(err.message).toContain(p);
        expect(err.message).not.toMatch(/no scenario file or canned scenario/);
      }
    }
  });

  it('pipeline items, journals, results.json, traces', async () => {
    for (const p of bad) {
      const items = thrown(() => loadItems({ source: p }));
      if (p !== h.sub) expect(['ENOTREG', 'ELOOP', 'EFBIG'], items.message).toContain((items as { code?: string }).code);
      expect(['ENOTREG', 'EISDIR', 'ELOOP', 'EFBIG'], p).toContain(code(() => openJournal(p)));
      expect(['ENOTREG', 'EISDIR', 'ELOOP', 'EFBIG'], p).toContain(code(() => loadResults(p)));
      // (a directory is a dump directory for traces; 256 MiB is within the 4 GiB trace cap)
      if (p !== h.sub && p !== h.big) await expect(loadTrace(p), p).rejects.toMatchObject({ code: expect.stringMatching(/^(ENOTREG|ELOOP)$/) });
    }
    // a FIFO among the files of an items directory
    const d = tmp();
    fs.writeFileSync(path.join(d, 'a.jsonl'), '{"id": 1, "category": "x"}\n');
    mkfifo(path.join(d, 'b.jsonl'));
    expect(thrown(() => loadItems({ source: d })).message).toBe(`cannot read items ${path.join(d, 'b.jsonl')}: ENOTREG (a FIFO, not a regular file)`);
  });
});

describe('recorded KFD trees: a FIFO or device inside is an issue, not a hang (both implementations alike)', () => {
  const tree = copyTree(EXAMPLE, 'gpucolo-inputs-tree-');
  dirs.push(tree);
  const sys = path.join(tree, 'sys');
  const dbg = path.join(sys, 'kernel/debug');
  const nodes = path.join(sys, 'class/kfd/kfd/topology/nodes');
  const node = fs.readdirSync(nodes).find((n) => fs.existsSync(path.join(nodes, n, 'properties')) && fs.readFileSync(path.join(nodes, n, 'gpu_id'), 'utf8').trim() !== '0')!;
  const props = path.join(nodes, node, 'properties');
  fs.rmSync(props);
  mkfifo(props);
  const procDir = path.join(sys, 'class/kfd/kfd/proc');
  const pid = fs.readdirSync(procDir)[0];
  fs.rmSync(path.join(procDir, pid, 'pasid'));
  fs.symlinkSync('/dev/zero', path.join(procDir, pid, 'pasid'));
  fs.rmSync(path.join(dbg, 'kfd/hqds'));
  mkfifo(path.join(dbg, 'kfd/hqds'));
  fs.rmSync(path.join(dbg, 'kfd/rls'));
  fs.symlinkSync('/dev/urandom', path.join(dbg, 'kfd/rls'));
  fs.rmSync(path.join(tree, 'proc', pid, 'status'));
  mkfifo(path.join(tree, 'proc', pid, 'status'));

  it.each(IMPLS)('%s: sysfs readers report ENOTREG with the same words', (impl) => {
    const topo = readTopologyRaw(sys, impl);
    expect(topo.issues).toContainEqual({ path: props, severity: 'error', message: `cannot read ${props} (ENOTREG: not a regular file)`, code: 'ENOTREG' });
    const procs = readKfdProcsRaw(sys, impl);
    const pasid = path.join(procDir, pid, 'pasid');
    expect(procs.issues).toContainEqual({ path: pasid, severity: 'error', message: `cannot read ${pasid} (ENOTREG: not a regular file)`, code: 'ENOTREG' });
  });

  it('both implementations give the same issues on the tree', () => {
    if (IMPLS.length < 2) return;
    expect(readTopologyRaw(sys, 'native').issues).toEqual(readTopologyRaw(sys, 'ts').issues);
    expect(readKfdProcsRaw(sys, 'native').issues).toEqual(readKfdProcsRaw(sys, 'ts').issues);
  });

  it.each(IMPLS)('%s: a snapshot reports the FIFO hqds and the device rls as unreadable sources', (impl) => {
    const s = snapshot({ sysfsRoot: sys, debugfsRoot: dbg, procRoot: path.join(tree, 'proc'), impl });
    expect(s.sources.mqds.ok).toBe(true);
    expect(s.sources.hqds).toMatchObject({ ok: false, code: 'ENOTREG', error: `cannot read ${path.join(dbg, 'kfd/hqds')} (ENOTREG: not a regular file)` });
    expect(s.sources.rls).toMatchObject({ ok: false, code: 'ENOTREG' });
    expect(readProcStatus(path.join(tree, 'proc'), Number(pid))).toBeNull();
  });

  it.each(IMPLS)('%s sampler: the FIFO hqds is a read error in the sample, the same message', async (impl) => {
    const got: RawSample[] = [];
    const sp = startSampler({ sysfsRoot: sys, debugfsRoot: dbg, intervalNs: 5e6, debugfsEvery: 1, maxSamples: 1, impl }, (s) => void got.push(s));
    await sp.done;
    expect(got).toHaveLength(1);
    const f = path.join(dbg, 'kfd/hqds');
    expect(got[0].hqds).toEqual({ code: 'ENOTREG', message: `cannot read ${f} (ENOTREG: not a regular file)` });
    expect(got[0].rls).toMatchObject({ code: 'ENOTREG' });
  });

  it('queues --root on the tree: exit 0 with the issues, for both implementations', () => {
    for (const env of [{}, { GPUCOLO_NATIVE: '0' }]) {
      const r = cli(['queues', '--root', tree], env);
      expect(r.signal).toBeNull();
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`hqds: cannot read ${path.join(dbg, 'kfd/hqds')} (ENOTREG: not a regular file)`);
    }
  });
});

describe('the command line: one line, exit 2, nothing written', () => {
  const h = hostile(INPUT_LIMITS.config.maxBytes + 1);
  const bad: [string, RegExp][] = [
    [h.fifo, /ENOTREG \(a FIFO, not a regular file\)/],
    ['/dev/zero', /ENOTREG \(a character device/],
    ['/dev/urandom', /ENOTREG \(a character device/],
    [h.sub, /EISDIR \(a directory, not a scenario file\)/],
    [h.loop, /ELOOP/],
    [h.big, /EFBIG \(4\.0 MiB|EFBIG \(.*larger than the 4 MiB limit/],
  ];

  it('run <scenario>', () => {
    for (const [f, words] of bad) {
      const out = path.join(h.dir, 'run-out');
      expectUsageLine(cli(['run', f, '--out', out]), f, words);
      expect(fs.existsSync(out)).toBe(false);
    }
  });

  it('experiment <file> and --models <file>', () => {
    const d = tmp();
    fs.cpSync(path.join(ROOT, 'examples/experiments'), d, { recursive: true });
    const results = path.join(d, 'results');
    for (const [f] of bad) {
      expectUsageLine(cli(['experiment', f, '--results', results, '--dry-run']), f, /cannot read experiment file/);
      expectUsageLine(cli(['experiment', path.join(d, 'mutation-tiny.yaml'), '--models', f, '--results', results]), f, /cannot read models file/);
    }
    expect(fs.existsSync(results)).toBe(false);
  });

  it('staged plan <file>', () => {
    for (const [f] of bad) expectUsageLine(cli(['staged', 'plan', f]), f, /cannot read pipeline file/);
  });

  it('analyze and export take no FIFO or device as a trace; compare takes none as results', () => {
    for (const f of [h.fifo, '/dev/zero', '/dev/urandom', h.loop]) {
      expectUsageLine(cli(['analyze', f]), f, /ENOTREG|ELOOP/);
      const out = path.join(h.dir, 'perfetto.json');
      expectUsageLine(cli(['export', '--perfetto', f, '-o', out]), f, /ENOTREG|ELOOP/);
      expect(fs.existsSync(out)).toBe(false);
      expectUsageLine(cli(['compare', f, f]), f, /not a regular file|symbolic links/);
    }
  });
});
