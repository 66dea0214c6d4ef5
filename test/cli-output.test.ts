/**
 * Outputs (issue 17, items 11 and 12): no writer writes through a symlink onto its target, and a
 * failed write to stdout (disk full, closed pipe) is exit 1 with one line for every command.
 *
 * Safety: the host's /dev/stdout is never named here. A regression that replaced links would
 * replace it (gpucolo runs as root in CI); links to this process's descriptors are made in temp
 * directories instead.
 */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { OutputSymlinkError, planOutput, writeFileAtomic } from '../src/write.js';
import { TraceRecorder } from '../src/trace/recorder.js';
import { openJournal } from '../src/runners/staged/journal.js';
import { ROOT } from './helpers/impls.js';
import { KfdTree } from './helpers/kfd-tree.js';
import { footer, header, records, writeJsonl } from './helpers/trace-build.js';

const CLI = path.join(ROOT, 'dist/cli/cli.js');
const EXAMPLE_ROOT = path.join(ROOT, 'examples/kfd-mi300x');
const PIPELINE = path.join(ROOT, 'examples/pipelines/edit-and-score/pipeline.yaml');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-output-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const trees: KfdTree[] = [];
afterEach(() => {
  while (trees.length) trees.pop()!.dispose();
});

let seq = 0;
/** A fresh directory with a file outside it that must never change, and links of every kind to it. */
function setup(): { dir: string; outside: string; link: string; dangling: string; content: string } {
  const base = path.join(tmp, `s${++seq}`);
  const dir = path.join(base, 'out');
  const secret = path.join(base, 'secret');
  fs.mkdirSync(dir, { recursive: true });
  fs.mkdirSync(secret);
  const outside = path.join(secret, 'passwd');
  const content = 'root:x:0:0::/root:/bin/sh\n';
  fs.writeFileSync(outside, content);
  const link = path.join(dir, 'report');
  fs.symlinkSync(outside, link);
  const dangling = path.join(dir, 'planted');
  fs.symlinkSync(path.join(secret, 'created-by-gpucolo'), dangling);
  return { dir, outside, link, dangling, content };
}

function unchanged(s: ReturnType<typeof setup>): void {
  expect(fs.readFileSync(s.outside, 'utf8')).toBe(s.content);
  expect(fs.lstatSync(s.link).isSymbolicLink()).toBe(true);
  expect(fs.readlinkSync(s.link)).toBe(s.outside);
  expect(fs.lstatSync(s.dangling).isSymbolicLink()).toBe(true);
  expect(fs.readdirSync(path.dirname(s.outside))).toEqual(['passwd']);
  // no temp file left next to the links
  expect(fs.readdirSync(s.dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
}

const oneLine = (r: { stderr: string }): string[] => r.stderr.trimEnd().split('\n');

function traceFile(): string {
  return writeJsonl(records(header(), [], [], footer(100e6)), { dir: fs.mkdtempSync(path.join(tmp, 'trace-')) });
}

// ------------------------------------------------------------------------------------ symlinks

describe('no writer writes through a symlink', () => {
  it('the staged journal: a journal.jsonl that is a symlink is refused, its target untouched', () => {
    const d = fs.mkdtempSync(path.join(tmp, 'journal-'));
    const target = path.join(d, 'precious.txt');
    fs.writeFileSync(target, 'keep me\n');
    const file = path.join(d, 'journal.jsonl');
    fs.symlinkSync(target, file);
    expect(() => openJournal(file)).toThrow(/symbolic link.*\(ELOOP\)/);
    expect(fs.readFileSync(target, 'utf8')).toBe('keep me\n');
    expect(fs.lstatSync(file).isSymbolicLink()).toBe(true);
  });

  it('writeFileAtomic refuses a link to a file outside and a dangling link: ELOOP, one line, nothing changed', () => {
    const s = setup();
    for (const name of [s.link, s.dangling]) {
      let err: unknown;
      try {
        writeFileAtomic(name, 'pwned\n');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(OutputSymlinkError);
      expect(err).toMatchObject({ code: 'ELOOP', path: name });
      expect((err as Error).message).not.toMatch(/\n/);
      expect((err as Error).message).toMatch(/^cannot write .*: it is a symbolic link \(to .*secret/);
    }
    unchanged(s);
    // the file itself, named directly, is written (atomically) as asked
    writeFileAtomic(s.outside, 'asked for\n');
    expect(fs.readFileSync(s.outside, 'utf8')).toBe('asked for\n');
  });

  it('a link to one of our own descriptors is written to that descriptor (like /dev/stdout), nothing replaced', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'fd-'));
    const file = path.join(dir, 'redirected');
    fs.writeFileSync(file, 'kept: ');
    const fd = fs.openSync(file, 'a');
    try {
      const link = path.join(dir, 'stdout-like');
      fs.symlinkSync(`/proc/self/fd/${fd}`, link);
      expect(planOutput(link)).toEqual({ kind: 'fd', fd, borrowed: true });
      writeFileAtomic(link, 'through the fd\n');
      writeFileAtomic(`/proc/self/fd/${fd}`, 'and again\n');
      // the descriptor is still ours and open; the link is still a link
      expect(fs.fstatSync(fd).isFile()).toBe(true);
      expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
      expect(fs.readFileSync(file, 'utf8')).toBe('kept: through the fd\nand again\n');
      const rec = new TraceRecorder(link);
      rec.write({ kind: 'footer', t_ns: 0, samples: 0, events: 0, missedIntervals: 0, endedBy: 'duration' });
      rec.close();
      expect(fs.fstatSync(fd).isFile()).toBe(true); // not closed by the recorder
      expect(fs.readFileSync(file, 'utf8')).toMatch(/and again\n\{"kind":"footer"/);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('a link to a descriptor of another process is refused', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'fd-'));
    const victim = path.join(dir, 'victim');
    fs.writeFileSync(victim, 'theirs\n');
    // another process holding a file open: /proc/<pid>/fd/N would reopen that file with our rights
    const vfd = fs.openSync(victim, 'r');
    const other = spawn('sleep', ['600'], { stdio: ['ignore', vfd, 'ignore'] });
    fs.closeSync(vfd);
    try {
      await new Promise((r) => other.once('spawn', r));
      for (const [name, to] of [
        ['other', `/proc/${other.pid}/fd/1`],
        ['init', '/proc/1/fd/1'],
      ]) {
        const link = path.join(dir, name);
        fs.symlinkSync(to, link);
        expect(() => planOutput(link)).toThrow(OutputSymlinkError);
        expect(() => writeFileAtomic(link, 'x')).toThrow(expect.objectContaining({ code: 'ELOOP' }));
      }
      expect(fs.readFileSync(victim, 'utf8')).toBe('theirs\n');
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('a link to a FIFO is written through; a link to a character device is refused', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'fifo-'));
    const fifo = path.join(dir, 'fifo');
    if (spawnSync('mkfifo', [fifo]).status !== 0) return;
    const link = path.join(dir, 'to-fifo');
    fs.symlinkSync(fifo, link);
    const reader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'ignore'] });
    let got = '';
    reader.stdout.on('data', (d) => (got += d));
    const closed = new Promise((r) => reader.on('close', r));
    try {
      writeFileAtomic(link, 'through the pipe');
      await closed;
    } finally {
      reader.kill('SIGKILL');
    }
    expect(got).toBe('through the pipe');
    expect(fs.lstatSync(fifo).isFIFO()).toBe(true);
    const dev = path.join(dir, 'to-null');
    fs.symlinkSync('/dev/null', dev);
    expect(() => writeFileAtomic(dev, 'x')).toThrow(OutputSymlinkError);
    expect(fs.lstatSync('/dev/null').isCharacterDevice()).toBe(true);
  });

  const cli = (args: string[], opts: { cwd?: string } = {}): SpawnSyncReturns<string> => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000, cwd: opts.cwd });

  it('analyze --md: exit 1, one line naming the link, the target unchanged', () => {
    const s = setup();
    const input = traceFile();
    for (const name of [s.link, s.dangling]) {
      const r = cli(['analyze', input, '--md', name]);
      expect(r.status).toBe(1);
      expect(oneLine(r)).toEqual([expect.stringMatching(new RegExp(`^gpucolo: cannot write ${name}: it is a symbolic link .*\\(ELOOP\\)$`))]);
    }
    unchanged(s);
  });

  it('export -o: exit 1, one line, the target unchanged', () => {
    const s = setup();
    const input = traceFile();
    for (const name of [s.link, s.dangling]) {
      const r = cli(['export', '--perfetto', input, '-o', name]);
      expect(r.status).toBe(1);
      expect(r.stdout).toBe('');
      expect(oneLine(r)).toEqual([expect.stringMatching(/^gpucolo: cannot write .*: it is a symbolic link .*\(ELOOP\)$/)]);
    }
    unchanged(s);
  });

  it('trace --out: exit 1, one line, the target unchanged, nothing recorded or left behind', () => {
    const s = setup();
    const t = new KfdTree();
    trees.push(t);
    for (const name of [s.link, s.dangling]) {
      const r = cli(['trace', '--root', t.root, '--interval', '20ms', '--duration', '100ms', '--out', name]);
      expect(r.status).toBe(1);
      expect(oneLine(r)).toEqual([expect.stringMatching(/^gpucolo: error: cannot write .*: it is a symbolic link .*\(ELOOP\)$/)]);
    }
    unchanged(s);
    expect(fs.readdirSync(s.dir).sort()).toEqual(['planted', 'report']);
  });

  it('trace --out through a link to its own stdout: the trace arrives on stdout', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'fd-'));
    const link = path.join(dir, 'stdout');
    fs.symlinkSync('/proc/self/fd/1', link);
    const t = new KfdTree();
    trees.push(t);
    const r = cli(['trace', '--root', t.root, '--interval', '20ms', '--duration', '100ms', '--out', link]);
    expect(r.status, r.stderr).toBe(0);
    const recs = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { kind: string });
    expect(recs[0].kind).toBe('header');
    expect(recs.at(-1)!.kind).toBe('footer');
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
  });

  it('cleanup --registry naming a link to something that is no registry: one line, exit 2, nothing changed', () => {
    const s = setup();
    const r = cli(['cleanup', '--registry', s.link]);
    // not a registry: refused before anything is written, one line
    expect(r.status).toBe(2);
    expect(oneLine(r)).toHaveLength(1);
    unchanged(s);
  });
});

// ------------------------------------------------------------------------------------ stdout

describe('a failed write to stdout is exit 1 with one line, for every command', () => {
  const resultsJson = (): string => {
    const f = path.join(fs.mkdtempSync(path.join(tmp, 'res-')), 'results.json');
    const lat = { n: 100, p50: 1, p99: 2, p999: 3, ci99: [1.5, 2.5], unsupported: [] };
    fs.writeFileSync(
      f,
      JSON.stringify({
        schema: 'gpucolo.results/1',
        gpucoloVersion: '0',
        createdAt: '2025-01-01T00:00:00Z',
        partial: false,
        scenario: { name: 'x', form: 'probe' },
        host: { hostname: 'h' },
        backend: { name: 'cpu' },
        phases: [{ name: 'standalone:hp', status: 'ok', tasks: [{ name: 'hp', throughput: 50, latencyMs: lat }] }],
        success: [],
      }),
    );
    return f;
  };
  const commands = (): [string, string[]][] => {
    const res = resultsJson();
    return [
      ['queues', ['queues', '--root', EXAMPLE_ROOT]],
      ['queues --json', ['queues', '--root', EXAMPLE_ROOT, '--json']],
      ['analyze', ['analyze', traceFile()]],
      ['analyze --json', ['analyze', traceFile(), '--json']],
      ['staged plan', ['staged', 'plan', PIPELINE]],
      ['compare', ['compare', res, res]],
      ['export', ['export', '--perfetto', traceFile(), '-o', path.join(fs.mkdtempSync(path.join(tmp, 'exp-')), 'p.json')]],
      ['cleanup --dry-run', ['cleanup', '--dry-run']],
      ['--help', ['--help']],
      ['--version', ['--version']],
    ];
  };
  const env = (): NodeJS.ProcessEnv => ({ ...process.env, XDG_RUNTIME_DIR: fs.mkdtempSync(path.join(tmp, 'xdg-')) });

  it('each runs fine with a working stdout (the baseline)', () => {
    for (const [what, args] of commands()) {
      const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000, env: env() });
      expect([what, r.status, r.stderr]).toEqual([what, 0, '']);
      expect(r.stdout.length, what).toBeGreaterThan(0);
    }
  });

  it('stdout on /dev/full (disk full): exit 1, one line on stderr', () => {
    if (!fs.existsSync('/dev/full')) return;
    for (const [what, args] of commands()) {
      const full = fs.openSync('/dev/full', 'w');
      let r: SpawnSyncReturns<string>;
      try {
        r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', full, 'pipe'], env: env() });
      } finally {
        fs.closeSync(full);
      }
      expect([what, r.status]).toEqual([what, 1]);
      expect(oneLine(r), what).toEqual(['gpucolo: cannot write to stdout: no space left on device (ENOSPC)']);
    }
  });

  it('a reader that closed the pipe: exit 1, one line on stderr', async () => {
    for (const [what, args] of commands()) {
      const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: env() });
      // the read end is closed before the child can write anything (it is still starting Node)
      child.stdout.destroy();
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
      expect([what, code]).toEqual([what, 1]);
      expect(err.trimEnd().split('\n'), what).toEqual(['gpucolo: cannot write to stdout: the reader closed the pipe (EPIPE)']);
    }
  });

  it("a command's own failure stays on the one line, with its exit status", () => {
    if (!fs.existsSync('/dev/full')) return;
    const full = fs.openSync('/dev/full', 'w');
    try {
      // queues on a tree without KFD prints its table, then fails (exit 1): both on one line
      const empty = fs.mkdtempSync(path.join(tmp, 'empty-'));
      const q = spawnSync(process.execPath, [CLI, 'queues', '--root', empty], { encoding: 'utf8', stdio: ['ignore', full, 'pipe'] });
      expect(q.status).toBe(1);
      expect(oneLine(q)).toEqual([expect.stringMatching(/^gpucolo: cannot write to stdout: no space left on device \(ENOSPC\); no KFD data readable: /)]);
      // cleanup --registry of a file that is not a registry: exit 2, nothing on stdout, its own line only
      const bad = path.join(tmp, 'not-a-registry.json');
      fs.writeFileSync(bad, '{}');
      const r = spawnSync(process.execPath, [CLI, 'cleanup', '--registry', bad], { encoding: 'utf8', stdio: ['ignore', full, 'pipe'] });
      expect(r.status).toBe(2);
      expect(oneLine(r)).toEqual([expect.stringMatching(/^gpucolo: .*not-a-registry\.json: not a gpucolo\.runs\/1 run registry$/)]);
    } finally {
      fs.closeSync(full);
    }
  });
});
