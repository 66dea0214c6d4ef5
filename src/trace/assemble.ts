/**
 * Turns a raw sample (tables from either sampler) into a trace `sample` record: builds objects,
 * joins MQDs/HQDs/runlist/sysfs exactly as `gpucolo queues` does, keeps the traced processes and
 * compacts each queue to what the trace records.
 */
import type { NativeReadError, NativeSample } from '../native.js';
import { buildHqds, buildMqds, buildProcs, buildRls } from '../kfd/build.js';
import { debugfsIdentity, joinQueues, type SnapshotQueue } from '../kfd/join.js';
import { namespacePid, readProcStatus, type ProcStatus } from '../kfd/procfs.js';
import type { HqdsRaw, MqdsRaw, RlsRaw } from '../kfd/raw.js';
import type { Hqds, Mqds, Rls, Topology } from '../kfd/types.js';
import type { TraceQueue, TraceSample } from './schema.js';

export interface AssembleContext {
  topology: Topology | null;
  procRoot: string;
  /** which implementation parsed the tables (labels only) */
  impl: 'native' | 'ts';
  /** keep this pid? (target filter); undefined = every KFD process */
  keep?: (pid: number) => boolean;
}

function isReadError(x: unknown): x is NativeReadError {
  return typeof x === 'object' && x !== null && 'code' in x && 'message' in x && !('issues' in x);
}

/** Queue identity for the whole trace: the KFD id when sysfs gives it, else the MQD address. */
export function queueKey(pid: number, q: Pick<SnapshotQueue, 'qid' | 'mqdAddresses' | 'ringBase' | 'type'>): string {
  if (q.qid !== null) return `${pid}/q${q.qid}`;
  if (q.mqdAddresses.length > 0) return `${pid}/mqd${q.mqdAddresses[0]}`;
  // an SDMA MQD does not hold its own address; its ring (a VA of this process) is as stable
  return `${pid}/${q.type}${q.ringBase ?? '?'}`;
}

export class SampleAssembler {
  private readonly status = new Map<number, ProcStatus | null>();
  /** pid -> debugfs identity -> qid, as matched in earlier samples: keeps queue keys stable */
  private readonly qidHints = new Map<number, Map<string, number>>();
  constructor(private readonly ctx: AssembleContext) {}

  /** nsPid lookups are cached per pid: a pid's namespace does not change while it lives. */
  private statusOf(pid: number): ProcStatus | null {
    if (!this.status.has(pid)) this.status.set(pid, readProcStatus(this.ctx.procRoot, pid));
    return this.status.get(pid) ?? null;
  }

  /** Forget cached /proc data of pids that are gone (pid reuse gets a fresh lookup). */
  forget(pid: number): void {
    this.status.delete(pid);
    this.qidHints.delete(pid);
  }

  assemble(raw: NativeSample): TraceSample {
    const t0 = process.hrtime.bigint();
    const issues: string[] = [];
    const impl = this.ctx.impl;
    const procs = buildProcs(raw.procs, impl);
    for (const i of raw.procs.issues) if (i.severity === 'error') issues.push(i.message);
    let mqds: Mqds | null = null;
    let hqds: Hqds | null = null;
    let rls: Rls | null = null;
    const debugfs = raw.mqds !== undefined;
    if (debugfs) {
      const take = <R, T>(x: R | NativeReadError | undefined, build: (r: R) => T & { issues: { line: number; message: string; severity: string }[] }, name: string): T | null => {
        if (x === undefined) return null;
        if (isReadError(x)) {
          issues.push(x.message);
          return null;
        }
        const built = build(x);
        for (const i of built.issues) if (i.severity === 'error') issues.push(`${name}:${i.line}: ${i.message}`);
        return built;
      };
      mqds = take(raw.mqds, (r: MqdsRaw) => buildMqds(r, impl), 'mqds');
      // samples need only the slots in use, not the empty ones that make up most of the dump
      hqds = take(raw.hqds, (r: HqdsRaw) => buildHqds(r, impl, undefined, { inUseOnly: true }), 'hqds');
      rls = take(raw.rls, (r: RlsRaw) => buildRls(r, impl), 'rls');
    }
    const sysfsOk = !raw.procs.issues.some((i) => i.code && i.path.endsWith('class/kfd/kfd/proc'));
    const joined = joinQueues({ mqds, hqds, rls, topology: this.ctx.topology, procs: sysfsOk ? procs : null, qidHints: this.qidHints });
    for (const p of joined.processes) {
      for (const q of p.queues) {
        if (q.qid === null || q.source === 'sysfs') continue;
        let h = this.qidHints.get(p.pid);
        if (!h) this.qidHints.set(p.pid, (h = new Map()));
        h.set(debugfsIdentity(q), q.qid);
      }
    }
    const keep = this.ctx.keep;
    const processes = joined.processes
      .filter((p) => !keep || keep(p.pid))
      .map((p) => {
        const st = this.statusOf(p.pid);
        return {
          pid: p.pid,
          nsPid: namespacePid(st),
          queues: uniqueKeys(p.queues.map((q) => compactQueue(p.pid, q, debugfs && hqds !== null))),
        };
      });
    const unmatched = joined.unmatchedHqds.filter((h) => h.kind === 'cp').map((h) => [h.node, h.inst, h.pipe, h.queue] as [number, number, number, number]);
    if (raw.dropped > 0) issues.push(`${raw.dropped} sample(s) dropped before this one: the recorder did not keep up`);
    return {
      kind: 'sample',
      t_ns: raw.actualNs,
      seq: raw.seq,
      intended_ns: raw.intendedNs,
      read_ns: raw.readNs,
      parse_ns: raw.parseNs,
      join_ns: Number(process.hrtime.bigint() - t0),
      debugfs: debugfs && mqds !== null,
      missed: raw.missed,
      processes,
      unmatchedHqds: unmatched,
      issues,
    };
  }
}

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
    hqds: hqdsRead && q.source !== 'sysfs' ? q.hqds.map((h) => [h.inst, h.pipe, h.queue, h.active ? 1 : 0]) : null,
    sdma: q.sdma ? [q.sdma.engine, q.sdma.rlc, q.sdma.active ? 1 : 0] : null,
    inRunlist: q.inRunlist,
  };
}

/** Two queues of one process with the same key (one GART offset on two GPUs) get the GPU appended. */
export function uniqueKeys(queues: TraceQueue[]): TraceQueue[] {
  const seen = new Map<string, number>();
  for (const q of queues) seen.set(q.key, (seen.get(q.key) ?? 0) + 1);
  return queues.map((q) => ((seen.get(q.key) ?? 0) > 1 ? { ...q, key: `${q.key}@${q.gpuId ?? '?'}` } : q));
}
