/**
 * The live data source of `gpucolo top`: the same sampler and queue model as `gpucolo trace`
 * (src/trace/sampler.ts startSampler, src/trace/assemble.ts SampleAssembler, src/trace/events.ts
 * EventDeriver, topology from src/kfd/parse.ts readTopology), kept as a TopSnapshot. It adds what
 * a trace does not record: the sysfs counters per process (src/kfd/build.ts buildProcs on the
 * sampler's own tables), process names, and the CP slot layout of each XCC (the slot rows of the
 * full hqds table the sampler parsed), so the grid can tell free slots from the kernel's own.
 */
import fs from 'node:fs';
import { pickImpl, type NativeSample } from '../native.js';
import { GpucoloError } from '../errors.js';
import { buildProcs } from '../kfd/build.js';
import { readTopology } from '../kfd/parse.js';
import { readProcStatus } from '../procfs.js';
import { HQDS_NODE_COLS, HQDS_SLOT_COLS, HqdSlotKind, type HqdsRaw, type ProcsRaw } from '../kfd/raw.js';
import { HqdsNodeCol as N, HqdsSlotCol as S } from '../kfd/columns.js';
import { KFD_PROC, underRoot } from '../kfd/sysfs-reader.js';
import { SampleAssembler } from '../trace/assemble.js';
import { EventDeriver } from '../trace/events.js';
import { startSampler, type Sampler } from '../trace/sampler.js';
import type { TraceGpu } from '../trace/schema.js';
import { debugfsEvery } from '../trace/tracer.js';
import { EVENT_TAIL, type TopProcessInfo, type TopSnapshot, type XccSlots } from './state.js';

export interface LiveOptions {
  sysfsRoot: string;
  debugfsRoot: string;
  procRoot: string;
  intervalNs: number;
  impl?: 'native' | 'ts';
  /** what is watched, for the header line */
  label: string;
  /** the roots are a recorded tree (--root): missing files are "not in the recorded tree" */
  recorded: boolean;
}

/** No KFD source could be read at all (exit 1 in the CLI). */
export class NoKfdError extends GpucoloError {
  constructor(message: string) {
    super(message, { code: 'ENOKFD' });
    this.name = 'NoKfdError';
  }
}

function readableDir(path: string): boolean {
  try {
    fs.readdirSync(path);
    return true;
  } catch {
    return false;
  }
}

function readableFile(path: string): boolean {
  try {
    // O_NONBLOCK: a FIFO in a recorded tree must not wait for a writer
    const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const regular = fs.fstatSync(fd).isFile();
    fs.closeSync(fd);
    return regular;
  } catch {
    return false;
  }
}

/** CP slots per GPU (hex gpu_id) and XCC, from the slot rows of a full hqds table. */
export function slotLayout(raw: HqdsRaw): Map<string, XccSlots> {
  const out = new Map<string, XccSlots>();
  const { nodes, slots } = raw;
  for (let n = 0; n < nodes.length / HQDS_NODE_COLS; n++) {
    const nr = n * HQDS_NODE_COLS;
    const perXcc: XccSlots = new Map();
    out.set((nodes[nr + N.gpuId] >>> 0).toString(16), perXcc);
    for (let s = nodes[nr + N.firstSlot]; s < nodes[nr + N.firstSlot] + nodes[nr + N.slotCount]; s++) {
      const sr = s * HQDS_SLOT_COLS;
      if (slots[sr + S.kind] !== HqdSlotKind.cp) continue;
      const inst = Math.max(0, slots[sr + S.inst]);
      let set = perXcc.get(inst);
      if (!set) perXcc.set(inst, (set = new Set()));
      set.add(`${slots[sr + S.pipe]}/${slots[sr + S.queue]}`);
    }
  }
  return out;
}

const isHqdsTable = (x: NativeSample['hqds']): x is HqdsRaw => x !== undefined && 'slots' in x;

export class LiveSource {
  private readonly assembler: SampleAssembler;
  private readonly deriver = new EventDeriver();
  private readonly impl: 'native' | 'ts';
  private readonly every: number;
  private readonly names = new Map<number, string | null>();
  private snap: TopSnapshot;
  private sampler: Sampler | null = null;
  private lastProcs: { raw: ProcsRaw; out: Map<number, TopProcessInfo> } | null = null;
  private lastHqds: HqdsRaw | null = null;
  private lastCpu: { tNs: number; thread?: number; js?: number } | null = null;

  constructor(private readonly o: LiveOptions) {
    this.impl = pickImpl(o.impl);
    const sysfs = readableDir(underRoot(o.sysfsRoot, KFD_PROC));
    const debugfs = readableFile(underRoot(o.debugfsRoot, 'kfd/mqds'));
    if (!sysfs && !debugfs) {
      const where = o.recorded ? 'the recorded tree has no KFD files' : 'is the amdgpu driver loaded here? (gpucolo doctor explains)';
      throw new NoKfdError(`no KFD data readable under ${underRoot(o.sysfsRoot, KFD_PROC)} or ${underRoot(o.debugfsRoot, 'kfd')}: ${where}`);
    }
    const topology = readTopology({ sysfsRoot: o.sysfsRoot, impl: this.impl });
    const gpus: TraceGpu[] = topology.nodes.filter((n) => n.isGpu).map((n) => ({ node: n.node, gpuId: n.gpuIdHex, name: n.name, gfxTarget: n.gpu!.gfxTarget, numXcc: n.gpu!.numXcc }));
    this.assembler = new SampleAssembler({ topology: gpus.length ? topology : null, procRoot: o.procRoot, impl: this.impl });
    this.every = debugfs ? debugfsEvery(o.intervalNs, null) : 0;
    this.snap = {
      label: o.label,
      gpus,
      sample: null,
      slots: null,
      procs: null,
      events: [],
      cost: { sampler: this.impl === 'native' ? 'native-thread' : 'ts-timer', intervalNs: o.intervalNs, readNs: null, parseNs: null, joinNs: null, samplerCpuShare: null, jsCpuShare: null, missed: 0 },
      missing: this.missingSources(sysfs, debugfs),
      replay: null,
    };
  }

  private missingSources(sysfs: boolean, debugfs: boolean): string[] {
    const gone = this.o.recorded ? 'not in the recorded tree' : 'root only';
    const out: string[] = [];
    if (!debugfs) out.push(`debugfs ${underRoot(this.o.debugfsRoot, 'kfd')} not readable (${gone}): priorities, HQD slots, MQDs and the runlist are unknown; queue ids, types, GPUs, VRAM and counters come from sysfs`);
    if (!sysfs) out.push(`sysfs ${underRoot(this.o.sysfsRoot, KFD_PROC)} not readable: queue ids, VRAM and the per-process counters are unknown`);
    return out;
  }

  current(): TopSnapshot {
    return this.snap;
  }

  /** Samples every interval until stop(); onUpdate gets each new snapshot. */
  start(onUpdate: (s: TopSnapshot) => void): void {
    this.run(0, onUpdate);
  }

  /** One sample, then stop: the snapshot of `--once`. */
  async once(): Promise<TopSnapshot> {
    this.run(1, () => {});
    // the sampler stops itself after its last sample
    await this.sampler!.done;
    return this.snap;
  }

  async stop(): Promise<void> {
    await this.sampler?.stop();
  }

  private run(maxSamples: number, onUpdate: (s: TopSnapshot) => void): void {
    const o = this.o;
    this.sampler = startSampler(
      { sysfsRoot: o.sysfsRoot, debugfsRoot: o.debugfsRoot, intervalNs: o.intervalNs, debugfsEvery: this.every, impl: o.impl, maxSamples },
      (raw) => {
        this.take(raw);
        onUpdate(this.snap);
      },
    );
    this.snap = { ...this.snap, cost: { ...this.snap.cost, sampler: this.sampler.kind } };
  }

  private take(raw: NativeSample): void {
    const sample = this.assembler.assemble(raw);
    const events = this.deriver.update(sample);
    for (const e of events) {
      if (e.event !== 'process-exited') continue;
      this.assembler.forget(e.pid);
      this.names.delete(e.pid);
    }
    if (isHqdsTable(raw.hqds) && raw.hqds !== this.lastHqds) {
      this.lastHqds = raw.hqds;
      this.snap = { ...this.snap, slots: slotLayout(raw.hqds) };
    }
    const all = events.length ? [...this.snap.events, ...events] : this.snap.events;
    const issues = sample.issues.length ? [`${sample.issues.length} issue(s) in the last sample, first: ${sample.issues[0]}`] : [];
    this.snap = {
      ...this.snap,
      sample,
      procs: this.procInfo(raw.procs),
      events: all.length > EVENT_TAIL ? all.slice(all.length - EVENT_TAIL) : all,
      cost: this.cost(raw, sample.join_ns),
      missing: [...this.snap.missing.filter((m) => !m.includes('issue(s) in the last sample')), ...issues],
    };
  }

  /** sysfs counters and names per pid; rebuilt only when the sampler's proc tables changed. */
  private procInfo(raw: ProcsRaw): Map<number, TopProcessInfo> {
    if (this.lastProcs?.raw === raw) return this.lastProcs.out;
    const out = new Map<number, TopProcessInfo>();
    for (const p of buildProcs(raw, this.impl).procs) {
      if (!this.names.has(p.pid)) this.names.set(p.pid, readProcStatus(this.o.procRoot, p.pid)?.name ?? null);
      out.set(p.pid, { name: this.names.get(p.pid) ?? null, gpus: p.gpus });
    }
    this.lastProcs = { raw, out };
    return out;
  }

  /** Read/parse/join time of this sample; CPU shares over the time since the last one. */
  private cost(raw: NativeSample, joinNs: number): TopSnapshot['cost'] {
    const prev = this.lastCpu;
    const now = { tNs: raw.actualNs, thread: raw.threadCpuNs, js: raw.jsCpuNs };
    this.lastCpu = now;
    const share = (a: number | undefined, b: number | undefined): number | null =>
      prev && a !== undefined && b !== undefined && now.tNs > prev.tNs ? Math.max(0, (a - b) / (now.tNs - prev.tNs)) : null;
    return {
      ...this.snap.cost,
      readNs: raw.readNs,
      parseNs: raw.parseNs,
      joinNs,
      samplerCpuShare: share(now.thread, prev?.thread),
      jsCpuShare: share(now.js, prev?.js),
      missed: this.snap.cost.missed + raw.missed,
    };
  }
}
