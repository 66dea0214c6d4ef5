/**
 * One run of one phase (one round of it): the probe or torch driver, with the device utilisation
 * sampled over the measured window and the host watched while it measured (host-watch.ts). What
 * comes back is raw: pool.ts turns the runs of a phase into its PhaseResult.
 */
import type { DispatchEngine } from '../native.js';
import type { HostLoad } from '../stats/index.js';
import { judgeCompletions } from './completions.js';
import { runProbePhase, type ProbeBackend } from './probe-driver.js';
import { runTorchPhase, type TorchWorkerInfo } from './torch-driver.js';
import type { GpuSharing, GpuSharingCheck, HostLoadFactory, WatchContext } from './host-watch.js';
import type { PlannedRun } from './rounds.js';
import type { Form, Scenario } from './schema.js';
import type { PhaseStatus, TaskSamples } from './types.js';
import { sampledUtilisation, startUtilSampling, type SampledUtilisation } from './utilisation.js';

export interface PhaseRun extends PlannedRun {
  /** an extra run after the phase's rounds, to make up --min-samples for a closed-loop task */
  extension: boolean;
  startedAt: string;
  status: PhaseStatus;
  reason?: string;
  stderrTail?: string[];
  notes: string[];
  samples: TaskSamples[];
  /** probe form: blocks each task's kernels ran with, and the device's compute units */
  blocks: Record<string, number>;
  computeUnits: number;
  /** what each task's workload ran on, one line */
  workloads: Record<string, string>;
  /** the measured time asked for (the drivers' samples carry what was measured) */
  measuredNs: number;
  sampled: SampledUtilisation;
  host: HostLoad | null;
  gpu: GpuSharing | null;
  /** the work ran on host cores (cpu backend, torch workers on the cpu): other processes' CPU time is interference */
  onCpu: boolean;
  /** torch form: the workers */
  workers?: TorchWorkerInfo[];
}

export interface PhaseRunContext {
  form: Form;
  probeBackend: ProbeBackend | null;
  engine: DispatchEngine | null;
  scenario: Scenario;
  warmupNs: number;
  python?: string;
  signal?: AbortSignal;
  hostLoad: HostLoadFactory;
  gpuSharing: GpuSharingCheck;
  onProgress?: (p: { task: string; completed: number; elapsedNs: number; p99Ns: number | null }) => void;
}

/** What the two forms' steps share for one run: when it started, the utilisation sampler, the host watch. */
interface OnceState {
  planned: PlannedRun;
  durationNs: number;
  ctx: PhaseRunContext;
  extension: boolean;
  startedAt: string;
  util: ReturnType<typeof startUtilSampling>;
  /** the torch workers' pids, once known (the host watch counts them as our own) */
  workerPids: number[];
  watch: WatchContext;
}

/** Runs the phase once for `durationNs` of measured time. Never throws for a failing phase (status says it). */
export async function runPhaseOnce(planned: PlannedRun, durationNs: number, ctx: PhaseRunContext, extension = false): Promise<PhaseRun> {
  const startedAt = new Date().toISOString();
  const util = startUtilSampling(ctx.warmupNs);
  const st: OnceState = { planned, durationNs, ctx, extension, startedAt, util, workerPids: [], watch: undefined as unknown as WatchContext };
  st.watch = { phase: planned.phase.name, round: planned.round, ownPids: () => st.workerPids };
  if (ctx.form === 'probe') return runProbeOnce(st);
  return runTorchOnce(st);
}

/** Probe form: runs the engine with the host watched over the whole call, and judges the result. */
async function runProbeOnce(st: OnceState): Promise<PhaseRun> {
  const { planned, durationNs, ctx, watch } = st;
  const ph = planned.phase;
  const s = ctx.scenario;
  const workloads: Record<string, string> = {};
  const backend = ctx.probeBackend!;
  // the engine's threads are this process's: the whole call is the window
  const host = ctx.hostLoad(watch);
  const r = await runProbePhase({
    tasks: ph.tasks.map((task) => ({ task, workload: task.probe! })),
    backend,
    mechanism: ph.mechanism,
    reserve: s.reserve,
    throttleK: s.throttleK,
    durationNs,
    warmupNs: ctx.warmupNs,
    engine: ctx.engine ?? undefined,
    signal: ctx.signal,
  });
  const load = host.stop();
  // ran to its end, but a task completed nothing: not 'ok' (completions.ts)
  const judged = judgeCompletions(r.status, r.reason, r.samples);
  const gpu = backend === 'cpu' || r.status === 'skipped' ? null : ctx.gpuSharing({ ...watch, device: backend });
  const on = `${backend}${ctx.engine === 'ts' ? ' (pure-TS engine)' : ''}`;
  for (const t of ph.tasks) workloads[t.name] = `probe: ${t.probe!.kernels > 1 ? `${t.probe!.kernels} x ` : ''}${t.probe!.kernel / 1e6} ms kernel, ${r.blocks[t.name] ?? t.probe!.blocks} block(s) on ${on}`;
  return {
    ...planned,
    extension: st.extension,
    startedAt: st.startedAt,
    status: judged.status,
    ...(judged.reason ? { reason: judged.reason } : {}),
    notes: r.notes,
    samples: r.samples,
    blocks: r.blocks,
    computeUnits: r.computeUnits,
    workloads,
    measuredNs: durationNs,
    sampled: sampledUtilisation(await st.util.stop()),
    host: r.status === 'skipped' ? null : load,
    gpu,
    onCpu: backend === 'cpu',
  };
}

/** Torch form: runs the workers with the host watched over the measured window only, and collects the result. */
async function runTorchOnce(st: OnceState): Promise<PhaseRun> {
  const { planned, durationNs, ctx, watch } = st;
  const ph = planned.phase;
  const s = ctx.scenario;
  const workloads: Record<string, string> = {};
  // torch: the window is the measured part only, while the workers (our own CPU time) are alive
  const started = process.hrtime.bigint();
  let host: ReturnType<HostLoadFactory> | null = null;
  let load: HostLoad | null = null;
  let gpuAtEnd: GpuSharing | null = null;
  const r = await runTorchPhase({
    tasks: ph.tasks.map((task) => ({ task, workload: task.torch! })),
    mechanism: ph.mechanism,
    reserve: s.reserve,
    xsched: s.xsched,
    torchProcess: s.torchProcess,
    durationNs,
    warmupNs: ctx.warmupNs,
    python: ctx.python,
    signal: ctx.signal,
    onWorkers: (pids) => (st.workerPids = pids.map((p) => p.pid)),
    onWindow: (edge) => {
      if (edge === 'start') host = ctx.hostLoad(watch);
      else {
        load = host?.stop() ?? null;
        // which GPU the workers use is known after the run; ask KFD now, while they are alive
        gpuAtEnd = ctx.gpuSharing({ ...watch, device: 'hip' });
      }
    },
    onProgress: (p) => ctx.onProgress?.({ ...p, elapsedNs: Number(process.hrtime.bigint() - started) }),
  });
  for (const t of ph.tasks) {
    const w = r.workers.find((x) => x.task === t.name);
    workloads[t.name] = `torch: ${t.torch!.model} batch ${t.torch!.batch} ${t.torch!.mode} on ${w?.device ?? t.torch!.device}`;
  }
  const onGpu = r.workers.filter((w) => w.device !== 'cpu' && w.device !== 'unknown');
  const gpu: GpuSharing | null = onGpu.length === 0 ? null : onGpu.some((w) => w.hip) ? gpuAtEnd : ctx.gpuSharing({ ...watch, device: 'cuda' });
  return {
    ...planned,
    extension: st.extension,
    startedAt: st.startedAt,
    status: r.status,
    ...(r.reason ? { reason: r.reason } : {}),
    ...(r.stderrTail?.length ? { stderrTail: r.stderrTail } : {}),
    notes: r.notes,
    samples: r.samples,
    blocks: {},
    computeUnits: 0,
    workloads,
    measuredNs: durationNs,
    sampled: sampledUtilisation(await st.util.stop()),
    host: load,
    gpu,
    onCpu: r.workers.length > 0 && onGpu.length === 0,
    workers: r.workers,
  };
}
