#!/usr/bin/env node
// npm "install" hook of gpucolo. Never fails the install: gpucolo works without its addon (pure-TS
// parsers and a pure-TS cpu dispatch backend), so every outcome is one line and exit 0.
//  1. a prebuilt addon (prebuilds/<platform>-<arch>/, shipped in the tarball) or an earlier build
//     that loads: nothing to do;
//  2. else build from source with cmake-js (a dependency) when cmake and a C++ compiler are here;
//     the build's output goes to install-native.log in the package, the screen gets one line;
//  3. else say what is missing and that the pure-TS paths will be used.
// GPUCOLO_BUILD_FROM_SOURCE=1 (or npm's --build-from-source) skips step 1; GPUCOLO_SKIP_BUILD=1
// skips step 2 (installs where a compile is not wanted).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const say = (msg) => console.warn(`[gpucolo] ${msg}`);
const later = 'gpucolo will use its pure-TS paths (gpucolo doctor says more)';
const truthy = (v) => v !== undefined && v !== '' && v !== '0' && v !== 'false';

function loadable() {
  try {
    const file = require('node-gyp-build').resolve(root);
    require(file);
    return file;
  } catch {
    return null;
  }
}

/** "a", "a and b", "a, b and c" */
const listed = (xs) => (xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs.at(-1)}`);

/** The first of the commands that runs, or null. */
function firstOnPath(cmds) {
  for (const c of cmds) {
    if (!c) continue;
    const r = spawnSync(c, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    if (r.status === 0) return { cmd: c, version: (r.stdout || '').split('\n')[0].trim() };
  }
  return null;
}

/**
 * The line of a failed build's log that names the cause: a compiler's diagnostic, else the text of
 * the first CMake error (its indented lines), else the last line.
 */
function buildFailure(text) {
  const lines = text.split('\n');
  // cmake-js compile first tries to build an existing tree: its "no build.ninja" is not the cause
  const diag = lines.find((l) => /\b(fatal )?error:/i.test(l) && !/^CMake Error/.test(l) && !/loading 'build\.ninja'/.test(l));
  if (diag) return diag.trim().slice(0, 240);
  const at = lines.findIndex((l) => /^CMake Error/.test(l));
  if (at >= 0) {
    const body = [];
    for (const l of lines.slice(at + 1)) {
      if (l.trim() === '' && body.length) break;
      if (l.trim() !== '') body.push(l.trim());
    }
    return body.join(' ').slice(0, 240);
  }
  return (lines.filter((l) => l.trim() !== '').pop() ?? '').trim().slice(0, 240);
}

function main() {
  const fromSource = truthy(process.env.GPUCOLO_BUILD_FROM_SOURCE) || truthy(process.env.npm_config_build_from_source);
  if (!fromSource) {
    const file = loadable();
    if (file) return; // a prebuild or a build that loads: quiet, as npm installs should be
  }
  const target = `${process.platform}-${process.arch}`;
  const why = fromSource ? 'building from source as asked' : `no prebuilt addon for ${target} loads here`;
  if (truthy(process.env.GPUCOLO_SKIP_BUILD)) {
    say(`${why} and GPUCOLO_SKIP_BUILD is set; ${later}`);
    return;
  }
  let cmakeJs;
  try {
    cmakeJs = path.join(path.dirname(require.resolve('cmake-js/package.json', { paths: [root] })), 'bin', 'cmake-js');
  } catch {
    say(`${why} and the cmake-js package is missing (installed with --omit?); ${later}`);
    return;
  }
  const missing = [];
  const debian = [];
  if (!firstOnPath(['cmake'])) missing.push('cmake (>= 3.15)'), debian.push('cmake');
  // cmake-js itself looks for g++ or clang++ unless it is given both compilers ($CXX, $CC)
  const cxx = firstOnPath([process.env.CXX, 'g++', 'clang++']);
  if (!cxx) missing.push('a C++17 compiler (g++ or clang++)'), debian.push('g++');
  if (!firstOnPath(['ninja', 'make'])) missing.push('make (or ninja)'), debian.push('make');
  if (missing.length) {
    say(`${why}, and it cannot be built here: ${listed(missing)} not found; ${later}. For the native core install ${missing.length > 1 ? 'them' : 'it'} (Debian: apt-get install ${debian.join(' ')}), then npm rebuild gpucolo`);
    return;
  }
  // not inside build/: cmake-js deletes that directory when a configure fails
  const log = path.join(root, 'install-native.log');
  const fd = fs.openSync(log, 'w');
  const compilers = process.env.CXX && cxx.cmd === process.env.CXX ? ['--cxx', process.env.CXX, '--cc', process.env.CC || 'cc'] : [];
  const r = spawnSync(process.execPath, [cmakeJs, 'compile', '--out', 'build', '--log-level', 'warn', ...compilers], {
    cwd: root,
    stdio: ['ignore', fd, fd],
  });
  fs.closeSync(fd);
  if (r.status === 0 && loadable()) {
    say(`${why}: built the native addon from source (build/Release/gpucolo.node; log ${log})`);
    return;
  }
  const cause = r.error ? r.error.message : buildFailure(fs.readFileSync(log, 'utf8')) || `exit ${r.status}`;
  say(`${why}; building it from source failed (${cause}; full log ${log}); ${later}`);
}

try {
  main();
} catch (err) {
  say(`native addon not set up (${err && err.message ? err.message.split('\n')[0] : err}); ${later}`);
}
process.exit(0);
