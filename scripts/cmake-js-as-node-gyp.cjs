#!/usr/bin/env node
// prebuildify always runs `<node-gyp> rebuild --target=X --devdir=D --arch=A --release|--debug`.
// --target is the Node version: cmake-js would read it as a CMake build target, so drop it.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const argv = process.argv.slice(2);
const get = (k) => { const a = argv.find((x) => x.startsWith(`--${k}=`)); return a && a.slice(k.length + 3); };
const args = ['rebuild', '--out', 'build', '--log-level', 'warn'];
const arch = get('arch'); if (arch) args.push('--arch', arch);
if (argv.includes('--debug')) args.push('--debug');
if (process.env.CMAKE_JS_PARALLEL) args.push('--parallel', process.env.CMAKE_JS_PARALLEL);
// e.g. CMAKE_JS_EXTRA='--CDGPUCOLO_WITH_HIP=ON --CDHIP_ARCHS=gfx90a;gfx940'
if (process.env.CMAKE_JS_EXTRA) args.push(...process.env.CMAKE_JS_EXTRA.split(/\s+/).filter(Boolean));
const bin = path.join(path.dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
const r = spawnSync(process.execPath, [bin, ...args], { stdio: 'inherit' });
process.exit(r.status ?? 1);
