/**
 * Synthesizes KFD debugfs text (mqds, hqds, rls) for arbitrary scenarios, in the kernel's formats
 * (docs/kfd-formats.md; the same format strings as the fixtures of test/fixtures/kfd/README.upstream.md, but parametrised), so
 * tests can build variants the shared fixtures do not show — older headers, pre-9.4.3 single-XCC
 * dumps, 8-node machines, the SDMA repeat quirk — and know the ground truth of each.
 */

export interface SynthNode {
  node: number;
  gpuId: number;
  numXcc: number;
}

export interface SynthQueue {
  pid: number;
  kind: 'compute' | 'sdma';
  /** index into scenario.nodes */
  gpu: number;
  /** compute: XCC0 MQD GART address (next XCC +0x3000) */
  mqd: number;
  ring: number;
  doorbell: number;
  /** compute: 0..15 */
  priority: number;
  /** compute: mapped HQD (pipe, queue) on every XCC; null = not mapped */
  slot: [number, number] | null;
  /** sdma: engine/rlc */
  engine?: number;
  rlc?: number;
  /** sdma: RB_ENABLE in the RLC */
  sdmaActive?: boolean;
}

export interface SynthScenario {
  nodes: SynthNode[];
  /** process order as printed in mqds; queues of a process are printed newest (last) first */
  pids: number[];
  queues: SynthQueue[];
  /** 'dkms': "PASID <pid>" ; 'hex': "PASID 0x<pasid>" ; 'dec': "PASID <pasid>" (old kernels) */
  header: 'dkms' | 'hex' | 'dec';
  /** GC 9.4.3 prints "Inst N," ; older kernels do not */
  instPrinted: boolean;
  /** 21 (aldebaran, GC 9.4.2+) or 16 (v9) dword MAP_PROCESS */
  mapProcessDwords: 16 | 21;
  /** replicate the stale num_xccs quirk for SDMA queues printed after a compute queue */
  sdmaQuirk: boolean;
  /** nodes whose runlist is not allocated */
  noRunlist?: number[];
}

export const MQD_STRIDE = 0x3000;
const CP_PIPES = [0, 1, 2, 3];
const CP_QUEUES = [2, 3, 4, 5, 6, 7];

const h8 = (v: number): string => (v >>> 0).toString(16).padStart(8, '0');
const lo = (v: number): number => Number(BigInt(v) & 0xffffffffn);
const hi = (v: number): number => Number(BigInt(v) >> 32n);

function hexdump(words: number[], prefix: string): string[] {
  const out: string[] = [];
  for (let off = 0; off < words.length; off += 8) {
    out.push(`${prefix}${h8(off * 4)}: ${words.slice(off, off + 8).map(h8).join(' ')}`);
  }
  return out;
}

function regDump(base: number, values: number[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < values.length; i += 8) {
    out.push(`    ${h8(base + i * 4)}: ${values.slice(i, i + 8).map(h8).join(' ')}`);
  }
  return out;
}

const pipePrio = (p: number): number => (p <= 6 ? 0 : p <= 10 ? 1 : 2);

export function computeMqd(q: SynthQueue, xcc: number): number[] {
  const m = new Array<number>(512).fill(0);
  m[0] = 0xc0310800;
  m[11] = 1;
  m[20] = 0x40;
  m[23] = m[24] = m[26] = m[27] = 0xffffffff;
  m[39] = xcc;
  const a = q.mqd + xcc * MQD_STRIDE;
  m[128] = lo(a);
  m[129] = hi(a);
  m[130] = q.slot ? 1 : 0;
  m[132] = 0x40005301;
  m[133] = pipePrio(q.priority);
  m[134] = q.priority;
  m[135] = 0x111;
  const base = Math.floor(q.ring / 256);
  m[136] = lo(base);
  m[137] = hi(base);
  m[143] = (q.doorbell << 2) | 2;
  m[145] = xcc === 0 ? 0x14014511 : 0x1c014511;
  m[181] = 1;
  return m;
}

export function sdmaMqd(q: SynthQueue): number[] {
  const m = new Array<number>(128).fill(0);
  m[0] = (18 << 1) | (1 << 12);
  const base = Math.floor(q.ring / 256);
  m[1] = lo(base);
  m[2] = hi(base);
  m[22] = q.doorbell << 2;
  m[27] = 0xf;
  m[126] = q.engine ?? 0;
  m[127] = q.rlc ?? 0;
  return m;
}

export function synthMqds(s: SynthScenario): string {
  const lines: string[] = [];
  for (const pid of s.pids) {
    const pasid = s.header === 'dkms' ? String(pid) : s.header === 'hex' ? `0x${(0x8000 + (pid % 0x1000)).toString(16)}` : String(0x8000 + (pid % 0x1000));
    lines.push(`Process ${pid} PASID ${pasid}:`);
    const mine = s.queues.filter((q) => q.pid === pid).reverse(); // newest first
    let numXccs = 1; // the kernel's stale variable (pqm_debugfs_mqds)
    for (const q of mine) {
      const node = s.nodes[q.gpu];
      if (q.kind === 'compute') {
        lines.push(`  Compute queue on device ${node.gpuId.toString(16)}`);
        numXccs = node.numXcc;
        for (let x = 0; x < node.numXcc; x++) lines.push(...hexdump(computeMqd(q, x), '    '));
      } else {
        lines.push(`  SDMA queue on device ${node.gpuId.toString(16)}`);
        const copies = s.sdmaQuirk ? numXccs : 1;
        for (let c = 0; c < copies; c++) lines.push(...hexdump(c === 0 ? sdmaMqd(q) : new Array(128).fill(c), '    '));
      }
    }
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

export function synthHqds(s: SynthScenario): string {
  const lines: string[] = [];
  for (let g = 0; g < s.nodes.length; g++) {
    const node = s.nodes[g];
    lines.push(`Node ${node.node}, gpu_id ${node.gpuId.toString(16)}:`);
    const mapped = s.queues.filter((q) => q.gpu === g && q.kind === 'compute' && q.slot);
    for (let x = 0; x < node.numXcc; x++) {
      const base = 0xc914 + x * 0x40000;
      lines.push(s.instPrinted ? `   Inst ${x}, HIQ on MEC 2 Pipe 0 Queue 0` : '  HIQ on MEC 2 Pipe 0 Queue 0');
      const hiq = new Array<number>(56).fill(0);
      hiq[0] = 0x6e3000 + x * 0x800;
      hiq[2] = 1;
      lines.push(...regDump(base, hiq));
      for (const p of CP_PIPES) {
        for (const qq of CP_QUEUES) {
          lines.push(s.instPrinted ? ` Inst ${x},  CP Pipe ${p}, Queue ${qq}` : `  CP Pipe ${p}, Queue ${qq}`);
          const q = mapped.find((m) => m.slot![0] === p && m.slot![1] === qq);
          const regs = q ? computeMqd(q, x).slice(128, 184) : new Array<number>(56).fill(0);
          if (q) {
            regs[2] = 1;
            regs[3] = 3;
          }
          lines.push(...regDump(base, regs));
        }
      }
    }
    for (let e = 0; e < 2; e++) {
      for (let r = 0; r < 2; r++) {
        lines.push(`  SDMA Engine ${e}, RLC ${r}`);
        const v = new Array<number>(44).fill(0);
        const q = s.queues.find((qq) => qq.gpu === g && qq.kind === 'sdma' && qq.engine === e && qq.rlc === r && qq.sdmaActive);
        if (q) {
          v[0] = 0x03060025;
          v[1] = lo(Math.floor(q.ring / 256));
          v[2] = hi(Math.floor(q.ring / 256));
        }
        const base = 0x4e40 + e * 0x1800 + r * 0x160;
        lines.push(`    ${h8(base)}: ${v.slice(0, 8).map(h8).join(' ')}`);
        lines.push(`    ${h8(base + 32)}: ${v.slice(8, 16).map(h8).join(' ')}`);
        lines.push(`    ${h8(base + 64)}: ${v.slice(16, 19).map(h8).join(' ')}`);
        lines.push(`    ${h8(base + 160)}: ${v.slice(19, 25).map(h8).join(' ')}`);
        lines.push(`    ${h8(base + 188)}: ${v.slice(25, 32).map(h8).join(' ')}`);
        lines.push(`    ${h8(base + 256)}: ${v.slice(32, 40).map(h8).join(' ')}`);
        lines.push(`    ${h8(base + 288)}: ${v.slice(40, 44).map(h8).join(' ')}`);
      }
    }
  }
  return `${lines.join('\n')}\n`;
}

function pm4(opcode: number, dwords: number): number {
  return ((3 << 30) | ((dwords - 2) << 16) | (opcode << 8)) >>> 0;
}

export function synthRls(s: SynthScenario): string {
  const lines: string[] = [];
  for (let g = 0; g < s.nodes.length; g++) {
    const node = s.nodes[g];
    lines.push(`Node ${node.node}, gpu_id ${node.gpuId.toString(16)}:`);
    if (s.noRunlist?.includes(node.node)) {
      lines.push('  No active runlist');
      continue;
    }
    const ib: number[] = [];
    // most recently registered process first
    const procs = [...s.pids].reverse().filter((pid) => s.queues.some((q) => q.pid === pid && q.gpu === g));
    for (const pid of procs) {
      const mp = new Array<number>(s.mapProcessDwords).fill(0);
      mp[0] = pm4(0xa1, s.mapProcessDwords);
      mp[1] = ((0x8000 + (pid % 0x1000)) | (10 << 25)) >>> 0;
      mp[4] = 0x00010002;
      mp[13] = ((1 << 7) | (s.queues.filter((q) => q.pid === pid && q.gpu === g).length << 22)) >>> 0;
      ib.push(...mp);
      const active = s.queues.filter((q) => q.pid === pid && q.gpu === g && (q.kind === 'sdma' ? q.sdmaActive : q.slot)).reverse();
      for (const q of active) {
        const sdma = q.kind === 'sdma';
        const eng = q.engine ?? 0;
        const dw1 = sdma ? (eng < 2 ? (1 << 4) | ((2 + eng) << 26) | (1 << 29) : (1 << 2) | (1 << 4) | ((eng % 8) << 26) | (1 << 29)) : 0x20000010;
        const mqd = sdma ? 0x6e7000 + eng * 0x1000 + (q.rlc ?? 0) * 0x200 : q.mqd;
        ib.push(pm4(0xa2, 7), dw1 >>> 0, q.doorbell << 2, lo(mqd), hi(mqd), 0x9d4f6038, 0x7f3a);
      }
    }
    lines.push(...hexdump(ib, '  '));
  }
  return `${lines.join('\n')}\n`;
}

/** A deterministic pseudo-random scenario (for property tests), seeded. */
export function randomScenario(seed: number, opts: Partial<SynthScenario> = {}): SynthScenario {
  let x = seed >>> 0 || 1;
  const rnd = (n: number): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
  const numNodes = 1 + rnd(3);
  const nodes: SynthNode[] = [];
  for (let i = 0; i < numNodes; i++) nodes.push({ node: 2 + i, gpuId: 0x1000 + rnd(0xe000), numXcc: opts.instPrinted === false ? 1 : [1, 2, 4, 8][rnd(4)] });
  const pids = Array.from({ length: 1 + rnd(4) }, (_, i) => 1000 + i * 17 + rnd(10));
  const queues: SynthQueue[] = [];
  const used = new Set<string>();
  let mqd = 0x700000;
  for (const [pi, pid] of pids.entries()) {
    // each process owns a doorbell page: indexes are unique per device, as on real KFD
    const page = 0x1000 + pi * 0x400;
    const n = 1 + rnd(4);
    for (let k = 0; k < n; k++) {
      const gpu = rnd(numNodes);
      if (rnd(4) === 0) {
        // KFD allocates SDMA (engine, queue) pairs uniquely per device
        const engine = rnd(2);
        const rlc = rnd(2);
        const key = `s${gpu}/${engine}/${rlc}`;
        if (used.has(key)) continue;
        used.add(key);
        const active = rnd(3) !== 0;
        queues.push({ pid, kind: 'sdma', gpu, mqd: 0, ring: 0x7f0000000000 + rnd(0xffff) * 0x10000, doorbell: page + 0x100 + k * 8, priority: 0, slot: null, engine, rlc, sdmaActive: active });
      } else {
        let slot: [number, number] | null = null;
        if (rnd(5) !== 0) {
          for (let tries = 0; tries < 24 && !slot; tries++) {
            const cand: [number, number] = [rnd(4), 2 + rnd(6)];
            if (!used.has(`c${gpu}/${cand}`)) {
              used.add(`c${gpu}/${cand}`);
              slot = cand;
            }
          }
        }
        mqd += 0x3000 * 8 + 0x1000 * rnd(4);
        queues.push({ pid, kind: 'compute', gpu, mqd, ring: 0x7f0000000000 + rnd(0xffff) * 0x100000, doorbell: page + k * 2, priority: rnd(16), slot });
      }
    }
  }
  return {
    nodes,
    pids,
    queues,
    header: (['dkms', 'hex', 'dec'] as const)[rnd(3)],
    instPrinted: true,
    mapProcessDwords: rnd(2) ? 21 : 16,
    sdmaQuirk: true,
    ...opts,
  };
}

export interface ExpectedQueue {
  kind: 'compute' | 'sdma';
  gpuId: string;
  priority: number | null;
  /** "inst/pipe/queue" of every mapped XCC */
  slots: string[];
  sdma: string | null;
  inRunlist: boolean | null;
}

/** Ground truth of the join for a scenario: per pid, queues oldest first. */
export function expectedJoin(s: SynthScenario): Map<number, ExpectedQueue[]> {
  const out = new Map<number, ExpectedQueue[]>();
  for (const pid of s.pids) {
    out.set(
      pid,
      s.queues
        .filter((q) => q.pid === pid)
        .map((q) => {
          const node = s.nodes[q.gpu];
          const noRl = s.noRunlist?.includes(node.node) ?? false;
          if (q.kind === 'compute') {
            return {
              kind: 'compute' as const,
              gpuId: node.gpuId.toString(16),
              priority: q.priority,
              slots: q.slot ? Array.from({ length: node.numXcc }, (_, x) => `${x}/${q.slot![0]}/${q.slot![1]}`) : [],
              sdma: null,
              inRunlist: noRl ? false : Boolean(q.slot),
            };
          }
          return {
            kind: 'sdma' as const,
            gpuId: node.gpuId.toString(16),
            priority: null,
            slots: [],
            sdma: q.sdmaActive ? `${q.engine}/${q.rlc}` : null,
            inRunlist: noRl ? false : Boolean(q.sdmaActive),
          };
        }),
    );
  }
  return out;
}

// ------------------------------------------------------------------------------ damaged dumps
// Real-format text cut, repeated or re-encoded the way shell loops and pasted logs damage it.

/** The first n lines of text, each with its newline: a dump cut at a line boundary. */
export function cutAfterLines(text: string, n: number): string {
  const lines = text.split('\n');
  return lines.slice(0, n).map((l) => `${l}\n`).join('');
}

/** text up to, not including, the first line (after line `from`, 0-based) that starts with `marker`. */
export function cutBeforeLine(text: string, marker: string, from = 0): string {
  const lines = text.split('\n');
  const at = lines.findIndex((l, i) => i >= from && l.startsWith(marker));
  if (at < 0) throw new Error(`cutBeforeLine: no line starts with ${JSON.stringify(marker)}`);
  return cutAfterLines(text, at);
}

/** 1-based line number of the first line that starts with `marker`. */
export function lineOf(text: string, marker: string): number {
  const at = text.split('\n').findIndex((l) => l.startsWith(marker));
  if (at < 0) throw new Error(`lineOf: no line starts with ${JSON.stringify(marker)}`);
  return at + 1;
}

const QUEUE_HEADER = /^ {2}(?:Compute queue|SDMA queue|DIQ) on device /;

/**
 * mqds text that stops after `dwords` dwords of MQD block `block` of the `queue`-th queue header
 * (0-based, file order): what a dump that stopped at dword 40 or 88 looks like. The lines before
 * are whole; the last one keeps its first dwords % 8 words (still a well-formed dump line).
 */
export function cutMqdAtDword(text: string, queue: number, block: number, dwords: number): string {
  const lines = text.split('\n');
  const headers = lines.flatMap((l, i) => (QUEUE_HEADER.test(l) ? [i] : []));
  if (queue >= headers.length) throw new Error(`cutMqdAtDword: no queue ${queue}`);
  const starts: number[] = [];
  for (let i = headers[queue] + 1; i < lines.length && lines[i].startsWith('    '); i++) if (lines[i].startsWith('    00000000:')) starts.push(i);
  if (block >= starts.length) throw new Error(`cutMqdAtDword: queue ${queue} has no block ${block}`);
  const at = starts[block] + Math.floor(dwords / 8);
  const keep = dwords % 8;
  const out = lines.slice(0, at).map((l) => `${l}\n`);
  if (keep) out.push(`${lines[at].slice(0, 4 + 9 + keep * 9)}\n`);
  return out.join('');
}

/** hqds text that stops inside the first register line of the slot whose header is `header`, after `regs` values. */
export function cutHqdSlot(text: string, header: string, regs: number): string {
  const lines = text.split('\n');
  const at = lines.indexOf(header);
  if (at < 0) throw new Error(`cutHqdSlot: no slot header ${JSON.stringify(header)}`);
  return [...lines.slice(0, at + 1).map((l) => `${l}\n`), `${lines[at + 1].slice(0, 4 + 9 + regs * 9)}\n`].join('');
}

/** CR LF line ends (a file that went through Windows or a paste). */
export const crlf = (text: string): string => text.replace(/\n/g, '\r\n');

/** Two `cat` outputs appended (a loop writing with >>, a paste repeated). */
export const appended = (a: string, b: string = a): string => a + b;

/** hqds or rls text without the section of node `node` (its `Node` line up to the next one). */
export function dropNodeSection(text: string, node: number): string {
  const lines = text.split('\n');
  const out: string[] = [];
  let skip = false;
  for (const l of lines) {
    if (l.startsWith('Node ')) skip = l.startsWith(`Node ${node},`);
    if (!skip) out.push(l);
  }
  return out.join('\n');
}
