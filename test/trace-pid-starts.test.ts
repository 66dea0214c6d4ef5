/**
 * The TS sampler's start-time reader (src/trace/pid-starts.ts), twin of the native sampler's
 * NotePids (native/tests/test_sampler.cc has the same sequence): start times are read for new
 * processes and for those whose queue rows changed, not for the rest; -1 for an unreadable stat.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readKfdProcsRaw } from '../src/kfd/parse.js';
import { PidStartReader } from '../src/trace/pid-starts.js';
import { startSampler } from '../src/trace/sampler.js';
import type { NativeSample } from '../src/native.js';
import { IMPLS, SYSFS } from './helpers/impls.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function host() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-pidstarts-'));
  dirs.push(root);
  const sysfs = path.join(root, 'sys');
  fs.cpSync(SYSFS, sysfs, { recursive: true });
  const procs = path.join(sysfs, 'class/kfd/kfd/proc');
  const proc = path.join(root, 'proc');
  return {
    sysfs,
    proc,
    stat(pid: number, start: number): void {
      fs.mkdirSync(path.join(proc, String(pid)), { recursive: true });
      // ')' and spaces in the name: the start time is counted from the last ')'
      fs.writeFileSync(path.join(proc, String(pid), 'stat'), `${pid} (py (3) x) S 1 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 64 0 ${start} 0 0\n`);
    },
    addQueue(pid: number, qid: number): void {
      const q = path.join(procs, String(pid), 'queues', String(qid));
      fs.mkdirSync(q, { recursive: true });
      fs.writeFileSync(path.join(q, 'type'), '0\n');
      fs.writeFileSync(path.join(q, 'size'), '1048576\n');
      fs.writeFileSync(path.join(q, 'gpuid'), '31774\n');
    },
    removeQueue(pid: number, qid: number): void {
      fs.rmSync(path.join(procs, String(pid), 'queues', String(qid)), { recursive: true });
    },
  };
}

const pairs = (a: Float64Array | undefined): number[] | undefined => (a ? [...a] : undefined);

describe('PidStartReader', () => {
  it('reads start times of new processes and of those whose queues changed, at each read', () => {
    const h = host();
    h.stat(41872, 1000); // 42117 has none: -1
    const r = new PidStartReader(h.proc);
    const read = () => pairs(r.read(readKfdProcsRaw(h.sysfs, 'ts')));
    expect(read()).toEqual([41872, 1000, 42117, -1]);
    expect(read()).toBeUndefined();
    h.addQueue(41872, 9); // the same process, one more queue
    expect(read()).toEqual([41872, 1000]);
    h.stat(41872, 2000); // another process behind the pid, with other queues
    h.removeQueue(41872, 9);
    h.removeQueue(41872, 0);
    expect(read()).toEqual([41872, 2000]);
    h.stat(41872, 3000); // queues unchanged: not looked at
    expect(read()).toBeUndefined();
  });

  it('a damaged stat gives -1 (unknown), as in the native sampler: cut before field 22, no parenthesis, not a number', () => {
    for (const text of [
      '41872 (python3) S 1 1 1 0 -1 4194560 0 0\n',
      '41872 python3 S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 64 0 1000 0 0\n',
      '41872 (python3) S 1 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 64 0 12x4 0 0\n',
    ]) {
      const h = host();
      h.stat(42117, 5000);
      fs.mkdirSync(path.join(h.proc, '41872'), { recursive: true });
      fs.writeFileSync(path.join(h.proc, '41872', 'stat'), text);
      expect(pairs(new PidStartReader(h.proc).read(readKfdProcsRaw(h.sysfs, 'ts')))).toEqual([41872, -1, 42117, 5000]);
    }
  });

  it('a process that leaves and comes back is read again; a queue row order of another process does not matter', () => {
    const h = host();
    h.stat(41872, 1000);
    h.stat(42117, 5000);
    const r = new PidStartReader(h.proc);
    const procDir = path.join(h.sysfs, 'class/kfd/kfd/proc');
    expect(pairs(r.read(readKfdProcsRaw(h.sysfs, 'ts')))).toEqual([41872, 1000, 42117, 5000]);
    // 41872 gone: 42117's rows now start at another index, which is no change of its own
    fs.renameSync(path.join(procDir, '41872'), path.join(procDir, '..', 'aside'));
    expect(pairs(r.read(readKfdProcsRaw(h.sysfs, 'ts')))).toBeUndefined();
    fs.renameSync(path.join(procDir, '..', 'aside'), path.join(procDir, '41872'));
    expect(pairs(r.read(readKfdProcsRaw(h.sysfs, 'ts')))).toEqual([41872, 1000]);
  });
});

describe.each(IMPLS)('%s sampler with procRoot', (impl) => {
  it('the first sample carries the start times of every process; unchanged samples none', async () => {
    const h = host();
    h.stat(41872, 1000);
    h.stat(42117, 2000);
    const samples: NativeSample[] = [];
    await new Promise<void>((resolve) => {
      const s = startSampler({ sysfsRoot: h.sysfs, debugfsRoot: '/nonexistent', procRoot: h.proc, intervalNs: 2e6, debugfsEvery: 0, maxSamples: 3, impl }, (x) => samples.push(x));
      void s.done.then(resolve);
    });
    expect(samples.map((x) => pairs(x.pidStarts))).toEqual([[41872, 1000, 42117, 2000], undefined, undefined]);
  });
});
