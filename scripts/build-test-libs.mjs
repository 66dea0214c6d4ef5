#!/usr/bin/env node
// Builds the stand-in libraries that vitest tests load with dlopen() or LD_PRELOAD into build-cc/
// (the plain-CMake test build, where the tests look for them): the fake NVML and ROCm SMI
// (test/energy.test.ts, test/scenario.test.ts) and the fake XSched shim (test/torch-worker.test.ts).
// Run from `npm test`'s pretest, so that a plain `npm test` runs those tests instead of skipping them.
//
//  - Already built and newer than their sources: exits at once, without running cmake.
//  - No cmake or no C++ compiler: one line saying so, exit 0 (the tests then skip with their reason).
//  - A failing build: its last lines and where the whole log is, exit 0 for the same reason (the
//    C++ tests of .ci/run build the same targets and fail loudly there).
// Quiet otherwise. Usage: node scripts/build-test-libs.mjs
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BUILD = path.join(ROOT, 'build-cc');
const LOG = path.join(BUILD, 'build-test-libs.log');
// written after a successful build: newer than every input = nothing to do (CMakeLists.txt may be
// newer than libraries it did not change, so their own times cannot say that)
const STAMP = path.join(BUILD, 'build-test-libs.stamp');
// CMake target -> its source (CMakeLists.txt: the "power tests" and XSched shim sections)
const TARGETS = {
  gpucolo_fake_nvml: 'native/tests/fake_nvml.cc',
  gpucolo_fake_rocm_smi: 'native/tests/fake_rocm_smi.cc',
  gpucolo_fake_xsched: 'native/tests/fake_xsched_shim.cc',
};

const mtime = (f) => {
  try {
    return fs.statSync(f).mtimeMs;
  } catch {
    return null;
  }
};

const built = () => Object.keys(TARGETS).every((t) => fs.existsSync(path.join(BUILD, `lib${t}.so`)));

function upToDate() {
  const newestInput = Math.max(...[...Object.values(TARGETS), 'CMakeLists.txt'].map((f) => mtime(path.join(ROOT, f)) ?? Infinity));
  return built() && (mtime(STAMP) ?? -Infinity) >= newestInput;
}

const onPath = (cmd) => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;

function note(line) {
  console.log(`build-test-libs: ${line}`);
}

if (upToDate()) process.exit(0);

const compiler = [process.env.CXX, 'g++', 'c++', 'clang++'].find((c) => c && onPath(c));
if (!onPath('cmake') || !compiler) {
  const missing = [!onPath('cmake') && 'cmake', !compiler && 'a C++ compiler (g++)'].filter(Boolean).join(' and ');
  note(`${missing} not found: the fake NVML / ROCm SMI / XSched libraries are not built, and the tests that load them are skipped`);
  process.exit(0);
}

let log = '';
function run(args) {
  const r = spawnSync('cmake', args, { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...(process.env.CXX ? {} : { CXX: compiler }) } });
  log += `$ cmake ${args.join(' ')}\n${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? `${r.error.message}\n` : ''}`;
  return r.status === 0;
}
const configure = () => run(['-S', '.', '-B', 'build-cc', '-DCMAKE_BUILD_TYPE=Release']);
const build = () => run(['--build', 'build-cc', '--target', ...Object.keys(TARGETS), '-j2']);

// an existing build-cc is built directly (cmake re-configures it when CMakeLists.txt changed); a
// build that fails is configured afresh once (a cache from another checkout, an interrupted run)
const hasCache = fs.existsSync(path.join(BUILD, 'CMakeCache.txt'));
const ok = (hasCache && build()) || (configure() && build());
try {
  fs.mkdirSync(BUILD, { recursive: true });
  fs.writeFileSync(LOG, log);
  if (ok && built()) fs.writeFileSync(STAMP, `${new Date().toISOString()}\n`);
} catch {
  // the log and the stamp are conveniences; the note below says what happened
}
if (!ok || !built()) {
  const tail = log.trim().split('\n').slice(-8).join('\n');
  note(`building ${Object.keys(TARGETS).join(', ')} failed; the tests that load them are skipped (log: ${path.relative(ROOT, LOG)}):\n${tail}`);
}
process.exit(0);
