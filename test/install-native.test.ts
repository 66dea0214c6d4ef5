/**
 * scripts/install-native.cjs, npm's install hook: whatever happens, exit 0 and one [gpucolo] line
 * that says what is missing. Runs against a scratch copy of the package (the script works on the
 * directory above its own), so the checkout's build/ is never touched.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const repo = path.resolve(__dirname, '..');
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-install-'));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

/** A package root with the install script, the sources and the repo's node_modules (cmake-js). */
function pkg(name: string): string {
  const dir = path.join(scratch, name);
  fs.mkdirSync(path.join(dir, 'scripts'), { recursive: true });
  fs.copyFileSync(path.join(repo, 'scripts', 'install-native.cjs'), path.join(dir, 'scripts', 'install-native.cjs'));
  fs.copyFileSync(path.join(repo, 'package.json'), path.join(dir, 'package.json'));
  fs.copyFileSync(path.join(repo, 'CMakeLists.txt'), path.join(dir, 'CMakeLists.txt'));
  fs.symlinkSync(path.join(repo, 'native'), path.join(dir, 'native'));
  fs.symlinkSync(path.join(repo, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

/** A bin dir holding only the named programs of this host (and what the test adds). */
function binWith(names: string[], extra: Record<string, string> = {}): string {
  const bin = fs.mkdtempSync(path.join(scratch, 'bin-'));
  for (const n of names) {
    const r = spawnSync('sh', ['-c', `command -v ${n}`], { encoding: 'utf8' });
    if (r.status === 0) fs.symlinkSync(r.stdout.trim(), path.join(bin, n));
  }
  for (const [n, text] of Object.entries(extra)) fs.writeFileSync(path.join(bin, n), text, { mode: 0o755 });
  return bin;
}

function install(dir: string, env: Record<string, string>): { status: number | null; lines: string[] } {
  const r = spawnSync(process.execPath, [path.join(dir, 'scripts', 'install-native.cjs')], {
    cwd: dir,
    encoding: 'utf8',
    env: { HOME: process.env.HOME ?? '/tmp', GPUCOLO_BUILD_FROM_SOURCE: '1', CXX: '', ...env },
  });
  const lines = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() !== '');
  return { status: r.status, lines };
}

const hasCmake = spawnSync('cmake', ['--version']).status === 0 && spawnSync('g++', ['--version']).status === 0;

describe('install hook', () => {
  it('without cmake, a compiler or make: exit 0, one line naming each, nothing built', () => {
    const dir = pkg('nothing');
    const r = install(dir, { PATH: binWith(['sh']) });
    expect(r.status).toBe(0);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatch(/^\[gpucolo\] .*: cmake \(>= 3\.15\), a C\+\+17 compiler \(g\+\+ or clang\+\+\) and make \(or ninja\) not found; gpucolo will use its pure-TS paths/);
    expect(r.lines[0]).toMatch(/apt-get install cmake g\+\+ make\), then npm rebuild gpucolo$/);
    expect(fs.existsSync(path.join(dir, 'build'))).toBe(false);
  });

  it.skipIf(!hasCmake)('only make missing: the line names make alone', () => {
    const dir = pkg('nomake');
    const r = install(dir, { PATH: binWith(['sh', 'cmake', 'g++']) });
    expect(r.status).toBe(0);
    expect(r.lines).toEqual([expect.stringMatching(/it cannot be built here: make \(or ninja\) not found; .*apt-get install make\)/)]);
  });

  it('GPUCOLO_SKIP_BUILD=1: exit 0, one line, no build', () => {
    const dir = pkg('skip');
    const r = install(dir, { PATH: process.env.PATH ?? '', GPUCOLO_SKIP_BUILD: '1' });
    expect(r.status).toBe(0);
    expect(r.lines).toEqual([expect.stringMatching(/^\[gpucolo\] .*GPUCOLO_SKIP_BUILD is set; gpucolo will use its pure-TS paths/)]);
    expect(fs.existsSync(path.join(dir, 'build'))).toBe(false);
  });

  it.skipIf(!hasCmake)('a compiler that fails: exit 0, one line with the cause and the log file', () => {
    const dir = pkg('broken');
    // answers --version (so it is found) but compiles nothing, as a broken toolchain would
    const fake = '#!/bin/sh\nif [ "$1" = "--version" ]; then echo "fake c++ 1.0"; exit 0; fi\necho "fake-c++: error: simulated compiler failure" >&2\nexit 1\n';
    const bin = binWith(['sh', 'cmake', 'ninja', 'make'], { 'g++': fake });
    const r = install(dir, { PATH: bin });
    expect(r.status).toBe(0);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatch(/^\[gpucolo\] building from source as asked; building it from source failed \(.+; full log .*install-native\.log\); gpucolo will use its pure-TS paths/);
    const log = fs.readFileSync(path.join(dir, 'install-native.log'), 'utf8');
    expect(log).toMatch(/CMAKE_CXX_COMPILER|fake-c\+\+|not able to compile/);
  });
});
