#!/usr/bin/env node
// npm "install" hook: keep a build or prebuild that loads, else compile with cmake-js, else say
// that the pure-TS paths will be used. Never fails the install: gpucolo works without its addon.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
try {
  require('node-gyp-build')(root);
  process.exit(0);
} catch {
  // nothing usable yet: build it
}
let cmakeJs;
try {
  cmakeJs = path.join(path.dirname(require.resolve('cmake-js/package.json', { paths: [root] })), 'bin', 'cmake-js');
} catch {
  console.warn('[gpucolo] no prebuilt addon and no cmake-js to build one; the pure-TS paths will be used (gpucolo doctor says more)');
  process.exit(0);
}
const r = spawnSync(process.execPath, [cmakeJs, 'compile', '--out', 'build', '--log-level', 'warn'], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.warn('[gpucolo] native addon not built (see above); the pure-TS paths will be used (gpucolo doctor says more)');
}
process.exit(0);
