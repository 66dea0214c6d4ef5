/**
 * Turns a raw sample (tables from either sampler) into a trace `sample` record: builds objects,
 * joins MQDs/HQDs/runlist/sysfs exactly as `gpucolo queues` does, keeps the traced processes and
 * compacts each queue to what the trace records.
 */
import type { JoinSampleDumps, NativeReadError, NativeSample } from '../native.js';
import { GpucoloError } from '../errors.js';
import { buildHqds, buildMqds, buildProcs, buildRls } from '../kfd/build.js';
import {
  joinFromNativeTables,
  joinQueues,
  learnQidHints,
  nativeJoinSysfs,
  packQidHints,
  unpackJoinTables,
  type JoinResult,
  type PackedQidHints,
  type SnapshotProcess,
  type SnapshotQueue,
} from '../kfd/join.js';
import { namespacePid, readProcStatus, type ProcStatus } from '../procfs.js';
import type { HqdsRaw, MqdsRaw, RlsRaw } from '../kfd/raw.js';
import type { KfdProcs, Topology } from '../kfd/types.js';
import type { TraceProcess, TraceQueue, TraceSample } from './schema.js';
import { procsSubset, sysfsDelta } from './assemble-sysfs.js';
import { hqdsChangeIrrelevant, mqdsChangeIrrelevant } from './relevance.js';

export interface AssembleContext {
  topology: Topology | null;
  procRoot: string;
  /** which implementation parsed the tables (labels only) */
  impl: 'native' | 'ts';
  /** keep this pid? (target filter); undefined = every KFD process */
  keep?: (pid: number) => boolean;
  /**
   * The native sampler's join of the sample in onSample now (Sampler.joinDumps): the trace's
   * join runs in C++ on the tables the sampling thread parsed. Without it (the TS sampler,
   * TraceOptions.join 'ts'), or when it declines (not the sample in onSample), objects and
   * joinQueues; both give the same trace (test/trace-native-join.test.ts).
   */
  joinDumps?: JoinSampleDumps;
}

function isReadError(x: unknown): x is NativeReadError {
  return typeof x === 'object' && x !== null && 'code' in x && 'message' in x && !('issues' in x);
}

/**
 * Queue identity for the whole trace: the KFD id when sysfs gives it, else the XCC0 MQD address
 * (compute) or the ring (SDMA), else the doorbell (an MQD block cut before the address), else the
 * ring; a queue none of which was read gets a key of its mqds line, which names it in this sample only.
 */
export function queueKey(pid: number, q: Pick<SnapshotQueue, 'qid' | 'mqdAddresses' | 'ringBase' | 'type' | 'doorbell'> & Partial<Pick<SnapshotQueue, 'mqdsLine'>>): string {
  if (q.qid !== null) return `${pid}/q${q.qid}`;
  const mqd = q.mqdAddresses[0] ?? null;
  if (mqd !== null) return `${pid}/mqd${mqd}`;
  // an SDMA MQD does not hold its own address; its ring (a VA of this process) is as stable
  if (q.mqdAddresses.length === 0 && q.ringBase !== null) return `${pid}/${q.type}${q.ringBase}`;
  // a compute MQD block cut before its address: the doorbell offset is the queue's own within
  // its process (and GPU: uniqueKeys adds the GPU on a clash), never `mqdnull`
  if (q.doorbell !== null) return `${pid}/db${q.doorbell}`;
  if (q.ringBase !== null) return `${pid}/${q.type}${q.ringBase}`;
  return `${pid}/${q.type}@line${q.mqdsLine ?? '?'}`;
}

/** issue of a sample after samples were dropped (it belongs to that sample only, never reused) */
const DROPPED_NOTE = ' sample(s) dropped before this one: the recorder did not keep up';

type Tables = Record<string, unknown>;

interface LastSample {
  raw: NativeSample;
  out: TraceSample;
  /** join warnings among out.issues (a sysfs-only sample with none can be assembled per process next time) */
  joinWarnings: number;
}

/** The sample's own timing and cost fields, copied from the raw sample. */
type SampleTiming = Pick<TraceSample, 't_ns' | 'seq' | 'intended_ns' | 'read_ns' | 'parse_ns' | 'missed' | 'io_ns' | 'read_cpu_ns' | 'cpu_ns'>;

function sameArray(a: unknown, b: unknown): boolean {
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) {
    return a.byteLength === b.byteLength && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  }
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => x === b[i]);
  return false;
}

/** Same raw tables (one object, or equal tables without issues): the joined result would be the same too. */
function sameTables(a: Tables | undefined, b: Tables | undefined): boolean {
  // the samplers hand an unchanged part on as the very same object (src/trace/sampler.ts)
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  if (isReadError(a) || isReadError(b)) return false;
  if ((a.issues as unknown[]).length || (b.issues as unknown[]).length) return false;
  for (const k of Object.keys(a)) {
    if (k === 'issues' || k === 'lines' || k === 'suppressed') continue;
    if (!sameArray(a[k], b[k])) return false;
  }
  return true;
}

/**
 * `a` (this sample) gives the same trace sample as `b` (the last one): the same tables, or
 * mqds/hqds that the native sampler patched from `b`'s in words that only feed `busy`
 * (src/trace/relevance.ts). Patched words are relative to the last sample the sampler delivered,
 * which is `b`: a sample after dropped ones is never compared (assemble()).
 */
function sameRaw(a: NativeSample, b: NativeSample): boolean {
  const changed = a.changedWords;
  // tables without words (wordsOmitted) cannot be compared: only the very same part (the sampler
  // found the same bytes) is the same; a part parsed again may differ where no table shows it
  const whole = a.wordsOmitted || b.wordsOmitted ? (x: unknown, y: unknown) => x === y : (x: unknown, y: unknown) => sameTables(x as Tables, y as Tables);
  // a patched table differs from b's in the words named (comparing it whole would only find
  // that, at the cost of two Buffer views and a memcmp per table): the names decide alone
  const mqdsSame = changed?.mqds !== undefined ? isMqds(a.mqds) && isMqds(b.mqds) && mqdsChangeIrrelevant(a.mqds, changed.mqds) : whole(a.mqds, b.mqds);
  const hqdsSame = changed?.hqds !== undefined ? isHqds(a.hqds) && isHqds(b.hqds) && hqdsChangeIrrelevant(a.hqds, changed.hqds) : whole(a.hqds, b.hqds);
  return mqdsSame && hqdsSame && sameTables(a.procs as unknown as Tables, b.procs as unknown as Tables) && whole(a.rls, b.rls);
}

/** The proc directory itself could be listed (else the join gets no sysfs view at all). */
const sysfsReadable = (raw: NativeSample): boolean => !raw.procs.issues.some((i) => i.code && i.path.endsWith('class/kfd/kfd/proc'));

const isMqds = (x: MqdsRaw | NativeReadError | undefined): x is MqdsRaw => x !== undefined && !isReadError(x);
const isHqds = (x: HqdsRaw | NativeReadError | undefined): x is HqdsRaw => x !== undefined && !isReadError(x);

export class SampleAssembler {
  /**
   * the input and result of the last sample that read debugfs and of the last that did not: most
   * samples repeat the one before of their kind, and are reused (with debugfs read every N-th
   * sample, one reference would be replaced by the other kind at every change of kind)
   */
  private last: { debugfs: LastSample | null; sysfs: LastSample | null } = { debugfs: null, sysfs: null };
  private readonly status = new Map<number, ProcStatus | null>();
  /** pid -> debugfs identity -> qid, as matched in earlier samples: keeps queue keys stable */
  private readonly qidHints = new Map<number, Map<string, number>>();
  /** qidHints as the addon takes them; null until packed again after they changed */
  private packedHints: PackedQidHints | null = null;
  constructor(private readonly ctx: AssembleContext) {}

  /** nsPid lookups are cached per pid: a pid's namespace does not change while it lives. */
  private statusOf(pid: number): ProcStatus | null {
    if (!this.status.has(pid)) this.status.set(pid, readProcStatus(this.ctx.procRoot, pid));
    return this.status.get(pid) ?? null;
  }

  /** Forget cached /proc data of pids that are gone (pid reuse gets a fresh lookup). */
  forget(pid: number): void {
    this.status.delete(pid);
    if (this.qidHints.delete(pid)) this.packedHints = null;
    this.invalidate();
  }

  /** The filter changed (e.g. a command was started): do not reuse the last result. */
  invalidate(): void {
    this.last = { debugfs: null, sysfs: null };
  }

  assemble(raw: NativeSample): TraceSample {
    const t0 = process.hrtime.bigint();
    const timing: SampleTiming = {
      t_ns: raw.actualNs,
      seq: raw.seq,
      intended_ns: raw.intendedNs,
      read_ns: raw.readNs,
      parse_ns: raw.parseNs,
      missed: raw.missed,
    };
    if (raw.ioNs !== undefined) timing.io_ns = raw.ioNs;
    if (raw.cpuNs !== undefined) timing.read_cpu_ns = raw.cpuNs;
    // gpucolo's running CPU total: the sampling thread's, plus the JS thread's with the native thread
    if (raw.threadCpuNs !== undefined) timing.cpu_ns = raw.threadCpuNs + (raw.jsCpuNs ?? 0);
    // nothing changed since the last sample: the same processes, queues and slots (comparing the
    // tables is a memcmp; building and joining them again is most of a sample's CPU time)
    const kind = raw.mqds !== undefined ? 'debugfs' : 'sysfs';
    const last = this.last[kind];
    if (last && raw.dropped === 0 && sameRaw(raw, last.raw)) {
      const prev = last.out;
      const out: TraceSample = { kind: 'sample', ...timing, join_ns: 0, debugfs: prev.debugfs, processes: prev.processes, unmatchedHqds: prev.unmatchedHqds, issues: prev.issues.filter((i) => !i.endsWith(DROPPED_NOTE)) };
      out.join_ns = Number(process.hrtime.bigint() - t0);
      this.last[kind] = { raw, out, joinWarnings: last.joinWarnings };
      return out;
    }
    const partial = kind === 'sysfs' && last ? this.assembleSysfsDelta(raw, timing, last) : null;
    const { out, joinWarnings } = partial ?? this.assembleNew(raw, timing);
    out.join_ns = Number(process.hrtime.bigint() - t0);
    this.last[kind] = { raw, out, joinWarnings };
    return out;
  }

  /**
   * A sysfs-only sample per process (src/trace/assemble-sysfs.ts): unchanged processes keep their
   * trace process, the changed ones are joined alone; null where only a whole join is right.
   */
  private assembleSysfsDelta(raw: NativeSample, timing: SampleTiming, last: LastSample): { out: TraceSample; joinWarnings: number } | null {
    if (last.joinWarnings > 0 || !sysfsReadable(raw) || !sysfsReadable(last.raw)) return null;
    const keep = this.ctx.keep;
    const kept = new Map(last.out.processes.map((p) => [p.pid, p]));
    const delta = sysfsDelta(raw.procs, last.raw.procs, kept);
    // a process the filter drops needs no join
    if (keep) for (const pid of delta.changed) if (!keep(pid)) delta.changed.delete(pid);
    const joined = joinQueues({ mqds: null, hqds: null, rls: null, topology: this.ctx.topology, procs: buildProcs(procsSubset(raw.procs, delta.changed), this.ctx.impl), qidHints: this.qidHints });
    if (joined.warnings.length) return null;
    const fresh = new Map(joined.processes.map((p) => [p.pid, this.traceProcess(p, false)]));
    // the whole join lists processes by pid
    const processes = delta.pids
      .filter((pid) => !keep || keep(pid))
      .sort((a, b) => a - b)
      .map((pid) => delta.reused.get(pid) ?? fresh.get(pid)!);
    const issues = raw.procs.issues.filter((i) => i.severity === 'error').map((i) => i.message);
    if (raw.dropped > 0) issues.push(`${raw.dropped}${DROPPED_NOTE}`);
    return { out: { kind: 'sample', ...timing, join_ns: 0, debugfs: false, processes, unmatchedHqds: [], issues }, joinWarnings: 0 };
  }

  /** A joined process as the trace records it. */
  private traceProcess(p: SnapshotProcess, hqdsRead: boolean): TraceProcess {
    const st = this.statusOf(p.pid);
    return { pid: p.pid, nsPid: namespacePid(st), queues: uniqueKeys(p.queues.map((q) => compactQueue(p.pid, q, hqdsRead))) };
  }

  /**
   * The native sampler's join of sample `seq` (the parts given: its readable ones; no objects per
   * MQD block or HQD slot), or null where the TS join runs: no ctx.joinDumps, or the sampler
   * declined (seq is not the sample in its onSample).
   */
  private nativeJoin(seq: number, mqds: MqdsRaw | null, hqds: HqdsRaw | null, rls: RlsRaw | null, procs: KfdProcs | null): JoinResult | null {
    const join = this.ctx.joinDumps;
    if (!join) return null;
    const sys = nativeJoinSysfs(this.ctx.topology, procs);
    // the hints change only when a join establishes something new: most samples repack nothing
    if (this.qidHints.size && !this.packedHints) this.packedHints = packQidHints(this.qidHints);
    const hints = this.qidHints.size ? this.packedHints : null;
    const r = join(seq, mqds !== null, hqds !== null, rls !== null, sys.topology, sys.procs, sys.procQueues, hints);
    return r && joinFromNativeTables(unpackJoinTables(r), sys, {});
  }

  private assembleNew(raw: NativeSample, timing: SampleTiming): { out: TraceSample; joinWarnings: number } {
    const issues: string[] = [];
    const impl = this.ctx.impl;
    const procs = buildProcs(raw.procs, impl);
    for (const i of raw.procs.issues) if (i.severity === 'error') issues.push(i.message);
    const debugfs = raw.mqds !== undefined;
    // each debugfs file read: its tables, or null with the read error in the issues; a file's
    // parse errors go to the issues as `name:line: message`
    const take = <R extends { issues: { line: number; message: string; severity: string }[] }>(x: R | NativeReadError | undefined, name: string): R | null => {
      if (x === undefined) return null;
      if (isReadError(x)) {
        issues.push(x.message);
        return null;
      }
      for (const i of x.issues) if (i.severity === 'error') issues.push(`${name}:${i.line}: ${i.message}`);
      return x;
    };
    const mqdsRaw = debugfs ? take(raw.mqds, 'mqds') : null;
    const hqdsRaw = debugfs ? take(raw.hqds, 'hqds') : null;
    const rlsRaw = debugfs ? take(raw.rls, 'rls') : null;
    const sysfsProcs = sysfsReadable(raw) ? procs : null;
    const native = debugfs ? this.nativeJoin(raw.seq, mqdsRaw, hqdsRaw, rlsRaw, sysfsProcs) : null;
    if (native === null && debugfs && raw.wordsOmitted) {
      // tables without words cannot be joined in TS: the sampler must join them (in onSample)
      throw new GpucoloError(`trace: sample ${raw.seq} came without debugfs words and the sampler did not join it (assembled outside its onSample?)`, { code: 'EINTERNAL' });
    }
    const joined =
      native ??
      joinQueues({
        mqds: mqdsRaw && buildMqds(mqdsRaw, impl),
        // samples need only the slots in use, not the empty ones that make up most of the dump
        hqds: hqdsRaw && buildHqds(hqdsRaw, impl, undefined, { inUseOnly: true }),
        rls: rlsRaw && buildRls(rlsRaw, impl),
        topology: this.ctx.topology,
        procs: sysfsProcs,
        qidHints: this.qidHints,
      });
    if (learnQidHints(joined, this.qidHints)) this.packedHints = null;
    const keep = this.ctx.keep;
    const processes = joined.processes.filter((p) => !keep || keep(p.pid)).map((p) => this.traceProcess(p, debugfs && hqdsRaw !== null));
    const unmatched = joined.unmatchedHqds.filter((h) => h.kind === 'cp').map((h) => [h.node, h.inst, h.pipe, h.queue] as [number, number, number, number]);
    // what the join could not reconcile (GPUs or Insts hqds did not show, MQD blocks missing,
    // runlist counts): the analysis reads these to count what this sample lacks as unknown.
    // A warning about one process is kept only when that process is traced.
    for (const w of joined.warnings) {
      const about = /^(?:process|pid) (\d+):/.exec(w);
      if (about && keep && !keep(Number(about[1]))) continue;
      issues.push(w);
    }
    if (raw.dropped > 0) issues.push(`${raw.dropped}${DROPPED_NOTE}`);
    const out: TraceSample = { kind: 'sample', ...timing, join_ns: 0, debugfs: debugfs && mqdsRaw !== null, processes, unmatchedHqds: unmatched, issues };
    return { out, joinWarnings: joined.warnings.length };
  }
}

const flag = (b: boolean | null): number | null => (b === null ? null : b ? 1 : 0);

/** A joined queue as a trace sample records it. */
export function compactQueue(pid: number, q: SnapshotQueue, hqdsRead: boolean): TraceQueue {
  return {
    key: queueKey(pid, q),
    qid: q.qid,
    type: q.type,
    gpuId: q.gpuId,
    node: q.node,
    priority: q.priority,
    mqd: q.mqdAddresses[0] ?? null,
    // active null: the slot's dump ended before CP_HQD_ACTIVE (unknown, not inactive)
    hqds: hqdsRead && q.source !== 'sysfs' ? q.hqds.map((h) => [h.inst, h.pipe, h.queue, flag(h.active)]) : null,
    sdma: q.sdma ? [q.sdma.engine, q.sdma.rlc, flag(q.sdma.active)] : null,
    inRunlist: q.inRunlist,
  };
}

/** Two queues of one process with the same key (one GART offset on two GPUs) get the GPU appended. */
export function uniqueKeys(queues: TraceQueue[]): TraceQueue[] {
  const seen = new Map<string, number>();
  for (const q of queues) seen.set(q.key, (seen.get(q.key) ?? 0) + 1);
  return queues.map((q) => ((seen.get(q.key) ?? 0) > 1 ? { ...q, key: `${q.key}@${q.gpuId ?? '?'}` } : q));
}
