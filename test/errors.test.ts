/**
 * One error class with a `.code` (issue #20, docs/errors.md): representative failure paths throw a
 * GpucoloError (or a TypeError/RangeError with Node's ERR_* code for a bad argument) with the
 * documented code, and no bare `new Error(` is left in src/ outside the allowed places.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { GpucoloError, invalidArg, oneLine, outOfRange } from '../src/errors.js';
import { CliError, cliCode } from '../src/cli/errors.js';
import { analyzeCommand } from '../src/cli/analyze.js';
import { queuesCommand } from '../src/cli/queues.js';
import { readRunRegistry, RegistryFormatError } from '../src/supervisor/registry.js';
import { isWriteError, OutputSymlinkError, writeFileAtomic } from '../src/write.js';
import { TraceRecorder, TraceWriteError } from '../src/trace/recorder.js';
import { parseListen } from '../src/trace/exporter.js';
import { loadResults } from '../src/report/compare.js';
import { planPipeline } from '../src/runners/staged/planner.js';
import { runSchedule } from '../src/scenario/rounds.js';
import { openRapl } from '../src/energy/rapl.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-errors-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** What `fn` throws (sync or async); fails the test when it returns. */
async function thrown(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw'); // test-side only: not gpucolo's
}

/** A gpucolo command run in-process the way main() runs it, stdout and stderr swallowed: what it threw. */
async function cliThrown(cmd: ReturnType<typeof queuesCommand>, args: string[]): Promise<unknown> {
  cmd.exitOverride();
  cmd.configureOutput({ writeErr: () => {}, writeOut: () => {} });
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    return await thrown(() => cmd.parseAsync(args, { from: 'user' }));
  } finally {
    out.mockRestore();
  }
}

function expectGpucolo(err: unknown, code: string): GpucoloError {
  expect(err).toBeInstanceOf(GpucoloError);
  expect((err as GpucoloError).code).toBe(code);
  // the CLI prints one line
  expect(oneLine(err)).not.toContain('\n');
  return err as GpucoloError;
}

describe('failure paths throw GpucoloError with the documented code', () => {
  it('bad CLI option: a --root that does not exist is a CliError, exit 2, code EBADUSAGE', async () => {
    const err = await cliThrown(queuesCommand(), ['--root', path.join(tmp, 'no-such-root')]);
    expect(err).toBeInstanceOf(CliError);
    expectGpucolo(err, 'EBADUSAGE');
    expect((err as CliError).exitCode).toBe(2);
    expect((err as CliError).message).toMatch(/^--root .*no-such-root: no such directory$/);
  });

  it('unreadable input file: a missing trace is exit 1 with the errno as code; a FIFO is refused, exit 2, ENOTREG', async () => {
    const missing = await cliThrown(analyzeCommand(), [path.join(tmp, 'missing.jsonl')]);
    expect(missing).toBeInstanceOf(CliError);
    expectGpucolo(missing, 'ENOENT');
    expect((missing as CliError).exitCode).toBe(1);
    const fifo = path.join(tmp, 'fifo.jsonl');
    execFileSync('mkfifo', [fifo]);
    const refused = await cliThrown(analyzeCommand(), [fifo]);
    expectGpucolo(refused, 'ENOTREG');
    expect((refused as CliError).exitCode).toBe(2);
    // the library call under it: the file is the error's path
    const lib = expectGpucolo(await thrown(() => loadResults(path.join(tmp, 'missing-results.json'))), 'ENOENT');
    expect(lib.path).toBe(path.join(tmp, 'missing-results.json'));
  });

  it('native core missing: requireNative throws ENONATIVE naming why and what to do', async () => {
    // a fresh module graph: the loader caches its answer per process (src/native.ts)
    vi.resetModules();
    const saved = process.env.GPUCOLO_NATIVE;
    process.env.GPUCOLO_NATIVE = '0';
    try {
      const native = await import('../src/native.js');
      const errors = await import('../src/errors.js');
      const err = await thrown(() => native.requireNative());
      expect(err).toBeInstanceOf(errors.GpucoloError);
      expect((err as GpucoloError).code).toBe('ENONATIVE');
      expect((err as Error).message).toMatch(/^native core not available: native core disabled by GPUCOLO_NATIVE=0; possible solutions: unset GPUCOLO_NATIVE/);
    } finally {
      if (saved === undefined) delete process.env.GPUCOLO_NATIVE;
      else process.env.GPUCOLO_NATIVE = saved;
      vi.resetModules();
    }
  });

  it('registry format error: a JSON file that is not a run registry is EREGISTRYFORMAT with the file as path', async () => {
    const file = path.join(tmp, 'not-a-registry.json');
    fs.writeFileSync(file, '{"schema":"something/1"}\n');
    const err = expectGpucolo(await thrown(() => readRunRegistry(file)), 'EREGISTRYFORMAT');
    expect(err).toBeInstanceOf(RegistryFormatError);
    expect(err.path).toBe(file);
  });

  it('output symlink: ELOOP, Node-shaped (syscall open, path), and a write error rather than bad input', async () => {
    const target = path.join(tmp, 'precious.txt');
    fs.writeFileSync(target, 'keep\n');
    const link = path.join(tmp, 'out-link.txt');
    fs.symlinkSync(target, link);
    const err = expectGpucolo(await thrown(() => writeFileAtomic(link, 'x')), 'ELOOP');
    expect(err).toBeInstanceOf(OutputSymlinkError);
    expect(err).toMatchObject({ path: link, syscall: 'open', target });
    expect(isWriteError(err)).toBe(true);
    expect(fs.readFileSync(target, 'utf8')).toBe('keep\n');
  });

  it('a failed write keeps the system error: errno name as code, errno, syscall, path', async () => {
    const file = path.join(tmp, 'no-such-dir', 'out.json');
    const err = expectGpucolo(await thrown(() => writeFileAtomic(file, 'x')), 'ENOENT');
    expect(err.path).toBe(file);
    expect(typeof err.errno).toBe('number');
    expect(typeof err.syscall).toBe('string');
    expect(err.message).toMatch(/^cannot write .*out\.json: no such file or directory \(ENOENT\)$/);
    expect(isWriteError(err)).toBe(true);
    // an input error with the same code is not a write error
    expect(isWriteError(new GpucoloError('cannot read x', { code: 'ENOENT', path: 'x' }))).toBe(false);
  });

  it('trace write error: a link at --out, or a missing directory, is a TraceWriteError with the errno', async () => {
    const target = path.join(tmp, 'trace-target.jsonl');
    fs.writeFileSync(target, '');
    const link = path.join(tmp, 'trace-link.jsonl');
    fs.symlinkSync(target, link);
    const err = expectGpucolo(await thrown(() => new TraceRecorder(link)), 'ELOOP');
    expect(err).toBeInstanceOf(TraceWriteError);
    expect(err.path).toBe(link);
    const file = path.join(tmp, 'nope', 't.jsonl');
    const missing = expectGpucolo(await thrown(() => new TraceRecorder(file)), 'ENOENT');
    expect(missing).toBeInstanceOf(TraceWriteError);
    expect(missing.path).toBe(file);
  });

  it('an unavailable energy source read is ENOPOWER (the code of the native backends)', async () => {
    const src = openRapl(path.join(tmp, 'no-sys'));
    expect(src.probe.available).toBe(false);
    const err = expectGpucolo(await thrown(() => src.read(0)), 'ENOPOWER');
    expect(err.message).toMatch(/^rapl unavailable: /);
  });
});

describe('bad arguments to public functions are TypeError/RangeError with Node codes', () => {
  it('planPipeline with a duplicate stage: TypeError ERR_INVALID_ARG_VALUE', async () => {
    const stage = { name: 'a', memoryMB: 1, inputs: [] };
    const err = await thrown(() => planPipeline({ stages: [stage, stage], categories: [], gpuMemoryMB: 10 } as unknown as Parameters<typeof planPipeline>[0]));
    expect(err).toBeInstanceOf(TypeError);
    expect(err).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', message: 'planPipeline: duplicate stage name "a"' });
  });

  it('runSchedule with 0 rounds: RangeError ERR_OUT_OF_RANGE', async () => {
    const err = await thrown(() => runSchedule([], 0));
    expect(err).toBeInstanceOf(RangeError);
    expect(err).toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
  });

  it('parseListen of a string of the wrong form: RangeError ERR_INVALID_ARG_VALUE (the CLI: exit 2)', async () => {
    const err = await thrown(() => parseListen('not-an-address'));
    expect(err).toBeInstanceOf(RangeError);
    expect(err).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
  });

  it('the helpers make what Node makes', () => {
    expect(invalidArg('x')).toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
    expect(invalidArg('x', 'ERR_INVALID_ARG_TYPE')).toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    expect(outOfRange('x')).toMatchObject({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
  });
});

describe('CliError', () => {
  it('is a GpucoloError: the reported error keeps its code, else the code says the exit code', () => {
    expect(new CliError('m', 2)).toMatchObject({ code: 'EBADUSAGE', exitCode: 2, printed: false });
    expect(new CliError('m', 130, true)).toMatchObject({ code: 'EINTERRUPTED', exitCode: 130, printed: true });
    expect(new CliError('m', 1, false, 'ENOSPC')).toMatchObject({ code: 'ENOSPC', exitCode: 1 });
    expect([2, 130, 1, 3].map(cliCode)).toEqual(['EBADUSAGE', 'EINTERRUPTED', 'EFAILED', 'EFAILED']);
    expect(new CliError('m', 1)).toBeInstanceOf(GpucoloError);
  });
});

/** Files under src/ (TypeScript), relative to the repository. */
function sourceFiles(dir = path.join(ROOT, 'src')): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return /\.(ts|mts|cts)$/.test(e.name) ? [path.relative(ROOT, p)] : [];
  });
}

/** `file:line` of every line matching `re` in src/, comments included (a commented-out throw would come back). */
function hits(re: RegExp): string[] {
  return sourceFiles().flatMap((f) =>
    fs
      .readFileSync(path.join(ROOT, f), 'utf8')
      .split('\n')
      .flatMap((l, i) => (re.test(l) ? [`${f}:${i + 1}`] : [])),
  );
}

// Where a bare Error is allowed, with the reason (docs/errors.md#where-new-error-is-still-allowed).
const BARE_ERROR_ALLOWED: Record<string, string> = {
  'src/dispatch/ts-engine/engine.ts': 'debug.throwInEngine: an injected fault that stands for an unexpected crash',
  'src/dispatch/ts-engine/cu-worker.ts': 'debug.throwInComputeUnit: an injected fault that stands for an unexpected crash',
};

describe('no bare errors in src/', () => {
  it('no `new Error(` outside the allowed injected faults', () => {
    const found = hits(/\bnew Error\(/).filter((h) => !(h.split(':')[0] in BARE_ERROR_ALLOWED));
    expect(found).toEqual([]);
  });

  it('the allowed places still exist (the list does not go stale)', () => {
    for (const f of Object.keys(BARE_ERROR_ALLOWED)) expect(fs.readFileSync(path.join(ROOT, f), 'utf8')).toMatch(/new Error\('injected fault/);
  });

  it('TypeError/RangeError are made by invalidArg/outOfRange (with a code)', () => {
    const found = hits(/\bnew (Type|Range)Error\(/).filter((h) => !h.startsWith('src/errors.ts:'));
    expect(found).toEqual([]);
  });

  it('no error class extends Error directly but GpucoloError', () => {
    expect(hits(/\bextends Error\b/)).toEqual(['src/errors.ts:' + (fs.readFileSync(path.join(ROOT, 'src/errors.ts'), 'utf8').split('\n').findIndex((l) => /class GpucoloError extends Error\b/.test(l)) + 1)]);
  });
});
