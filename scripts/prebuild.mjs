#!/usr/bin/env node
// Release step (npm's prepack: `npm pack` / `npm publish` run it): fills prebuilds/ with the
// addons the tarball carries, so that installing gpucolo needs neither a compiler nor network.
//  - linux-x64 (glibc), N-API 8 (one build serves every Node >= 20), stripped, libc-tagged;
//    with gpucolo_cuda.so next to it when nvcc is here (GPUCOLO_WITH_CUDA=ON: the users' GPU
//    hosts need it, the packing host need not have a GPU);
//  - linux-arm64 (glibc) when a cross compiler aarch64-linux-gnu-g++ is on the PATH (Debian:
//    apt-get install g++-aarch64-linux-gnu), without GPU plugins;
//  - musl: not made here (Debian has no musl C++ toolchain); musl hosts build from source at
//    install time or use the pure-TS paths.
// Every addon made is checked: its glibc floor (objdump -T) is printed, and the host's own addon
// must load and report the ABI this gpucolo expects. prebuilds/ is never committed (.gitignore).
// GPUCOLO_PREBUILD_ARCHS=x64 (comma list) limits the targets; GPUCOLO_PREBUILD_CUDA=0 leaves the
// CUDA plugin out.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const log = (m) => console.error(`prebuild: ${m}`);

function onPath(cmd) {
  return spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
}

function run(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) {
    log(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
}

/** Highest GLIBC_x.y symbol version the file needs, or null when objdump is missing. */
function glibcFloor(file) {
  const r = spawnSync('objdump', ['-T', file], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  const versions = [...r.stdout.matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  versions.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const top = versions.at(-1);
  return top ? `GLIBC_${top[0]}.${top[1]}` : 'none';
}

const prebuildify = path.join(path.dirname(require.resolve('prebuildify/package.json')), 'bin.js');
const shim = path.join(root, 'scripts', 'cmake-js-as-node-gyp.cjs');
const wanted = (process.env.GPUCOLO_PREBUILD_ARCHS ?? 'x64,arm64').split(',').map((s) => s.trim()).filter(Boolean);
const archs = [];
if (process.platform !== 'linux') {
  log(`packing on ${process.platform}: only linux prebuilds are made by this script; none made`);
} else {
  if (wanted.includes(os.arch())) archs.push(os.arch());
  if (wanted.includes('arm64') && os.arch() !== 'arm64') {
    if (onPath('aarch64-linux-gnu-g++')) archs.push('arm64');
    else log('no aarch64-linux-gnu-g++ on the PATH: no linux-arm64 prebuild (apt-get install g++-aarch64-linux-gnu makes one)');
  }
}

// prebuildify moves build/Release/gpucolo.node away: keep the developer's build and put it back
const release = path.join(root, 'build', 'Release');
const kept = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-prebuild-'));
const keptFiles = fs.existsSync(release) ? fs.readdirSync(release).filter((f) => /\.(node|so)$/.test(f)) : [];
for (const f of keptFiles) fs.copyFileSync(path.join(release, f), path.join(kept, f));
process.on('exit', () => {
  fs.mkdirSync(release, { recursive: true });
  for (const f of keptFiles) fs.copyFileSync(path.join(kept, f), path.join(release, f));
  fs.rmSync(kept, { recursive: true, force: true });
});

fs.rmSync(path.join(root, 'prebuilds'), { recursive: true, force: true });
for (const arch of archs) {
  const extra = [];
  if (arch === os.arch()) {
    const cuda = process.env.GPUCOLO_PREBUILD_CUDA !== '0' && onPath('nvcc');
    extra.push(`--CDGPUCOLO_WITH_CUDA=${cuda ? 'ON' : 'OFF'}`);
    if (!cuda) log('no nvcc (or GPUCOLO_PREBUILD_CUDA=0): the linux-x64 prebuild has no gpucolo_cuda.so');
  } else {
    extra.push('--CDGPUCOLO_WITH_CUDA=OFF', `--CDCMAKE_TOOLCHAIN_FILE=${path.join(root, 'scripts', 'toolchain-aarch64-linux-gnu.cmake')}`);
  }
  // (the shim configures afresh for every target: a cross build changes the compiler, which an
  // existing CMake cache would keep)
  const cross = arch !== os.arch();
  // prebuildify takes every .node and .so in build/Release: only this target's may be there
  for (const f of fs.existsSync(release) ? fs.readdirSync(release) : []) if (/\.(node|so)$/.test(f)) fs.rmSync(path.join(release, f));
  log(`linux-${arch}: building (${extra.join(' ')})`);
  run(process.execPath, [prebuildify, '--napi', '--strip', '--tag-libc', `--arch=${arch}`, '--node-gyp', shim], {
    CMAKE_JS_EXTRA: extra.join(' '),
    // strip the cross build with the cross binutils
    ...(cross ? { PREBUILD_STRIP_BIN: 'aarch64-linux-gnu-strip' } : {}),
  });
}
// the release's settings (GPUCOLO_WITH_CUDA=ON, a cross compiler) must not stick to the
// developer's next build: configure build/ as `npm run build:native` would
fs.rmSync(path.join(root, 'build', 'CMakeCache.txt'), { force: true });
fs.rmSync(path.join(root, 'build', 'CMakeFiles'), { recursive: true, force: true });
run(process.execPath, [path.join(path.dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js'), 'configure', '--out', 'build', '--log-level', 'warn']);

// what was made, and proof that the host's addon loads
let hostAddon = null;
for (const arch of archs) {
  const dir = path.join(root, 'prebuilds', `linux-${arch}`);
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
  if (!files.some((f) => f.endsWith('.node'))) {
    log(`linux-${arch}: no .node in ${dir}`);
    process.exit(1);
  }
  for (const f of files) {
    const file = path.join(dir, f);
    const floor = glibcFloor(file);
    log(`prebuilds/linux-${arch}/${f}: ${(fs.statSync(file).size / 1024).toFixed(0)} KiB${floor ? `, needs ${floor}` : ''}`);
    if (arch === os.arch() && f.endsWith('.node')) hostAddon = file;
  }
}
if (hostAddon) {
  const { NATIVE_ABI } = await import(path.join(root, 'dist', 'native.js'));
  const b = require(hostAddon);
  if (b.abiVersion !== NATIVE_ABI) {
    log(`${hostAddon} reports ABI ${b.abiVersion}, dist/ expects ${NATIVE_ABI}`);
    process.exit(1);
  }
  log(`linux-${os.arch()} addon loads (ABI ${b.abiVersion})`);
}
