#!/usr/bin/env node
// prebuildify always runs `<node-gyp> rebuild --target=X --devdir=D --arch=A --release|--debug`.
// --target is the Node version: cmake-js would read it as a CMake build target, so drop it.
// "rebuild" is done as a fresh configure + build, not `cmake-js rebuild`: that one deletes the
// whole build/ directory, and with it whatever else lives there (CI keeps its test reports in
// build/; a developer's other build outputs).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const argv = process.argv.slice(2);
const get = (k) => { const a = argv.find((x) => x.startsWith(`--${k}=`)); return a && a.slice(k.length + 3); };
const build = path.resolve('build');
fs.rmSync(path.join(build, 'CMakeCache.txt'), { force: true });
fs.rmSync(path.join(build, 'CMakeFiles'), { recursive: true, force: true });
const args = ['--out', 'build', '--log-level', 'warn'];
const arch = get('arch'); if (arch) args.push('--arch', arch);
if (argv.includes('--debug')) args.push('--debug');
if (process.env.CMAKE_JS_PARALLEL) args.push('--parallel', process.env.CMAKE_JS_PARALLEL);
// e.g. CMAKE_JS_EXTRA='--CDGPUCOLO_WITH_HIP=ON --CDHIP_ARCHS=gfx90a;gfx940'
if (process.env.CMAKE_JS_EXTRA) args.push(...process.env.CMAKE_JS_EXTRA.split(/\s+/).filter(Boolean));
const bin = path.join(path.dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
// configure, then build: `compile` would first try the tree as it is, and fall back to a
// `rebuild` (which deletes build/) when that fails
for (const step of ['configure', 'build']) {
  const r = spawnSync(process.execPath, [bin, step, ...args], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
