/** sysfs readers on bad trees: missing files, bad numbers, vanishing processes and queues. */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { readKfdProcs, readTopology } from '../src/index.js';
import { readKfdProcsRaw, readTopologyRaw } from '../src/kfd/parse.js';
import { IMPLS, SYSFS, nativeLoaded } from './helpers/impls.js';
import { copyTree, isRoot, makeTree } from './helpers/tree.js';

const P = 'class/kfd/kfd/proc';
const T = 'class/kfd/kfd/topology/nodes';
const made: string[] = [];
const tree = (files: Record<string, string>): string => {
  const d = makeTree(files);
  made.push(d);
  return d;
};
afterAll(() => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

describe.each(IMPLS)('%s sysfs readers', (impl) => {
  it('a host without KFD: one ENOENT issue naming the directory', () => {
    const root = tree({ 'class/net/lo/mtu': '65536\n' });
    const t = readTopology({ sysfsRoot: root, impl });
    expect(t.nodes).toEqual([]);
    expect(t.issues).toEqual([{ path: `${root}/${T}`, severity: 'error', code: 'ENOENT', message: `cannot read ${root}/${T} (ENOENT)` }]);
    const p = readKfdProcs({ sysfsRoot: root, impl });
    expect(p.issues.map((i) => i.code)).toEqual(['ENOENT']);
  });

  it('CPU nodes (gpu_id 0, empty name) and GPU nodes; a bad gpu_id and a malformed property line; "01" is no node', () => {
    const root = tree({
      [`${T}/0/gpu_id`]: '0\n',
      [`${T}/0/name`]: '\n',
      [`${T}/0/properties`]: 'cpu_cores_count 64\nsimd_count 0\n',
      [`${T}/1/gpu_id`]: 'banana\n',
      [`${T}/1/name`]: 'x\n',
      [`${T}/1/properties`]: '',
      [`${T}/10/gpu_id`]: '48153\n',
      [`${T}/10/name`]: 'aldebaran\n',
      [`${T}/10/properties`]: 'simd_count 440\nsimd_per_cu 4\ngfx_target_version 90010\nnonsense\n',
      [`${T}/01/gpu_id`]: '5\n',
      [`${T}/2/gpu_id`]: '1\n',
      [`${T}/2/name`]: 'y\n',
    });
    const t = readTopology({ sysfsRoot: root, impl });
    expect(t.nodes.map((n) => [n.node, n.gpuId, n.name, n.isGpu, n.gpu?.gfxTarget ?? null, n.gpu?.numXcc ?? null])).toEqual([
      [0, 0, '', false, null, null],
      [10, 48153, 'aldebaran', true, 'gfx90a', 1],
    ]);
    expect(t.nodes[1].gpu!.numXccReported).toBe(false);
    expect(t.nodes[1].gpu!.computeUnits).toBe(110);
    expect(t.issues.map((i) => [i.severity, i.message])).toEqual([
      ['error', `${root}/${T}/1/gpu_id: expected a number, got "banana\n"`.replace('\n', '?')],
      ['error', `cannot read ${root}/${T}/2/properties (ENOENT)`],
      ['warning', `${root}/${T}/10/properties:4: malformed property line "nonsense"`],
    ]);
  });

  it('bad numbers in proc files are errors naming the file; other files still read', () => {
    const root = tree({
      [`${P}/7/pasid`]: '0\n',
      [`${P}/7/vram_31774`]: '12x\n',
      [`${P}/7/queues/0/type`]: '0',
      [`${P}/7/queues/0/size`]: '',
      [`${P}/7/queues/0/gpuid`]: '31774',
      [`${P}/7/stats_31774/evicted_ms`]: '5\n',
      [`${P}/7/unknown_file`]: 'ignored',
    });
    const p = readKfdProcs({ sysfsRoot: root, impl });
    expect(p.procs).toEqual([{ pid: 7, pasid: 0, queues: [{ qid: 0, typeCode: 0, type: 'compute', sizeBytes: null, gpuId: 31774 }], gpus: [{ gpuId: 31774, evictedMs: 5 }] }]);
    expect(p.issues.map((i) => i.message)).toEqual([
      `${root}/${P}/7/queues/0/size: expected a number, got ""`,
      `${root}/${P}/7/vram_31774: expected a number, got "12x?"`,
    ]);
  });

  it('a negative gpu_id is an issue, not a value; CR LF files read like LF', () => {
    const root = tree({
      [`${T}/1/gpu_id`]: '-5\n',
      [`${T}/1/name`]: 'x\n',
      [`${T}/1/properties`]: 'simd_count 4\n',
      [`${T}/2/gpu_id`]: '31774\r\n',
      [`${T}/2/name`]: 'ip discovery\r\n',
      [`${T}/2/properties`]: 'simd_count 304\r\nnum_xcc 4\r\n',
      [`${P}/9/pasid`]: '0\r\n',
      [`${P}/9/queues/0/type`]: '0',
      [`${P}/9/queues/0/size`]: '4096',
      [`${P}/9/queues/0/gpuid`]: '-1',
      [`${P}/9/queues/1/type`]: '1',
      [`${P}/9/queues/1/size`]: '4096\r\n',
      [`${P}/9/queues/1/gpuid`]: '31774',
    });
    const t = readTopology({ sysfsRoot: root, impl });
    expect(t.issues).toEqual([{ path: `${root}/${T}/1/gpu_id`, severity: 'error', message: `${root}/${T}/1/gpu_id: expected a gpu_id (a number >= 0), got "-5?"` }]);
    expect(t.nodes.map((n) => [n.node, n.gpuId, n.name, n.gpu?.numXcc])).toEqual([[2, 31774, 'ip discovery', 4]]);
    const p = readKfdProcs({ sysfsRoot: root, impl });
    // -1 would read as "unreadable" in the tables: a negative gpuid is an error and the GPU unknown
    expect(p.issues.map((i) => i.message)).toEqual([`${root}/${P}/9/queues/0/gpuid: expected a gpu_id (a number >= 0), got "-1"`]);
    expect(p.procs).toEqual([
      {
        pid: 9,
        pasid: 0,
        queues: [
          { qid: 0, typeCode: 0, type: 'compute', sizeBytes: 4096, gpuId: null },
          { qid: 1, typeCode: 1, type: 'sdma', sizeBytes: 4096, gpuId: 31774 },
        ],
        gpus: [],
      },
    ]);
  });

  it('a queue directory that is gone when its files are read: dropped with one warning', () => {
    const root = copyTree(SYSFS);
    made.push(root);
    fs.symlinkSync('/nonexistent/queue', path.join(root, `${P}/41872/queues/9`));
    const p = readKfdProcs({ sysfsRoot: root, impl });
    expect(p.procs[0].queues.map((q) => q.qid)).toEqual([0, 1, 2]);
    expect(p.issues).toEqual([
      { path: `${root}/${P}/41872/queues/9`, severity: 'warning', message: 'queue 9 of process 41872 vanished while being read' },
    ]);
  });

  it('a process directory that is gone when listed: skipped with one warning', () => {
    const root = copyTree(SYSFS);
    made.push(root);
    fs.symlinkSync('/nonexistent/pid', path.join(root, `${P}/50000`));
    const p = readKfdProcs({ sysfsRoot: root, impl });
    expect(p.procs.map((x) => x.pid)).toEqual([41872, 42117]);
    expect(p.issues).toEqual([{ path: `${root}/${P}/50000`, severity: 'warning', message: 'process 50000 exited while being read' }]);
  });

  it.skipIf(isRoot)('an unreadable file is an EACCES error (not a vanish)', () => {
    const root = copyTree(SYSFS);
    made.push(root);
    fs.chmodSync(path.join(root, `${P}/41872/vram_31774`), 0);
    const p = readKfdProcs({ sysfsRoot: root, impl });
    expect(p.issues).toEqual([expect.objectContaining({ severity: 'error', code: 'EACCES' })]);
    expect(p.procs).toHaveLength(2);
  });

  it('processes appearing and vanishing while being read: complete, or warned about, never an error', async () => {
    const root = copyTree(SYSFS);
    made.push(root);
    const dir = path.join(root, P, '60000');
    const tmpl = path.join(root, 'tmpl');
    fs.mkdirSync(path.join(tmpl, 'queues/0'), { recursive: true });
    fs.writeFileSync(path.join(tmpl, 'queues/0/type'), '0');
    fs.writeFileSync(path.join(tmpl, 'queues/0/size'), '4096');
    fs.writeFileSync(path.join(tmpl, 'queues/0/gpuid'), '31774');
    fs.writeFileSync(path.join(tmpl, 'vram_31774'), '1\n');
    const stop = path.join(root, 'stop');
    // like sysfs: the directory appears whole (rename) and is torn down file by file (rm -rf)
    const churn = spawn(
      'sh',
      ['-c', `i=0; while [ ! -e ${stop} ] && [ $i -lt 100000 ]; do cp -r ${tmpl} ${dir}.new && mv ${dir}.new ${dir} && rm -rf ${dir}; i=$((i+1)); done`],
      { stdio: 'ignore' },
    );
    const exited = new Promise<void>((r) => churn.on('exit', () => r()));
    let complete = 0;
    try {
      for (let reads = 0; reads < 1500; reads++) {
        const p = readKfdProcs({ sysfsRoot: root, impl });
        const mine = p.issues.filter((i) => i.path.includes('/60000'));
        for (const i of p.issues) expect(i.severity).toBe('warning');
        expect(p.procs.filter((q) => q.pid !== 60000).map((q) => q.pid)).toEqual([41872, 42117]);
        const x = p.procs.find((q) => q.pid === 60000);
        if (x && mine.length === 0) {
          // without a warning, each part is either whole or already torn down (as in a real exit,
          // where KFD destroys the queues before the process directory)
          expect([[], [{ qid: 0, typeCode: 0, type: 'compute', sizeBytes: 4096, gpuId: 31774 }]]).toContainEqual(x.queues);
          expect([[], [{ gpuId: 31774, vramBytes: 1 }]]).toContainEqual(x.gpus);
          if (x.queues.length === 1 && x.gpus.length === 1) complete++;
        }
      }
    } finally {
      fs.writeFileSync(stop, '');
      await exited;
    }
    expect(complete).toBeGreaterThan(0);
  });
});

describe.runIf(nativeLoaded)('native and TS sysfs readers agree', () => {
  it('on the fixture and on bad trees', () => {
    const bad = tree({
      [`${T}/3/gpu_id`]: '7\n',
      [`${T}/3/name`]: 'z',
      [`${T}/3/properties`]: 'a 1\n b\nc  2\nnum_xcc 8',
      [`${P}/1/queues/3/type`]: '1',
      [`${P}/1/queues/3/gpuid`]: 'ff',
      [`${P}/1/counters_7/faults`]: '3\n',
      [`${P}/1/sdma_7`]: '-1\n',
      [`${P}/2/pasid`]: '\n',
      [`${T}/4/gpu_id`]: '-0\r\n',
      [`${T}/5/gpu_id`]: '5\r\n',
      [`${T}/5/name`]: 'crlf\r\n',
      [`${T}/5/properties`]: 'a 1\r\n\r\nb 2\r',
      [`${P}/3/queues/0/gpuid`]: '-7',
      [`${P}/3/queues/0/type`]: '0\r\n',
    });
    for (const root of [SYSFS, bad, '/nonexistent', `${SYSFS}/`]) {
      expect(readTopologyRaw(root, 'native')).toEqual(readTopologyRaw(root, 'ts'));
      expect(readKfdProcsRaw(root, 'native')).toEqual(readKfdProcsRaw(root, 'ts'));
      expect(readKfdProcsRaw(root, 'native', [1, 41872])).toEqual(readKfdProcsRaw(root, 'ts', [1, 41872]));
    }
  });
});
