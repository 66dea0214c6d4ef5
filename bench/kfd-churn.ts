/**
 * A KFD host tree that changes like a live GPU's, for bench/trace.ts: the example host
 * (examples/kfd-mi300x: MI300-class node 2, gpu_id 7c1e, 4 XCCs; processes 41872 and 42117)
 * with its debugfs kfd/{mqds,hqds,rls} and the sysfs proc queues rewritten, step after step, from
 * a cycle of CHURN_STEPS variants built with the kernel's format strings (test/helpers/kfd-synth):
 *
 *  - ring pointers move every step: CP_HQD_PQ_RPTR/WPTR of every mapped HQD, RB_RPTR/WPTR of
 *    every enabled SDMA RLC, and the rptr dword of every compute MQD;
 *  - active bits move: one queue of 41872 alternates between two HQD slots every step; its SDMA
 *    queue is enabled on two steps of four; a queue of 42117 is mapped on four steps of eight;
 *  - queues come and go: 42117 has a second compute queue on two steps of four (in mqds, hqds,
 *    rls and as sysfs proc/42117/queues/1);
 *  - cu_occupancy of both processes changes every step (the sysfs proc tables change too).
 *
 * So any two consecutive steps differ in mqds, hqds and the proc tables (rls, the runlist, changes
 * with the set of mapped queues: every other step), and a sampler that sees a new step parses and
 * joins again. A writer process
 * (bench/kfd-churn-writer.mjs) applies the steps on its own schedule; applyChurnStep() does the
 * same in-process (tests).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { synthHqds, synthMqds, synthRls, type SynthQueue, type SynthScenario } from '../test/helpers/kfd-synth.js';
// shared with the writer process (plain JavaScript, so that it starts as a bare node)
import { applySysfs, replaceFile } from './kfd-churn-writer.mjs';

export { applySysfs };

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const EXAMPLE = path.resolve(HERE, '../examples/kfd-mi300x');
export const WRITER = path.join(HERE, 'kfd-churn-writer.mjs');

/** variants in one cycle; consecutive steps (and any two closer than this) differ */
export const CHURN_STEPS = 16;
const GPU = { node: 2, gpuId: 0x7c1e, numXcc: 4 };
const GPU_DEC = String(GPU.gpuId); // 31774, as sysfs names it
const P1 = 41872;
const P2 = 42117;

/** A queue of one step as sysfs shows it: proc/<pid>/queues/<qid>/{type,size,gpuid}. */
export interface SysfsQueue {
  qid: number;
  /** KFD queue type: 0 compute, 1 SDMA */
  type: number;
}

export interface ChurnStep {
  step: number;
  scenario: SynthScenario;
  mqds: string;
  hqds: string;
  rls: string;
  /** per pid, its queues in sysfs (qids in creation order) */
  sysfs: Record<number, SysfsQueue[]>;
  /** per pid, proc/<pid>/stats_31774/cu_occupancy */
  cuOccupancy: Record<number, number>;
}

const mod = (x: number, n: number): number => ((x % n) + n) % n;
const h8 = (v: number): string => (v >>> 0).toString(16).padStart(8, '0');

/** The queues of step k (creation order per process). */
export function churnScenario(step: number): SynthScenario {
  const k = mod(step, CHURN_STEPS);
  const q = (x: Partial<SynthQueue> & Pick<SynthQueue, 'pid' | 'kind' | 'mqd' | 'doorbell'>): SynthQueue => ({
    gpu: 0,
    ring: 0x7f0000000000,
    priority: 7,
    slot: null,
    ...x,
  });
  const queues: SynthQueue[] = [
    q({ pid: P1, kind: 'compute', mqd: 0x00a00000, doorbell: 0x1000, ring: 0x7f1200000000, priority: 7, slot: [0, 2] }),
    q({ pid: P1, kind: 'compute', mqd: 0x00a18000, doorbell: 0x1002, ring: 0x7f1210000000, priority: 15, slot: k % 2 === 0 ? [1, 3] : [2, 4] }),
    q({ pid: P1, kind: 'sdma', mqd: 0, doorbell: 0x1100, ring: 0x7f1220000000, engine: 0, rlc: 0, sdmaActive: k % 4 < 2 }),
    q({ pid: P2, kind: 'compute', mqd: 0x00a30000, doorbell: 0x1400, ring: 0x7f2200000000, priority: 7, slot: k % 8 < 4 ? [0, 3] : null }),
  ];
  if (k % 4 < 2) queues.push(q({ pid: P2, kind: 'compute', mqd: 0x00a48000, doorbell: 0x1402, ring: 0x7f2210000000, priority: 11, slot: [3, 5] }));
  return { nodes: [GPU], pids: [P1, P2], queues, header: 'dkms', instPrinted: true, mapProcessDwords: 21, sdmaQuirk: true };
}

/** Replaces word `idx` (0-based, after the "address:" token) of a hex dump line. */
function setWord(line: string, idx: number, value: number): string {
  const m = /^(\s*[0-9a-f]{8}: )(.*)$/.exec(line);
  if (!m) throw new Error(`kfd-churn: not a dump line: ${line}`);
  const words = m[2].split(' ');
  if (idx >= words.length) throw new Error(`kfd-churn: no word ${idx} in: ${line}`);
  words[idx] = h8(value);
  return m[1] + words.join(' ');
}

/** Ring pointers of step k: rptr behind wptr on even steps (busy), equal on odd ones (idle). */
const rptrOf = (k: number, salt: number): number => (0x100 + k * 0x40 + salt * 0x1000) & 0x3ffff;
const wptrOf = (k: number, salt: number): number => rptrOf(k, salt) + (k % 2 === 0 ? 0x20 : 0);

/** hqds text of step k with the ring pointers of every mapped HQD and enabled RLC moved. */
function moveHqdsPointers(text: string, s: SynthScenario, k: number): string {
  const lines = text.split('\n');
  const mapped = new Map(s.queues.filter((q) => q.kind === 'compute' && q.slot).map((q, i) => [`${q.slot![0]}/${q.slot![1]}`, i]));
  for (let i = 0; i < lines.length; i++) {
    const cp = /CP Pipe (\d+), Queue (\d+)$/.exec(lines[i]);
    if (cp) {
      const salt = mapped.get(`${cp[1]}/${cp[2]}`);
      if (salt === undefined) continue;
      // 56 registers, 8 per line: CP_HQD_PQ_RPTR is register 10, CP_HQD_PQ_WPTR_LO register 54
      lines[i + 2] = setWord(lines[i + 2], 2, rptrOf(k, salt));
      lines[i + 7] = setWord(lines[i + 7], 6, wptrOf(k, salt));
      continue;
    }
    const sd = /^ {2}SDMA Engine (\d+), RLC (\d+)$/.exec(lines[i]);
    if (sd && s.queues.some((q) => q.kind === 'sdma' && q.sdmaActive && q.engine === Number(sd[1]) && q.rlc === Number(sd[2]))) {
      // RB_CNTL, RB_BASE, RB_BASE_HI, RB_RPTR, RB_RPTR_HI, RB_WPTR, ...
      lines[i + 1] = setWord(setWord(lines[i + 1], 3, rptrOf(k, 9)), 5, wptrOf(k, 9));
    }
  }
  return lines.join('\n');
}

/** mqds text of step k with the saved rptr (dword 138, offset 0x220 of every compute MQD) moved. */
function moveMqdsPointers(text: string, k: number): string {
  return text
    .split('\n')
    .map((l) => (/^ {4}00000220: /.test(l) ? setWord(l, 2, rptrOf(k, 0)) : l))
    .join('\n');
}

/**
 * 'all': queues, slots and pointers change (the steps above); 'pointers': the queues and slots
 * of step 0 stay, only the ring pointers (HQDs, SDMA RLCs, saved MQD rptr) and cu_occupancy move,
 * as on a live GPU whose models keep their queues.
 */
export type ChurnMode = 'all' | 'pointers';

export function churnStep(step: number, mode: ChurnMode = 'all'): ChurnStep {
  const k = mod(step, CHURN_STEPS);
  const s = churnScenario(mode === 'pointers' ? 0 : k);
  const sysfs: Record<number, SysfsQueue[]> = {};
  for (const pid of s.pids) {
    sysfs[pid] = s.queues.filter((q) => q.pid === pid).map((q, qid) => ({ qid, type: q.kind === 'sdma' ? 1 : 0 }));
  }
  return {
    step: k,
    scenario: s,
    mqds: moveMqdsPointers(synthMqds(s), k),
    hqds: moveHqdsPointers(synthHqds(s), s, k),
    rls: synthRls(s),
    sysfs,
    cuOccupancy: { [P1]: 10 + mod(k * 7, 50), [P2]: 3 + mod(k * 5, 40) },
  };
}

/** Every step of the cycle, 0 .. CHURN_STEPS-1. */
export function churnSteps(mode: ChurnMode = 'all'): ChurnStep[] {
  return Array.from({ length: CHURN_STEPS }, (_, k) => churnStep(k, mode));
}

// ------------------------------------------------------------------------------------------------
// the tree

function tmpfsBase(): string {
  return fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
}

/**
 * A copy of the example host tree on tmpfs (/dev/shm when there is one) whose proc queues, debugfs
 * files and cu_occupancy are those of a churn step; the steps are also saved under steps/ with a
 * manifest for the writer process.
 */
export class ChurnTree {
  readonly root: string;
  /** the step the tree shows now (applyChurnStep), -1 before the first */
  step = -1;
  constructor(readonly mode: ChurnMode = 'all') {
    this.root = fs.mkdtempSync(path.join(tmpfsBase(), 'gpucolo-churn-'));
    fs.cpSync(EXAMPLE, path.join(this.root, 'host'), { recursive: true });
    const steps = churnSteps(mode);
    const dir = path.join(this.root, 'steps');
    fs.mkdirSync(dir);
    for (const st of steps) {
      for (const f of ['mqds', 'hqds', 'rls'] as const) fs.writeFileSync(path.join(dir, `${st.step}.${f}`), st[f]);
    }
    const manifest = {
      sysfsProc: path.join(this.sysfs, 'class/kfd/kfd/proc'),
      debugfsKfd: path.join(this.debugfs, 'kfd'),
      gpuId: GPU_DEC,
      steps: steps.map((st) => ({
        files: Object.fromEntries((['mqds', 'hqds', 'rls'] as const).map((f) => [f, path.join(dir, `${st.step}.${f}`)])),
        sysfs: st.sysfs,
        cuOccupancy: st.cuOccupancy,
      })),
    };
    fs.writeFileSync(this.manifest, JSON.stringify(manifest));
    this.apply(0);
  }
  get sysfs(): string {
    return path.join(this.root, 'host/sys');
  }
  get debugfs(): string {
    return path.join(this.root, 'host/sys/kernel/debug');
  }
  get proc(): string {
    return path.join(this.root, 'host/proc');
  }
  get manifest(): string {
    return path.join(this.root, 'steps/manifest.json');
  }
  /** Shows step k (what the writer does on its schedule; as it does it, file by file). */
  apply(step: number): void {
    const st = churnStep(step, this.mode);
    for (const f of ['mqds', 'hqds', 'rls'] as const) replaceFile(path.join(this.debugfs, 'kfd', f), st[f]);
    applySysfs(path.join(this.sysfs, 'class/kfd/kfd/proc'), GPU_DEC, st.sysfs, st.cuOccupancy);
    this.step = st.step;
  }
  dispose(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

export interface ChurnWriterResult {
  steps: number;
  /** CPU time of the writer process, ns */
  cpuNs: number;
  /** steps applied late by one period or more */
  late: number;
}

export interface ChurnWriter {
  child: ChildProcess;
  /** stops it (SIGTERM) and returns what it did */
  stop(): Promise<ChurnWriterResult>;
}

/**
 * Starts bench/kfd-churn-writer.mjs on `tree`: a separate process (its CPU time is not the traced
 * process's), applying step 1, 2, ... every periodMs. Resolves once it has applied its first step.
 */
export async function startChurnWriter(tree: ChurnTree, periodMs: number): Promise<ChurnWriter> {
  const child = spawn(process.execPath, [WRITER, tree.manifest, String(periodMs), String(tree.step + 1)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.setEncoding('utf8');
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (d: string): void => {
      out += d;
      if (out.includes('ready\n')) resolve();
    };
    child.stdout!.on('data', onData);
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`kfd-churn-writer exited with ${code} before its first step`)));
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await ready;
  return {
    child,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      const last = out.trim().split('\n').pop() ?? '';
      try {
        return JSON.parse(last) as ChurnWriterResult;
      } catch {
        throw new Error(`kfd-churn-writer: no result line (got ${JSON.stringify(last)})`);
      }
    },
  };
}
