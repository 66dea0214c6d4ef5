/** src/native.ts: the explicit loader, its environment switches and its diagnostics. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, nativeLoaded } from './helpers/impls.js';
import { NATIVE_ABI, possibleSolutions } from '../src/native.js';
import { makeTree } from './helpers/tree.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** Runs a snippet against the built dist/ in a fresh process (the loader caches per process). */
function probe(code: string, env: NodeJS.ProcessEnv): unknown {
  const script = `import(${JSON.stringify(path.join(ROOT, 'dist/index.js'))}).then(async (g) => { const out = await (async () => { ${code} })(); process.stdout.write(JSON.stringify(out)); });`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, GPUCOLO_NATIVE: '', GPUCOLO_NATIVE_PATH: '', ...env } });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

describe('native loader', () => {
  it('possible solutions fit each kind of failure, once each', () => {
    const root = '/home/u/gpucolo';
    const fixes = possibleSolutions(
      [
        { from: '/home/u/gpucolo/build/Release/gpucolo.node', message: 'stale native build /home/u/gpucolo/build/Release/gpucolo.node (abi 8, this gpucolo needs 9); run npm run build:native' },
        { from: '/home/u/gpucolo/prebuilds/linux-x64/gpucolo.glibc.node', message: "/lib/x86_64-linux-gnu/libstdc++.so.6: version `GLIBCXX_3.4.32' not found" },
        { from: '/home/u/gpucolo/prebuilds/linux-x64/gpucolo.glibc.node', message: 'invalid ELF header' },
        { from: 'search', message: 'no native build for linux-x64' },
      ],
      root,
    );
    expect(fixes).toHaveLength(3);
    expect(fixes[0]).toBe('rebuild it: npm run build:native');
    expect(fixes[1]).toMatch(/^the build does not fit this system .*GPUCOLO_BUILD_FROM_SOURCE=1 npm rebuild gpucolo/);
    expect(fixes[2]).toMatch(/^build it: npm run build:native, or install a gpucolo package with a prebuild for /);
    expect(possibleSolutions([{ from: 'GPUCOLO_NATIVE=0', message: 'native core disabled by GPUCOLO_NATIVE=0' }])).toEqual(['unset GPUCOLO_NATIVE to use the native core']);
    // inside node_modules the rebuild goes through npm
    expect(possibleSolutions([{ from: 'x', message: 'stale native build x' }], '/p/node_modules/gpucolo')).toEqual(['rebuild it: npm rebuild gpucolo (needs cmake and a C++ compiler)']);
  });

  it('GPUCOLO_NATIVE=0 forces the TS path and says so; impl native then fails with ENONATIVE', () => {
    const out = probe(
      `const r = g.nativeReport();
       let code = null; try { g.parseMqds('', { impl: 'native' }); } catch (e) { code = e.code; }
       return { loaded: r.loaded, disabled: r.disabled, errors: r.errors, path: g.parseMqds('').path, code };`,
      { GPUCOLO_NATIVE: '0' },
    );
    expect(out).toEqual({
      loaded: false,
      disabled: true,
      errors: [{ from: 'GPUCOLO_NATIVE=0', message: 'native core disabled by GPUCOLO_NATIVE=0' }],
      path: 'ts',
      code: 'ENONATIVE',
    });
  });

  it('GPUCOLO_NATIVE_PATH to a missing file: not loaded, the error names the file, TS still works', () => {
    const out = probe(`const r = g.nativeReport(); return { loaded: r.loaded, errors: r.errors, path: g.parseHqds('').path };`, {
      GPUCOLO_NATIVE_PATH: '/nonexistent/gpucolo.node',
    }) as { loaded: boolean; errors: { from: string; message: string }[]; path: string };
    expect(out.loaded).toBe(false);
    expect(out.path).toBe('ts');
    expect(out.errors[0].from).toBe('/nonexistent/gpucolo.node');
    expect(out.errors[0].message).toMatch(/Cannot find module/);
  });

  it('a binary of another ABI is rejected as stale, with what to do', () => {
    const dir = makeTree({ 'old.cjs': 'module.exports = { abiVersion: 99, parseMqds() {} };' });
    dirs.push(dir);
    const out = probe(`return g.nativeReport().errors;`, { GPUCOLO_NATIVE_PATH: path.join(dir, 'old.cjs') }) as { message: string }[];
    expect(out[0].message).toMatch(new RegExp(`^stale native build .*old\\.cjs \\(abi 99, this gpucolo needs ${NATIVE_ABI}\\); run npm run build:native$`));
  });

  it('a file that is not a gpucolo addon is refused', () => {
    const dir = makeTree({ 'x.cjs': 'module.exports = { hello: 1 };' });
    dirs.push(dir);
    const out = probe(`return g.nativeReport().errors;`, { GPUCOLO_NATIVE_PATH: path.join(dir, 'x.cjs') }) as { message: string }[];
    expect(out[0].message).toMatch(/is not a gpucolo addon$/);
  });

  it.runIf(nativeLoaded)('loads the build, reports its build facts, and runs in worker threads', () => {
    const out = probe(
      `const r = g.nativeReport();
       const { Worker } = await import('node:worker_threads');
       const src = "const { parentPort } = require('worker_threads'); const b = require(" + JSON.stringify(r.file) + "); parentPort.postMessage(b.parseRls(Buffer.from('Node 1, gpu_id 2:\\\\n  No active runlist\\\\n')).nodes.length);";
       const results = await Promise.all([0, 1, 2].map(() => new Promise((res, rej) => { const w = new Worker(src, { eval: true }); w.on('message', res); w.on('error', rej); })));
       return { loaded: r.loaded, abi: r.abi, info: r.buildInfo, results };`,
      {},
    ) as { loaded: boolean; abi: number; info: { napiVersion: number; compiler: string }; results: number[] };
    expect(out.loaded).toBe(true);
    expect(out.info.napiVersion).toBe(8);
    expect(out.info.compiler).toMatch(/gcc|clang/);
    // the RLS table has 9 columns per node
    expect(out.results).toEqual([9, 9, 9]);
  });

  it.runIf(nativeLoaded)('kfdVersion errors look like Node system errors, with a hint', () => {
    // kfdVersion is internal (not in src/index.ts): it comes from the module that defines it
    const kfd = `const { kfdVersion } = await import(${JSON.stringify(path.join(ROOT, 'dist/kfd/index.js'))});`;
    const out = probe(`${kfd} try { kfdVersion('/nonexistent/kfd'); return null; } catch (e) { return { code: e.code, errno: e.errno, syscall: e.syscall, path: e.path, hint: e.hint, message: e.message }; }`, {});
    expect(out).toMatchObject({ code: 'ENOENT', errno: -2, syscall: 'open', path: '/nonexistent/kfd' });
    expect((out as { hint: string }).hint).toMatch(/amdgpu/);
    const dir = makeTree({ 'notkfd': 'x' });
    dirs.push(dir);
    const bad = probe(`${kfd} try { kfdVersion(${JSON.stringify(path.join(dir, 'notkfd'))}); return null; } catch (e) { return { code: e.code, syscall: e.syscall }; }`, {});
    // a regular file takes no ioctl
    expect(bad).toEqual({ code: 'ENOTTY', syscall: 'ioctl' });
  });
});

describe('where the addon comes from', () => {
  it('the rebuild hint fits the place: a clone builds with npm run, an installed package with npm rebuild', async () => {
    const { rebuildHint } = await import('../src/native.js');
    expect(rebuildHint('/home/u/gpucolo')).toBe('npm run build:native');
    expect(rebuildHint('/srv/app/node_modules/gpucolo')).toMatch(/^npm rebuild gpucolo/);
  });

  it('a prebuild tagged for the other C library is not even tried', () => {
    // a copy of the package layout with a musl-tagged file that would fail to load, and no build/
    const root = fs.mkdtempSync(path.join(ROOT, 'build', 'libc-'));
    dirs.push(root);
    const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'gpucolo.musl.node'), 'not an addon');
    fs.writeFileSync(path.join(dir, 'gpucolo.glibc.node'), 'not an addon either');
    // copies, not links: ESM resolves links, and PACKAGE_ROOT would be the checkout again
    // (at run time native.js imports only errors.js of gpucolo, which imports nothing)
    fs.mkdirSync(path.join(root, 'dist'));
    for (const f of ['native.js', 'errors.js']) fs.copyFileSync(path.join(ROOT, 'dist', f), path.join(root, 'dist', f));
    fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(root, 'package.json'));
    const r = spawnSync(
      process.execPath,
      ['-e', `import(${JSON.stringify(path.join(root, 'dist', 'native.js'))}).then((n) => process.stdout.write(JSON.stringify(n.nativeCandidates())))`],
      { encoding: 'utf8', env: { ...process.env, GPUCOLO_NATIVE: '', GPUCOLO_NATIVE_PATH: '' } },
    );
    expect(r.status).toBe(0);
    const names = (JSON.parse(r.stdout) as string[]).map((f) => path.basename(f));
    // this host is glibc (Debian): the musl file is filtered out, the glibc one stays a candidate
    expect(names).toContain('gpucolo.glibc.node');
    expect(names).not.toContain('gpucolo.musl.node');
  });
});
