/** A host tree (sys, sys/kernel/debug, proc) tests can change while a tracer samples it. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './impls.js';

export const EXAMPLE = path.join(ROOT, 'examples/kfd-mi300x');

export class KfdTree {
  readonly root: string;
  constructor() {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-tree-'));
    fs.cpSync(EXAMPLE, this.root, { recursive: true });
  }
  get sysfs(): string {
    return path.join(this.root, 'sys');
  }
  get debugfs(): string {
    return path.join(this.root, 'sys/kernel/debug');
  }
  get proc(): string {
    return path.join(this.root, 'proc');
  }
  private procDir(pid: number): string {
    return path.join(this.sysfs, 'class/kfd/kfd/proc', String(pid));
  }
  /** Like sysfs: a directory appears whole (built aside, then renamed into place). */
  addQueue(pid: number, qid: number, type = 0, gpuid = 31774, size = 1048576): void {
    const tmp = path.join(this.root, `.q-${pid}-${qid}`);
    fs.mkdirSync(tmp, { recursive: true });
    fs.writeFileSync(path.join(tmp, 'type'), String(type));
    fs.writeFileSync(path.join(tmp, 'size'), String(size));
    fs.writeFileSync(path.join(tmp, 'gpuid'), String(gpuid));
    fs.mkdirSync(path.join(this.procDir(pid), 'queues'), { recursive: true });
    fs.renameSync(tmp, path.join(this.procDir(pid), 'queues', String(qid)));
  }
  removeQueue(pid: number, qid: number): void {
    fs.rmSync(path.join(this.procDir(pid), 'queues', String(qid)), { recursive: true, force: true });
  }
  removeProcess(pid: number): void {
    fs.rmSync(this.procDir(pid), { recursive: true, force: true });
  }
  /** Replaces a debugfs file atomically (a reader never sees half of it). */
  writeDebugfs(name: 'mqds' | 'hqds' | 'rls', text: string): void {
    const f = path.join(this.debugfs, 'kfd', name);
    fs.writeFileSync(`${f}.tmp`, text);
    fs.renameSync(`${f}.tmp`, f);
  }
  readDebugfs(name: 'mqds' | 'hqds' | 'rls'): string {
    return fs.readFileSync(path.join(this.debugfs, 'kfd', name), 'latin1');
  }
  dispose(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

/** hqds text with the CP slots (pipe, queue) of every Inst made inactive (CP_HQD_ACTIVE = 0). */
export function deactivateSlot(hqds: string, pipe: number, queue: number): string {
  const lines = hqds.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (/^ Inst \d+, {2}CP Pipe (\d+), Queue (\d+)$/.test(lines[i])) {
      const m = /CP Pipe (\d+), Queue (\d+)$/.exec(lines[i])!;
      if (Number(m[1]) === pipe && Number(m[2]) === queue) {
        const w = lines[i + 1].split(' ');
        // "    0000c914: base lo hi active ..." -> third value
        const idx = w.findIndex((x) => x.endsWith(':')) + 3;
        w[idx] = '00000000';
        lines[i + 1] = w.join(' ');
      }
    }
  }
  return lines.join('\n');
}

/** mqds text with the queue priority of the compute queue whose XCC MQDs start at `mqdBase` changed. */
export function setMqdPriority(mqds: string, mqdBase: number, pipePrio: number, queuePrio: number, numXcc = 4): string {
  const addrs = new Set(Array.from({ length: numXcc }, (_, x) => (mqdBase + x * 0x3000).toString(16).padStart(8, '0')));
  return mqds
    .split('\n')
    .map((l) => {
      const m = /^ {4}00000200: ([0-9a-f]{8}) /.exec(l);
      if (!m || !addrs.has(m[1])) return l;
      const w = l.trim().split(' ');
      // w[0] = "00000200:", dw128.. => w[6] = dw133, w[7] = dw134
      w[6] = pipePrio.toString(16).padStart(8, '0');
      w[7] = queuePrio.toString(16).padStart(8, '0');
      return `    ${w.join(' ')}`;
    })
    .join('\n');
}
