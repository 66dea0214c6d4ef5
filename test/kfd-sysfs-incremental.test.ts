/**
 * The incremental proc-tree walker (native/kfd/sysfs_procs.cc and its twin src/kfd/sysfs-procs.ts)
 * against the full walk, on recorded sequences of trees: every read equals a full walk of the same
 * tree (counters every read), queue ids and pids reused under a new inode are new, counters follow
 * their own pace, damaged files give their issues at every read, and the cost follows what changed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadNative } from '../src/native.js';
import { PROCS_METRIC_COLS, ProcMetric, type ProcsRaw } from '../src/kfd/raw.js';
import { ProcsWalkerTs } from '../src/kfd/sysfs-procs.js';
import { readKfdProcsTs } from '../src/kfd/sysfs-reader.js';
import { IMPLS, SYSFS } from './helpers/impls.js';
import { SampleAssembler } from '../src/trace/assemble.js';
import { EventDeriver } from '../src/trace/events.js';
import { readTopology } from '../src/kfd/parse.js';
import { ProcsMetricCol } from '../src/kfd/columns.js';

const P = 'class/kfd/kfd/proc';

interface Walker {
  read(pids?: number[] | null): ProcsRaw;
  stats(): { processes: number; processesRead: number; queuesRead: number; queuesReused: number };
}

function walker(impl: 'native' | 'ts', sysfsRoot: string, sysfsWalk: 'incremental' | 'full', countersEvery = 1): Walker {
  if (impl === 'native') return loadNative()!.createProcsWalker({ sysfsRoot, sysfsWalk, countersEvery });
  const w = new ProcsWalkerTs(sysfsRoot, { walk: sysfsWalk, countersEvery });
  return { read: (pids) => w.read(pids), stats: () => w.lastStats() };
}

/** tables as plain arrays, for toEqual and readable diffs */
const plain = (p: ProcsRaw) => ({ procs: [...p.procs], queues: [...p.queues], metrics: [...p.metrics], issues: p.issues });

/** A copy of the fixture sysfs tree that a test changes the way KFD does. */
class Tree {
  readonly root = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-incr-'));
  private n = 0;
  constructor() {
    fs.cpSync(SYSFS, this.root, { recursive: true });
  }
  proc(pid: number): string {
    return path.join(this.root, P, String(pid));
  }
  write(rel: string, text: string): void {
    const f = path.join(this.proc(0), '..', rel);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, text);
  }
  /** A directory built aside and renamed into place, as sysfs shows a new one whole. */
  private place(target: string, files: Record<string, string>): void {
    const tmp = path.join(this.root, `.new-${this.n++}`);
    for (const [name, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(tmp, name)), { recursive: true });
      fs.writeFileSync(path.join(tmp, name), text);
    }
    // the old directory is moved away before the new one takes its name and removed after: both
    // exist at once, so the new one cannot get the old one's inode (ext4 reuses freed inodes; the
    // kernel's sysfs never does, its inode numbers carry a generation)
    const old = fs.existsSync(target) ? path.join(this.root, `.old-${this.n++}`) : null;
    if (old) fs.renameSync(target, old);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.renameSync(tmp, target);
    if (old) fs.rmSync(old, { recursive: true });
  }
  queue(pid: number, qid: number, type: number | string, gpuid = 31774, size: number | string = 1048576): void {
    this.place(path.join(this.proc(pid), 'queues', String(qid)), { type: String(type), size: String(size), gpuid: String(gpuid) });
  }
  removeQueue(pid: number, qid: number): void {
    fs.rmSync(path.join(this.proc(pid), 'queues', String(qid)), { recursive: true });
  }
  process(pid: number, pasid: number, vram: number, queues: Record<number, number>): void {
    const files: Record<string, string> = { pasid: `${pasid}\n`, vram_31774: `${vram}\n`, sdma_31774: '0\n', 'stats_31774/cu_occupancy': '0\n', 'stats_31774/evicted_ms': '0\n' };
    for (const [qid, type] of Object.entries(queues)) Object.assign(files, { [`queues/${qid}/type`]: String(type), [`queues/${qid}/size`]: '4096', [`queues/${qid}/gpuid`]: '31774' });
    this.place(this.proc(pid), files);
  }
  removeProcess(pid: number): void {
    fs.rmSync(this.proc(pid), { recursive: true });
  }
  dispose(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

let trees: Tree[] = [];
const newTree = (): Tree => {
  const t = new Tree();
  trees.push(t);
  return t;
};
afterEach(() => {
  trees.forEach((t) => t.dispose());
  trees = [];
});

/** The recorded sequence: each step changes the tree as a live host would between two samples. */
const STEPS: [string, (t: Tree) => void][] = [
  ['unchanged', () => {}],
  ['a queue is created', (t) => t.queue(41872, 7, 2)],
  ['a queue is destroyed', (t) => t.removeQueue(41872, 1)],
  ['queue id 7 destroyed and recreated as another queue', (t) => t.queue(41872, 7, 1, 31774, 8192)],
  ['a process starts with two queues', (t) => t.process(50001, 0x8005, 4096, { 0: 0, 1: 1 })],
  ['counters change', (t) => t.write('41872/vram_31774', '123456789\n')],
  // a queue's files are fixed while its directory lives: a damaged one comes with a new directory
  ['a queue is created with a damaged file', (t) => t.queue(41872, 8, 0, 31774, 'banana')],
  ['a counter file is damaged', (t) => t.write('42117/sdma_31774', '12x\n')],
  ['the damaged queue is recreated whole, the counter repaired', (t) => (t.queue(41872, 8, 0, 31774, 4096), t.write('42117/sdma_31774', '0\n'))],
  ['a queue is created without its gpuid file', (t) => (t.queue(41872, 9, 1), fs.rmSync(path.join(t.proc(41872), 'queues/9/gpuid')))],
  ['a process exits', (t) => t.removeProcess(42117)],
  ['its pid is reused by another process', (t) => t.process(42117, 0x9001, 1, { 3: 2 })],
  ['a new GPU file appears in a process directory', (t) => t.write('50001/vram_48153', '77\n')],
  ['every process exits', (t) => [41872, 42117, 50001].forEach((p) => t.removeProcess(p))],
];

describe.each(IMPLS)('%s incremental proc walk', (impl) => {
  it('equals a full walk at every step of a recorded sequence of trees (counters every read)', () => {
    const t = newTree();
    const inc = walker(impl, t.root, 'incremental');
    for (const [what, change] of STEPS) {
      change(t);
      const full = plain(readKfdProcsTs(t.root));
      expect(plain(inc.read()), what).toEqual(full);
      // and the full walk of the other language agrees too
      if (impl === 'native') expect(plain(walker('native', t.root, 'full').read()), what).toEqual(full);
    }
  });

  it('gives the same trace records (samples and events) as the full walk over the sequence', () => {
    const t = newTree();
    const topology = readTopology({ sysfsRoot: t.root, impl });
    const traceOf = (w: Walker) => {
      const assembler = new SampleAssembler({ topology, procRoot: path.join(t.root, 'no-proc'), impl });
      const deriver = new EventDeriver();
      return (seq: number) => {
        const s = assembler.assemble({ seq, intendedNs: seq * 1e6, actualNs: seq * 1e6, readNs: 0, parseNs: 0, missed: 0, dropped: 0, procs: w.read() });
        const { join_ns: _ignored, ...sample } = s;
        return [sample, deriver.update(s)];
      };
    };
    const inc = traceOf(walker(impl, t.root, 'incremental'));
    const full = traceOf(walker(impl, t.root, 'full'));
    let events = 0;
    STEPS.forEach(([what, change], seq) => {
      change(t);
      const a = inc(seq);
      expect(a, what).toEqual(full(seq));
      events += (a[1] as unknown[]).length;
    });
    expect(events).toBeGreaterThan(10); // the sequence does create and destroy queues and processes
  });

  it('reads only what is new: no queue file of a known queue, the files of a new one', () => {
    const t = newTree();
    const w = walker(impl, t.root, 'incremental', 1000);
    w.read();
    expect(w.stats()).toEqual({ processes: 2, processesRead: 2, queuesRead: 4, queuesReused: 0 });
    w.read();
    expect(w.stats()).toEqual({ processes: 2, processesRead: 0, queuesRead: 0, queuesReused: 4 });
    t.queue(41872, 9, 1);
    w.read();
    expect(w.stats()).toEqual({ processes: 2, processesRead: 0, queuesRead: 1, queuesReused: 4 });
  });

  it('a queue id destroyed and recreated between two reads (a new inode) is a new queue', () => {
    const t = newTree();
    const w = walker(impl, t.root, 'incremental', 1000);
    const before = w.read();
    const q0 = [...before.queues].slice(0, 5);
    expect(q0).toEqual([0, 0, 0, 1048576, 31774]); // process row 0 (41872), qid 0, compute
    t.queue(41872, 0, 2, 31774, 8192);
    const after = w.read();
    expect([...after.queues].slice(0, 5)).toEqual([0, 0, 2, 8192, 31774]);
    expect(w.stats().queuesRead).toBe(1);
  });

  it('a process that exits and whose pid is reused is read as new (pasid, counters, queues)', () => {
    const t = newTree();
    const w = walker(impl, t.root, 'incremental', 1000);
    w.read();
    t.removeProcess(42117);
    const gone = w.read();
    expect([...gone.procs].filter((_, i) => i % 6 === 0)).toEqual([41872]);
    t.process(42117, 0x9001, 5, { 3: 2 });
    const back = w.read();
    const row = [...back.procs].slice(6, 12);
    expect(row.slice(0, 2)).toEqual([42117, 0x9001]);
    expect([...back.queues].slice(-5)).toEqual([1, 3, 2, 4096, 31774]);
    expect(w.stats()).toMatchObject({ processesRead: 1, queuesRead: 1 });
  });

  it('counters follow their own pace: repeated in between, read at every countersEvery-th read; a new process is read at once', () => {
    const t = newTree();
    const w = walker(impl, t.root, 'incremental', 3);
    const vram = (p: ProcsRaw): number[] => {
      const out: number[] = [];
      for (let i = 0; i < p.metrics.length; i += PROCS_METRIC_COLS) if (p.metrics[i + ProcsMetricCol.metric] === ProcMetric.vram) out.push(p.metrics[i + ProcsMetricCol.value]);
      return out;
    };
    const first = vram(w.read()); // read 0: counters due
    t.write('41872/vram_31774', '999\n');
    expect(vram(w.read())).toEqual(first); // read 1
    t.process(50001, 1, 4242, {});
    const third = w.read(); // read 2: the new process comes whole, the known one repeats its counters
    expect(vram(third)).toEqual([...first, 4242]);
    expect(vram(w.read())[0]).toBe(999); // read 3: counters due
  });

  it('a damaged queue file gives its issue at every read, never remembered', () => {
    const t = newTree();
    t.write('41872/queues/1/type', 'zz');
    const w = walker(impl, t.root, 'incremental', 1000);
    for (let i = 0; i < 3; i++) {
      const p = w.read();
      expect(p.issues.map((x) => x.message)).toEqual([`${t.root}/${P}/41872/queues/1/type: expected a number, got "zz"`]);
    }
    expect(w.stats()).toMatchObject({ queuesRead: 1, queuesReused: 3 });
  });

  it('the pid filter applies to both walks alike', () => {
    const t = newTree();
    const w = walker(impl, t.root, 'incremental');
    expect(plain(w.read([42117]))).toEqual(plain(readKfdProcsTs(t.root, [42117])));
    expect(plain(w.read([41872, 42117]))).toEqual(plain(readKfdProcsTs(t.root)));
  });

  it('a proc directory that cannot be listed: one issue, and what was known is forgotten', () => {
    const t = newTree();
    const w = walker(impl, t.root, 'incremental', 1000);
    w.read();
    fs.renameSync(path.join(t.root, P), path.join(t.root, 'elsewhere'));
    const p = w.read();
    expect(p.issues.map((i) => i.code)).toEqual(['ENOENT']);
    fs.renameSync(path.join(t.root, 'elsewhere'), path.join(t.root, P));
    w.read();
    expect(w.stats()).toMatchObject({ processesRead: 2, queuesRead: 4 });
  });
});
