/**
 * The expectations of `npm run gpu-check` (issue 15, "The GPU check"), as pure functions of what
 * the runner recorded (Observations): no process is started here, so tests feed them made-up
 * JSON. Every check says what it expected, what it measured and pass true / false / null (null:
 * not judged, with the reason: a mechanism the backend lacks, a timing on the cpu backend, a figure
 * the CLI does not report).
 */
import type { DoctorReport } from '../doctor.js';
import type { CoRunResult, LatencyProbeResult } from '../dispatch/index.js';
import { GPU_CHECK_EXPECTATION, GPU_CHECK_MECHANISMS, mechanismInfo, type GpuCheckExpectation, type GpuCheckMechanism } from '../mechanisms.js';
import type { NativeBackendDevice, NativeBackendInfo } from '../native.js';
import type { QuantileSummary } from '../stats/index.js';
import type { Results } from '../scenario/types.js';
import type { Backend, CheckResult, FillPlan, Observations, PriorityPlan, RunObservation, Step } from './types.js';

/** The numbers behind the expectations (README: "npm run gpu-check"). */
export const EXPECT = {
  /** the spin kernel of the device-clock check, and what it must read (device P50; min never below the spin) */
  spinNs: 1e6,
  spinReadMinNs: 1.0e6,
  spinReadMaxNs: 1.02e6,
  /** empty kernel: every latency run has at least this many launches, and (GPU) a round-trip P50 below this */
  minLaunches: 1000,
  emptyRoundTripMaxNs: 100e3,
  /** JS-visible round trip / C++ floor (hand-off mode), median over the interleaved rounds of the per-round P50 ratio */
  floorRatioMax: 1.1,
  /**
   * %globaltimer / s_memrealtime resolution: the 1.00-1.02 ms reading needs it well below its 20 us
   * width (%globaltimer ticks every 32 ns to ~1 us depending on the GPU; s_memrealtime at 100 MHz)
   */
  timerResolutionMaxNs: 2000,
  /** `none`: co-run HP P99 at least this many times standalone (the LP load contends) */
  noneContentionMin: 2,
  /** stream-priority: added HP P99 (co-run - standalone) at most about one LP block (= one LP spin) */
  streamPriorityMaxLpBlocks: 1.25,
  /** sm-partition / cu-mask: HP P99 at most this times standalone, LP at least this share of what it may keep */
  spatialHpP99Max: 1.1,
  spatialLpShareMin: 0.95,
  /** one H100: the whole check */
  budgetS: 480,
} as const;

/**
 * The mechanisms the check asks `probe priority` for: those src/mechanisms.ts gives a GPU-check
 * expectation (every mechanism the probe form runs on a GPU backend, test/gpu-check.test.ts),
 * in registry order. A mechanism added there with an expectation is run and judged here.
 */
export const MECHANISMS = GPU_CHECK_MECHANISMS;
export type Mechanism = GpuCheckMechanism;

/** The registry's expectation for a mechanism of MECHANISMS. */
export function expectationOf(m: Mechanism): GpuCheckExpectation {
  return GPU_CHECK_EXPECTATION[m];
}

/** Threads per block of the probe's LP kernels (src/dispatch/probes.ts lpStreams). */
export const LP_THREADS_PER_BLOCK = 256;

// ---- small helpers -------------------------------------------------------------------------------

export function fmtNs(ns: number | null | undefined): string {
  if (ns === null || ns === undefined || !Number.isFinite(ns)) return '-';
  const a = Math.abs(ns);
  if (a >= 1e9) return `${(ns / 1e9).toFixed(3)} s`;
  if (a >= 1e6) return `${(ns / 1e6).toFixed(3)} ms`;
  if (a >= 1e3) return `${(ns / 1e3).toFixed(2)} us`;
  return `${Math.round(ns)} ns`;
}

const fx = (x: number | null | undefined, d = 2): string => (x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));
const pct = (x: number | null | undefined): string => (x === null || x === undefined || !Number.isFinite(x) ? '-' : `${(x * 100).toFixed(1)}%`);

/** A percentile of a QuantileSummary, or null. */
export function qv(s: QuantileSummary | null | undefined, p: number): number | null {
  const v = s?.quantiles?.find((q) => q.p === p)?.value;
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** Whether the sample supports that percentile (enough samples). */
export function qSupported(s: QuantileSummary | null | undefined, p: number): boolean {
  return s?.quantiles?.find((q) => q.p === p)?.supported === true;
}

export function median(v: number[]): number | null {
  if (!v.length) return null;
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const num = (x: unknown): number | null => (typeof x === 'number' && Number.isFinite(x) ? x : null);

/** "exit 1: <last stderr line>", "timed out after 12.0 s", "skipped: why" */
export function stepProblem(s: Step | null | undefined): string {
  if (!s) return 'did not run';
  if (s.skipped) return `skipped: ${s.skipped}`;
  const tail = s.stderrTail.filter((l) => l.trim()).slice(-2).join(' | ');
  if (s.timedOut) return `timed out after ${s.elapsedS.toFixed(1)} s${tail ? ` (${tail})` : ''}`;
  if (s.exitCode !== 0) return `exit ${s.exitCode ?? s.signal ?? '?'}${tail ? `: ${tail}` : ''}`;
  if (s.json === null) return `no JSON output${s.parseError ? ` (${s.parseError})` : ''}`;
  return 'ok';
}

const stepOk = (s: Step | null | undefined): boolean => !!s && !s.skipped && s.exitCode === 0 && s.json !== null;

const check = (c: CheckResult): CheckResult => c;

/** A check that could not be judged: pass null with why. */
function notJudged(name: string, expectation: string, reason: string, measured: unknown = null, kind?: CheckResult['kind']): CheckResult {
  return { name, expectation, measured, pass: null, reason, ...(kind ? { kind } : {}) };
}

const TIMING_NOT_JUDGED = 'cpu backend: a GPU timing expectation; the value is recorded, not judged (--judge-cpu-timings judges it)';

// ---- backend choice ------------------------------------------------------------------------------

/**
 * The backend to check: the one asked for, or with auto the first GPU backend that is available
 * (cuda, then hip). auto never falls back to cpu: the check is for GPU hosts (--backend cpu runs it
 * on the cpu backend on purpose).
 */
export function chooseBackend(requested: 'auto' | Backend, doctor: DoctorReport | null): { backend: Backend | null; why: string } {
  if (requested !== 'auto') return { backend: requested, why: `--backend ${requested}` };
  if (!doctor) return { backend: null, why: 'auto: gpucolo doctor gave no report, so no backend could be chosen' };
  for (const name of ['cuda', 'hip'] as const) {
    const b = doctor.backends?.find((x) => x.name === name);
    if (b?.available && b.devices.length) return { backend: name, why: `auto: ${name} is available (${b.devices.map((d) => d.name).join('; ')})` };
  }
  const why = (['cuda', 'hip'] as const)
    .map((n) => {
      const b = doctor.backends?.find((x) => x.name === n);
      return `${n}: ${b ? (b.available ? 'no devices' : (b.reason ?? 'unavailable')) : 'not listed'}`;
    })
    .join('; ');
  return { backend: null, why: `auto: no GPU backend available (${why}); --backend cpu runs the check on the cpu backend` };
}

export function backendInfo(doctor: DoctorReport | null, backend: Backend | null): NativeBackendInfo | null {
  return (backend && doctor?.backends?.find((b) => b.name === backend)) || null;
}

export function deviceOf(doctor: DoctorReport | null, backend: Backend | null, device = 0): NativeBackendDevice | null {
  const b = backendInfo(doctor, backend);
  return b?.available ? (b.devices[device] ?? null) : null;
}

/**
 * LP blocks that occupy every compute unit with the probe's LP kernel (LP_THREADS_PER_BLOCK
 * threads): compute units x resident blocks per unit, from the occupancy doctor reports for that
 * block size (scaled from the fill block size when only that is known; 2048 resident threads per
 * unit assumed when neither is).
 */
export function fillPlan(dev: NativeBackendDevice | null, threadsPerBlock = LP_THREADS_PER_BLOCK): FillPlan | null {
  if (!dev || !(dev.computeUnits > 0)) return null;
  const cus = dev.computeUnits;
  const occ = dev.occupancy?.find((o) => o.threadsPerBlock === threadsPerBlock)?.blocksPerCu;
  if (occ && occ > 0) return { lpBlocks: cus * occ, threadsPerBlock, computeUnits: cus, blocksPerCu: occ, source: `occupancy API at ${threadsPerBlock} threads per block (doctor)` };
  if (dev.maxActiveBlocksPerCu && dev.maxActiveBlocksPerCu > 0 && dev.fillThreadsPerBlock && dev.fillThreadsPerBlock > 0) {
    const per = Math.max(1, Math.floor((dev.maxActiveBlocksPerCu * dev.fillThreadsPerBlock) / threadsPerBlock));
    return { lpBlocks: cus * per, threadsPerBlock, computeUnits: cus, blocksPerCu: per, source: `scaled from ${dev.maxActiveBlocksPerCu} resident blocks of ${dev.fillThreadsPerBlock} threads (doctor)` };
  }
  const per = Math.max(1, Math.floor(2048 / threadsPerBlock));
  return { lpBlocks: cus * per, threadsPerBlock, computeUnits: cus, blocksPerCu: null, source: `doctor reports no occupancy: assumed 2048 resident threads per compute unit (${per} blocks)` };
}

/**
 * Does the device support the mechanism? The registry's device flag (src/mechanisms.ts deviceFlag)
 * read from doctor's device; null when it needs a flag and doctor gave no device; true when it
 * needs none.
 */
export function mechanismSupported(m: Mechanism, dev: NativeBackendDevice | null): boolean | null {
  const flag = mechanismInfo(m)?.deviceFlag ?? null;
  if (flag === null) return true;
  return dev ? dev[flag] === true : null;
}

// ---- doctor --------------------------------------------------------------------------------------

export function checkDoctor(o: Observations, deviceIndex = 0): CheckResult[] {
  const out: CheckResult[] = [];
  const d = o.doctor.json;
  if (!stepOk(o.doctor)) {
    out.push({ name: 'doctor.ran', expectation: 'gpucolo doctor --json exits 0 with its report', measured: o.doctor.exitCode, pass: false, reason: stepProblem(o.doctor) });
    if (!d) return out;
  }
  const backend = o.backend;
  out.push(doctorBackendCheck(o, d!, deviceIndex));
  out.push(nativeCoreCheck(backend, d!));
  const dev = deviceOf(d, backend, deviceIndex);
  const noDev = 'no device to read (the backend is unavailable)';
  if (!dev) {
    for (const n of ['priority-range', 'green-contexts', 'cu-masks', 'timer-resolution']) out.push(notJudged(`doctor.${n}`, 'device capability', noDev));
    return out;
  }
  out.push(...deviceCapabilityChecks(backend, dev));
  out.push(...timerChecks(backend, d!, dev, deviceIndex));
  out.push({
    name: 'doctor.fill',
    expectation: 'occupancy of the probe kernel (what "fill" means on this device)',
    measured: { computeUnits: dev.computeUnits, fillThreadsPerBlock: dev.fillThreadsPerBlock ?? null, maxActiveBlocksPerCu: dev.maxActiveBlocksPerCu ?? null, occupancy: dev.occupancy ?? null },
    pass: null,
    kind: 'info',
  });
  if (backend === 'hip') out.push(kfdDoctorCheck(d!));
  return out;
}

/** doctor.backend: the backend is available with the device asked for (and what its plugin says). */
function doctorBackendCheck(o: Observations, d: DoctorReport, deviceIndex: number): CheckResult {
  const backend = o.backend;
  const b = backendInfo(d, backend);
  const plugin = backend && backend !== 'cpu' ? d.plugins?.list?.find((p) => p.name === backend) : undefined;
  const pluginText = plugin
    ? `plugin ${plugin.path}: ${!plugin.found ? 'not built' : !plugin.loaded ? `does not load: ${plugin.error}` : plugin.initError ? `runtime unusable: ${plugin.initError}` : `${plugin.deviceCount ?? '?'} device(s)`}`
    : '';
  return check({
    name: 'doctor.backend',
    expectation: `${backend ?? 'a GPU'} backend available with at least ${deviceIndex + 1} device(s)`,
    measured: b ? { backend: b.name, available: b.available, engine: b.engine ?? null, devices: b.devices.map((x) => x.name) } : null,
    pass: !!b?.available && b.devices.length > deviceIndex,
    ...(!b?.available || b.devices.length <= deviceIndex
      ? { reason: backend ? `${b?.reason ?? 'not listed by doctor'}${pluginText ? `; ${pluginText}` : ''}` : o.backendWhy }
      : pluginText
        ? { reason: pluginText }
        : {}),
  });
}

/** doctor.native-core: gpucolo.node loads (not judged on the cpu backend, which runs without it). */
function nativeCoreCheck(backend: Backend | null, d: DoctorReport): CheckResult {
  return d.native?.loaded
    ? { name: 'doctor.native-core', expectation: 'the native core (gpucolo.node) loads', measured: d.native.file ?? true, pass: true }
    : backend === 'cpu'
      ? notJudged('doctor.native-core', 'the native core (gpucolo.node) loads', `not loaded, the cpu backend runs on the pure-TS engine: ${(d.native?.errors ?? []).map((e) => e.message).join('; ')}`, false)
      : { name: 'doctor.native-core', expectation: 'the native core (gpucolo.node) loads (GPU plugins need it)', measured: false, pass: false, reason: (d.native?.errors ?? []).map((e) => e.message).join('; ') || 'not loaded' };
}

/** doctor.priority-range, doctor.green-contexts, doctor.cu-masks: what the device offers the mechanisms. */
function deviceCapabilityChecks(backend: Backend | null, dev: NativeBackendDevice): CheckResult[] {
  const out: CheckResult[] = [];
  out.push({
    name: 'doctor.priority-range',
    expectation: 'at least two stream priority levels (priorityLeast != priorityGreatest)',
    measured: { least: dev.priorityLeast, greatest: dev.priorityGreatest },
    pass: dev.priorityLeast !== dev.priorityGreatest,
    ...(dev.priorityLeast === dev.priorityGreatest ? { reason: 'one level only: stream-priority cannot order anything' } : {}),
  });
  const green = 'green contexts (supportsSmPartition): SM partitions for sm-partition';
  if (backend === 'cuda') {
    out.push({ name: 'doctor.green-contexts', expectation: green, measured: dev.supportsSmPartition, pass: dev.supportsSmPartition === true, ...(dev.supportsSmPartition ? {} : { reason: 'the driver has no green-context entry points (CUDA >= 12.4 driver needed) or the plugin was built without them' }) });
  } else {
    out.push(notJudged('doctor.green-contexts', green, backend === 'hip' ? 'green contexts are CUDA only (hip: CU masks, doctor.cu-masks)' : `the ${backend} backend has no SM partitions`, dev.supportsSmPartition, 'not-applicable'));
  }
  const masks = 'CU masks (supportsCuMask) for cu-mask';
  if (backend === 'cuda') out.push(notJudged('doctor.cu-masks', masks, 'CUDA has no CU masks (its spatial mechanism is sm-partition)', dev.supportsCuMask, 'not-applicable'));
  else out.push({ name: 'doctor.cu-masks', expectation: masks, measured: dev.supportsCuMask, pass: dev.supportsCuMask === true, ...(dev.supportsCuMask ? {} : { reason: 'the backend refuses CU masks on this device' }) });
  return out;
}

/** doctor.timer-resolution and, where doctor --measure ran on the device, doctor.measure. */
function timerChecks(backend: Backend | null, d: DoctorReport, dev: NativeBackendDevice, deviceIndex: number): CheckResult[] {
  const out: CheckResult[] = [];
  // doctor --measure: a short empty-kernel series per device, after which the plugin knows its timer resolution
  const meas = (d.measured ?? null)?.find((x) => x.backend === backend && x.device === deviceIndex) ?? null;
  const tr = num(meas?.timerResolutionNs) ?? num(dev.timerResolutionNs);
  const trExp = `device timer resolution known and <= ${fmtNs(EXPECT.timerResolutionMaxNs)}`;
  if (tr !== null && tr > 0) {
    out.push({ name: 'doctor.timer-resolution', expectation: trExp, measured: tr, unit: 'ns', pass: tr <= EXPECT.timerResolutionMaxNs, ...(tr > EXPECT.timerResolutionMaxNs ? { reason: `${fmtNs(tr)}: too coarse to read a 1 ms spin to 1%` } : {}) });
  } else if (meas) {
    out.push({ name: 'doctor.timer-resolution', expectation: trExp, measured: tr, pass: false, reason: meas.ok ? 'doctor --measure ran a series but the backend still reports no timer resolution' : `doctor --measure failed on this device: ${meas.error ?? '?'}` });
  } else {
    out.push(
      notJudged(
        'doctor.timer-resolution',
        trExp,
        d.measured === undefined
          ? 'doctor reports 0 (unknown) and this CLI has no doctor --measure: the GPU plugins measure the timer resolution only when a run creates a stream'
          : 'doctor reports 0 (unknown) and measured nothing on this device',
        tr,
      ),
    );
  }
  if (meas) {
    out.push({
      name: 'doctor.measure',
      expectation: 'doctor --measure: a short empty-kernel series (round trip, device time, clock drift against the host)',
      measured: { ok: meas.ok, launches: meas.launches, roundTripP50Ns: meas.roundTripP50Ns, deviceP50Ns: meas.deviceP50Ns, clockDriftNs: meas.clock?.driftNs ?? null, clockUncertaintyNs: meas.clock?.uncertaintyNs ?? null },
      pass: null,
      kind: 'info',
      ...(meas.error ? { reason: meas.error } : {}),
    });
  }
  return out;
}

/** doctor.kfd (hip): /dev/kfd and the KFD sysfs topology answer (debugfs noted). */
function kfdDoctorCheck(d: DoctorReport): CheckResult {
  const k = d.kfd;
  const ok = !!k?.device?.ok && !!k?.sysfs?.ok;
  return {
    name: 'doctor.kfd',
    expectation: '/dev/kfd answers the version ioctl and the KFD sysfs topology reads',
    measured: { device: k?.device?.version ?? null, gpus: k?.sysfs?.gpus?.map((g) => `${g.name} ${g.gfxTarget ?? '?'} x${g.numXcc}`) ?? [], debugfs: k?.debugfs?.ok ?? false },
    pass: ok,
    ...(ok ? (k?.debugfs?.ok ? {} : { reason: `debugfs kfd not readable (${k?.debugfs?.error ?? '?'}): the KFD priority verification needs root` }) : { reason: k?.device?.error ?? k?.sysfs?.error ?? 'no KFD' }),
  };
}

// ---- latency -------------------------------------------------------------------------------------

export function checkLatency(o: Observations): CheckResult[] {
  return [emptyRoundTripCheck(o), floorRatioCheck(o), spinCheck(o)];
}

/** latency.empty-round-trip: every probe latency run exited 0 with enough launches (and, judged, its P50 round trip). */
function emptyRoundTripCheck(o: Observations): CheckResult {
  const engines = o.latency.rounds.map((r) => r.engine);
  const emptyExp = `empty-kernel round trip measured: every run exits 0 with >= ${EXPECT.minLaunches} launches${o.judgeTimings ? `, round-trip P50 < ${fmtNs(EXPECT.emptyRoundTripMaxNs)}` : ''}`;
  if (!engines.length) {
    return notJudged('latency.empty-round-trip', emptyExp, o.stoppedEarly ?? 'not run');
  } else {
    const bad = engines.filter((s) => !stepOk(s));
    const ok = engines.filter(stepOk).map((s) => s.json!);
    const p50s = ok.map((r) => qv(r.roundTrip, 50)).filter((x): x is number => x !== null);
    const p99s = ok.map((r) => qv(r.roundTrip, 99)).filter((x): x is number => x !== null);
    const launches = ok.map((r) => r.launches);
    const p50 = median(p50s);
    const measured = { runs: engines.length, p50Ns: p50, p99Ns: median(p99s), p50RangeNs: p50s.length ? [Math.min(...p50s), Math.max(...p50s)] : null, launchesMin: launches.length ? Math.min(...launches) : null, engine: ok[0]?.engine ?? null };
    const reasons: string[] = [];
    if (bad.length) reasons.push(`${bad.length} of ${engines.length} run(s) failed: ${stepProblem(bad[0])}`);
    const few = launches.filter((n) => n < EXPECT.minLaunches);
    if (few.length) reasons.push(`a run had ${Math.min(...few)} launches (< ${EXPECT.minLaunches})`);
    if (ok.some((r) => r.engine === 'ts')) reasons.push('pure-TS engine: coarser timings');
    let pass = bad.length === 0 && few.length === 0 && ok.length > 0;
    if (o.judgeTimings && p50 !== null && p50 >= EXPECT.emptyRoundTripMaxNs) {
      pass = false;
      reasons.push(`P50 ${fmtNs(p50)} >= ${fmtNs(EXPECT.emptyRoundTripMaxNs)}`);
    }
    if (!o.judgeTimings) reasons.push(`P50 not judged: ${TIMING_NOT_JUDGED}`);
    return { name: 'latency.empty-round-trip', expectation: emptyExp, measured, pass, ...(reasons.length ? { reason: reasons.join('; ') } : {}) };
  }
}

/** latency.floor-ratio: JS-visible round trip vs the C++ floor, per interleaved round. */
function floorRatioCheck(o: Observations): CheckResult {
  const rounds = o.latency.rounds;
  const floorExp = `JS-visible round trip (probe latency, empty kernel) <= ${EXPECT.floorRatioMax}x the C++ floor (gpucolo_floor --mode handoff): median over the interleaved rounds of engine P50 / floor P50`;
  if (!rounds.length) {
    return notJudged('latency.floor-ratio', floorExp, o.stoppedEarly ?? o.latency.floorSkipped ?? 'not run');
  } else if (o.latency.floorSkipped) {
    return notJudged('latency.floor-ratio', floorExp, o.latency.floorSkipped);
  } else {
    const floorBad = rounds.filter((r) => !stepOk(r.floor));
    const pairs = rounds
      .filter((r) => stepOk(r.engine) && stepOk(r.floor) && !r.floor!.json!.error)
      .map((r) => ({ round: r.round, engineP50: qv(r.engine.json!.roundTrip, 50), engineP99: qv(r.engine.json!.roundTrip, 99), floorP50: num(r.floor!.json!.p50_ns), floorP99: num(r.floor!.json!.p99_ns) }))
      .filter((p) => p.engineP50 !== null && p.floorP50 !== null && p.floorP50 > 0);
    const r50 = pairs.map((p) => p.engineP50! / p.floorP50!);
    const r99 = pairs.filter((p) => p.engineP99 !== null && p.floorP99 !== null && p.floorP99 > 0).map((p) => p.engineP99! / p.floorP99!);
    const ratio = median(r50);
    const measured = {
      ratioP50: ratio,
      ratioP50Range: r50.length ? [Math.min(...r50), Math.max(...r50)] : null,
      ratioP99: median(r99),
      rounds: pairs.length,
      floorP50Ns: median(pairs.map((p) => p.floorP50!)),
      engineP50Ns: median(pairs.map((p) => p.engineP50!)),
      floor: o.latency.floorBinary ?? null,
      floorTarget: o.latency.floorTarget ?? null,
    };
    if (floorBad.length || !pairs.length) {
      const f = floorBad[0]?.floor;
      const why = f ? (f.json?.error ? `gpucolo_floor: ${f.json.error}` : stepProblem(f)) : 'no round with both figures';
      return { name: 'latency.floor-ratio', expectation: floorExp, measured, pass: false, reason: why };
    } else if (!o.judgeTimings) {
      return notJudged('latency.floor-ratio', floorExp, TIMING_NOT_JUDGED, measured);
    } else {
      return {
        name: 'latency.floor-ratio',
        expectation: floorExp,
        measured,
        pass: ratio !== null && ratio <= EXPECT.floorRatioMax,
        reason: `${fx(ratio)}x over ${pairs.length} round(s) (per round ${r50.map((x) => fx(x)).join(', ')}; P99 ratio ${fx(median(r99))}x, not judged)`,
      };
    }
  }
}

/** latency.spin-1ms: the 1 ms spin kernel read on the device clock. */
function spinCheck(o: Observations): CheckResult {
  const spinExp = `a ${fmtNs(EXPECT.spinNs)} spin kernel reads ${fmtNs(EXPECT.spinReadMinNs)}-${fmtNs(EXPECT.spinReadMaxNs)} on the device clock (device P50; no reading below ${fmtNs(EXPECT.spinReadMinNs)})`;
  if (!o.spin) return notJudged('latency.spin-1ms', spinExp, o.stoppedEarly ?? 'not run');
  else if (!stepOk(o.spin)) return { name: 'latency.spin-1ms', expectation: spinExp, measured: null, pass: o.spin.skipped ? null : false, reason: stepProblem(o.spin) };
  else {
    const r = o.spin.json as LatencyProbeResult;
    const p50 = qv(r.device, 50);
    const clock = (r as { clock?: { driftNs?: unknown; uncertaintyNs?: unknown } }).clock;
    const measured = { p50Ns: p50, p99Ns: qv(r.device, 99), minNs: num(r.device?.min), maxNs: num(r.device?.max), n: r.device?.n ?? 0, spinNs: r.spinNs, engine: r.engine, clockDriftNs: num(clock?.driftNs), clockUncertaintyNs: num(clock?.uncertaintyNs) };
    if (!r.device || r.device.n === 0 || p50 === null) return { name: 'latency.spin-1ms', expectation: spinExp, measured, pass: false, reason: 'no device times in the result' };
    else if (!o.judgeTimings) return notJudged('latency.spin-1ms', spinExp, TIMING_NOT_JUDGED, measured);
    else {
      const min = measured.minNs;
      const reasons: string[] = [];
      if (p50 < EXPECT.spinReadMinNs || p50 > EXPECT.spinReadMaxNs) reasons.push(`P50 ${fmtNs(p50)} outside ${fmtNs(EXPECT.spinReadMinNs)}-${fmtNs(EXPECT.spinReadMaxNs)}`);
      if (min !== null && min < EXPECT.spinReadMinNs) reasons.push(`a launch read ${fmtNs(min)}, less than the spin itself: the device clock or its conversion is off`);
      return { name: 'latency.spin-1ms', expectation: spinExp, measured, pass: reasons.length === 0, reason: reasons.length ? reasons.join('; ') : `P50 ${fmtNs(p50)}, P99 ${fmtNs(measured.p99Ns)}` };
    }
  }
}

// ---- probe priority ------------------------------------------------------------------------------

/** Why a co-run did not measure (every round failed, or a skip the probe reports), or null when it measured. */
export function corunSkipReason(x: CoRunResult): string | null {
  const own = (x as unknown as { skipped?: unknown; skipReason?: unknown; status?: unknown; reason?: unknown });
  if (typeof own.skipped === 'string') return own.skipped;
  if (own.skipped === true || own.status === 'skipped') return typeof own.skipReason === 'string' ? own.skipReason : typeof own.reason === 'string' ? own.reason : 'skipped by the probe';
  const rounds = x.rounds ?? [];
  if (rounds.length && rounds.every((r) => r.failed)) return rounds.map((r) => r.failed).find(Boolean) ?? 'every round failed';
  if ((x.hpLatency?.n ?? 0) === 0 && x.lpThroughput === null) return rounds.map((r) => r.failed).find(Boolean) ?? 'nothing measured';
  return null;
}

/**
 * The share of the LP throughput the co-run may keep: the partition as made when the probe reports
 * it (an LP stream's compute units, or an lpAllowedShare that differs from 1 - reserve), else the
 * share as asked (1 - reserve), said in `source`.
 */
export function allowedShare(x: CoRunResult, computeUnits: number): { share: number; source: string; asMade: boolean } {
  const any = x as unknown as Record<string, unknown>;
  const part = (any.partition ?? null) as { lp?: { requested?: unknown; made?: unknown }; hp?: { requested?: unknown; made?: unknown } } | null;
  const made = num(part?.lp?.made);
  if (made !== null && made > 0 && computeUnits > 0) {
    const asked = num(part?.lp?.requested);
    const unit = x.mechanism === 'sm-partition' ? 'SMs' : 'CUs';
    return { share: Math.min(1, made / computeUnits), source: `partition as made: LP ${made} of ${computeUnits} ${unit}${asked !== null && asked !== made ? ` (asked ${asked})` : ''}`, asMade: true };
  }
  const asked = x.reserve !== null ? 1 - x.reserve : 1;
  if (typeof x.lpAllowedShare === 'number' && (typeof any.lpAllowedShareRequested === 'number' || Math.abs(x.lpAllowedShare - asked) > 1e-9)) {
    return { share: x.lpAllowedShare, source: `lpAllowedShare ${pct(x.lpAllowedShare)} as the probe reports it (as made)`, asMade: true };
  }
  return {
    share: typeof x.lpAllowedShare === 'number' ? x.lpAllowedShare : asked,
    source: `the share as asked (1 - reserve = ${pct(asked)}): this probe's JSON does not carry the partition as made`,
    asMade: false,
  };
}

export function checkPriority(o: Observations, deviceIndex = 0): CheckResult[] {
  const out: CheckResult[] = [];
  const step = o.priority.step;
  const plan = o.priority.plan;
  const dev = deviceOf(o.doctor.json, o.backend, deviceIndex);
  const ranExp = `probe priority on a filled device with every mechanism (${MECHANISMS.join(', ')}) exits 0 with JSON`;
  if (!step || step.skipped) {
    out.push(notJudged('priority.ran', ranExp, step?.skipped ?? o.stoppedEarly ?? 'not run'));
    return out;
  }
  if (!stepOk(step)) {
    out.push({ name: 'priority.ran', expectation: ranExp, measured: step.exitCode, pass: false, reason: stepProblem(step) });
    return out;
  }
  const r = step.json!;
  out.push({
    name: 'priority.ran',
    expectation: ranExp,
    measured: { rounds: r.rounds, durationNs: r.options?.durationNs, engine: r.engine, computeUnits: r.computeUnits, interrupted: r.interrupted },
    pass: !r.interrupted,
    ...(plan?.retriedWith
      ? { reason: `the run with every mechanism failed (${plan.firstAttempt ?? '?'}); retried with ${plan.retriedWith.join(', ')}` }
      : r.interrupted
        ? { reason: 'interrupted: rounds incomplete' }
        : {}),
  });
  out.push(priorityFillCheck(r, plan));
  for (const m of MECHANISMS) out.push(...mechanismChecks(o, r, m, dev));
  const q = r.quality;
  if (q) {
    out.push({
      name: 'priority.quality',
      expectation: "the probe's own quality block (host interference, drift, impossible values)",
      measured: { verdict: q.verdict, warnings: q.warnings.map((w) => `${w.code}${w.phase ? ` ${w.phase}` : ''}`) },
      pass: null,
      kind: 'info',
      ...(q.warnings.length ? { reason: q.warnings.slice(0, 5).map((w) => w.message).join(' | ') } : {}),
    });
  }
  return out;
}

/** What probe priority printed (the JSON of a step that ran). */
type PriorityJson = NonNullable<NonNullable<Observations['priority']['step']>['json']>;

/** priority.fill: the LP kernels occupy the device, as the probe reports it, else as planned. */
function priorityFillCheck(r: PriorityJson, plan: PriorityPlan | null): CheckResult {
  // fill: what the probe reports of its LP kernels (blocks x threads, occupancy reached), else the plan
  type Fill = { blocks?: number; threadsPerBlock?: number; computeUnits?: number; blocksPerCu?: number; occupancy?: number | null; waves?: number | null };
  const fills: { label: string; fill: Fill }[] = [
    ...(r.standalone ?? []).map((x) => ({ label: x.label, fill: (x as { lpFill?: Fill | null }).lpFill ?? null })),
    ...(r.runs ?? []).map((x) => ({ label: x.label, fill: (x as { lpFill?: Fill | null }).lpFill ?? null })),
  ].filter((x): x is { label: string; fill: Fill } => x.fill !== null && typeof x.fill === 'object');
  const fillExp = 'LP kernels occupy every compute unit the LP streams may use (resident blocks = compute units x resident blocks per unit: occupancy 100%)';
  const known = fills.filter((x) => typeof x.fill.occupancy === 'number');
  if (known.length) {
    const short = known.filter((x) => x.fill.occupancy! < 0.999);
    return {
      name: 'priority.fill',
      expectation: fillExp,
      measured: Object.fromEntries(fills.map((x) => [x.label, `${x.fill.blocks ?? '?'}x${x.fill.threadsPerBlock ?? '?'} on ${x.fill.computeUnits ?? '?'} CUs x ${x.fill.blocksPerCu ?? '?'}: ${typeof x.fill.occupancy === 'number' ? pct(x.fill.occupancy) : '?'}`])),
      pass: short.length === 0,
      reason: `--lp-blocks ${plan?.lpBlocksArg ?? '(default)'}${short.length ? `; below 100%: ${short.map((x) => `${x.label} ${pct(x.fill.occupancy)}`).join(', ')}` : ''}`,
    };
  } else {
    const lpBlocks = num((r.options as { lpBlocks?: unknown } | undefined)?.lpBlocks);
    const fill = plan?.fill ?? null;
    const need = fill && fill.blocksPerCu !== null ? fill.computeUnits * fill.blocksPerCu : null;
    return {
      name: 'priority.fill',
      expectation: fillExp,
      measured: { lpBlocks, threadsPerBlock: fill?.threadsPerBlock ?? LP_THREADS_PER_BLOCK, computeUnits: fill?.computeUnits ?? r.computeUnits, blocksPerCu: fill?.blocksPerCu ?? null, source: fill?.source ?? null },
      pass: need === null || lpBlocks === null ? null : lpBlocks >= need,
      reason:
        need === null || lpBlocks === null
          ? `the probe reports no occupancy and ${fill ? fill.source : 'doctor gave no device'}`
          : `the probe reports no occupancy; ${lpBlocks} blocks ${lpBlocks >= need ? '>=' : '<'} ${need} (${fill!.source})`,
    };
  }
}

/** The checks of one mechanism: not judged / failed when the probe has no measured co-run of it, else its verdicts. */
function mechanismChecks(o: Observations, r: PriorityJson, m: Mechanism, dev: NativeBackendDevice | null): CheckResult[] {
  const out: CheckResult[] = [];
  const x = r.runs?.find((y) => y.mechanism === m);
  const supported = mechanismSupported(m, dev);
  const names = mechanismCheckNames(m);
  // co-runs the probe skipped (a mechanism the backend lacks), with its reason
  const listed = (r as { skipped?: { mechanism?: string; reason?: string }[] }).skipped?.find((y) => y.mechanism === m);
  if (!x && !listed) {
    for (const [n, e] of names) out.push(notJudged(n, e, `no ${m} co-run in the probe result`));
    return out;
  }
  const skip = x ? corunSkipReason(x) : (listed!.reason ?? 'skipped by the probe');
  if (skip) {
    for (const [n, e] of names) {
      out.push(
        supported === false
          ? notJudged(n, e, `skipped: ${o.backend} lacks ${m} (${skip})`, null, 'not-applicable')
          : { name: n, expectation: e, measured: null, pass: false, reason: `${m} measured nothing although doctor says the device supports it: ${skip}` },
      );
    }
    return out;
  }
  if (!x) return out;
  judgeCoRun(coRunContext(o, r, m, x, names, out));
  return out;
}

/** What the verdicts on one measured co-run share; they push onto out. */
interface CoRunCtx {
  r: PriorityJson;
  m: Mechanism;
  x: CoRunResult;
  names: [string, string][];
  out: CheckResult[];
  judge: boolean;
  p99: number | null;
  aloneP99: number | null;
  /** too few HP samples for a P99, or null */
  few: string | null;
  /** stream errors, or null */
  errs: string | null;
  /** the figures every HP verdict shows */
  base: Record<string, unknown>;
  /** '; quality flags: ...' or '' */
  flagText: string;
}

/** Gathers what the verdicts on co-run x need (sample counts, errors, the probe's quality flags). */
function coRunContext(o: Observations, r: PriorityJson, m: Mechanism, x: CoRunResult, names: [string, string][], out: CheckResult[]): CoRunCtx {
  const alone = r.standaloneHp?.hpLatency;
  const aloneP99 = qv(alone, 99);
  const p99 = qv(x.hpLatency, 99);
  const few = !qSupported(x.hpLatency, 99) || !qSupported(alone, 99) ? `too few HP samples for a P99 (co-run n=${x.hpLatency?.n ?? 0}, standalone n=${alone?.n ?? 0}; >= 100 needed)` : null;
  const errs = x.errors?.length ? `stream errors: ${x.errors.slice(0, 3).join('; ')}` : null;
  const base = { hpP99Ns: p99, standaloneHpP99Ns: aloneP99, ratio: x.hpP99VsStandalone, addedHpP99Ns: x.addedHpP99Ns, lpShare: x.lpShare, lpKernelNs: x.lpKernelNs, hpN: x.hpLatency?.n ?? 0 };
  // what the probe's quality block flagged about this co-run or HP alone: said with the verdict, which it does not change
  const flags = [...new Set((r.quality?.warnings ?? []).filter((w) => w.phase === x.label || w.phase === 'standalone:hp' || w.phase?.startsWith('standalone:lp')).map((w) => `${w.code} (${w.phase})`))];
  const flagText = flags.length ? `; quality flags: ${flags.join(', ')}` : '';
  return { r, m, x, names, out, judge: o.judgeTimings, p99, aloneP99, few, errs, base, flagText };
}

/** judged: ok -> pass, else the failure reason (stream errors fail, too few samples or an unjudged timing are not judged). */
function verdict(c: CoRunCtx, name: string, exp: string, measured: unknown, ok: boolean | null, why0: string): void {
  const why = `${why0}${c.flagText}`;
  if (c.errs) {
    c.out.push({ name, expectation: exp, measured, pass: false, reason: `${c.errs}; ${why}` });
    return;
  }
  if (c.few) {
    c.out.push(notJudged(name, exp, c.few, measured));
    return;
  }
  if (!c.judge) {
    c.out.push(notJudged(name, exp, TIMING_NOT_JUDGED, measured));
    return;
  }
  c.out.push({ name, expectation: exp, measured, pass: ok, reason: why });
}

/** The verdicts on one measured co-run, by what its mechanism is expected to do (contention, wait, bound, spatial). */
function judgeCoRun(c: CoRunCtx): void {
  const { x, names, base, p99, aloneP99 } = c;
  const kind = expectationOf(c.m);
  if (kind === 'contention') {
    const [[n, e]] = names;
    const ratio = x.hpP99VsStandalone;
    verdict(c, n, e, base, ratio !== null && ratio >= EXPECT.noneContentionMin, `HP P99 ${fmtNs(p99)} = ${fx(ratio)}x standalone ${fmtNs(aloneP99)}${ratio !== null && ratio < EXPECT.noneContentionMin ? ': the LP load does not contend (is the device filled?)' : ''}`);
  } else if (kind === 'wait') {
    const [[n, e]] = names;
    const blocks = x.addedHpP99Ns !== null && x.lpKernelNs > 0 ? x.addedHpP99Ns / x.lpKernelNs : null;
    verdict(c, n, e, { ...base, addedInLpBlocks: blocks }, blocks !== null && blocks <= EXPECT.streamPriorityMaxLpBlocks, `added HP P99 ${fmtNs(x.addedHpP99Ns)} = ${fx(blocks)} LP blocks of ${fmtNs(x.lpKernelNs)}`);
  } else if (kind === 'bound') {
    const [[n, e]] = names;
    const k = x.throttleK ?? 1;
    const v = x.addedP99InLpKernels;
    const b = x.bound;
    verdict(
      c,
      n,
      e.replace('K LP', `${k} LP`),
      { ...base, addedInLpKernels: v, k, probeVerdict: b?.verdict ?? null },
      v !== null && v <= k,
      `added HP P99 ${fmtNs(x.addedHpP99Ns)} = ${fx(v)} LP kernels (K=${k})${b && b.verdict === 'inconclusive' ? `; the probe calls its bound inconclusive: ${b.reason ?? ''}` : ''}`,
    );
  } else {
    spatialVerdicts(c);
  }
}

/** Spatial mechanisms: HP P99 against standalone, and the LP share kept against what the partition allows. */
function spatialVerdicts(c: CoRunCtx): void {
  const { x, names, base, p99, aloneP99, errs, out } = c;
  const [[n1, e1], [n2, e2]] = names;
  const ratio = x.hpP99VsStandalone;
  verdict(c, n1, e1, base, ratio !== null && ratio <= EXPECT.spatialHpP99Max, `HP P99 ${fmtNs(p99)} = ${fx(ratio)}x standalone ${fmtNs(aloneP99)}`);
  const a = allowedShare(x, c.r.computeUnits);
  const min = a.share * EXPECT.spatialLpShareMin;
  const measured = { lpShare: x.lpShare, allowedShare: a.share, minShare: min, allowedFrom: a.source, reserve: x.reserve, lpThroughput: x.lpThroughput };
  const why = `LP ${pct(x.lpShare)} of standalone; allowed ${pct(a.share)} (${a.source}); needs >= ${pct(min)}`;
  if (errs) out.push({ name: n2, expectation: e2, measured, pass: false, reason: `${errs}; ${why}` });
  else if (x.lpShare === null) out.push({ name: n2, expectation: e2, measured, pass: false, reason: 'no LP share (no standalone LP throughput)' });
  else if (!c.judge) out.push(notJudged(n2, e2, TIMING_NOT_JUDGED, measured));
  else out.push({ name: n2, expectation: e2, measured, pass: x.lpShare >= min, reason: `${why}${c.flagText}` });
}

/** The checks one mechanism gives, [name, expectation], by its registry expectation. */
export function mechanismCheckNames(m: Mechanism): [string, string][] {
  switch (expectationOf(m)) {
    case 'contention':
      return [[`priority.${m}.contention`, `${m} shows contention: HP P99 >= ${EXPECT.noneContentionMin}x standalone`]];
    case 'wait':
      return [[`priority.${m}.wait`, `${m}: added HP P99 (co-run - standalone) <= ${EXPECT.streamPriorityMaxLpBlocks} LP blocks (about one; a block spins one LP kernel length)`]];
    case 'bound':
      return [[`priority.${m}.bound`, `${m}: added HP P99 <= K LP kernels`]];
    case 'spatial':
      return [
        [`priority.${m}.hp-p99`, `${m}: HP P99 <= ${EXPECT.spatialHpP99Max}x standalone`],
        [`priority.${m}.lp-share`, `${m}: LP throughput >= ${EXPECT.spatialLpShareMin * 100}% of its allowed share (the partition as made)`],
      ];
  }
}

// ---- KFD priority (AMD) --------------------------------------------------------------------------

export function checkKfd(o: Observations): CheckResult[] {
  const out: CheckResult[] = [];
  const vExp = "KFD verification during stream-priority: the HP stream's KFD queues at HIP high, LP's at low (MQD priorities)";
  const sExp = `--kfd-priority: the HP stream's KFD queues set by AMDKFD_IOC_UPDATE_QUEUE and read back from the MQDs`;
  if (o.backend !== 'hip') {
    const why = `KFD queues are AMD's (backend ${o.backend ?? 'none'})`;
    out.push(notJudged('kfd.verify', vExp, why, null, 'not-applicable'), notJudged('kfd.set-priority', sExp, why, null, 'not-applicable'));
    return out;
  }
  // the main priority probe verifies mid-run on a KFD host (its --kfd-check default)
  const sp = stepOk(o.priority.step) ? o.priority.step!.json!.runs?.find((x) => x.mechanism === 'stream-priority') : undefined;
  const v = sp?.kfd ?? null;
  if (!v) out.push(notJudged('kfd.verify', vExp, sp ? 'the probe ran no KFD check (no KFD on this host, or --no-kfd-check)' : 'no stream-priority co-run to verify'));
  else if (!v.verify.checkable) out.push(notJudged('kfd.verify', vExp, `not checkable: ${v.verify.reason ?? 'MQDs unreadable'} (debugfs kfd/mqds needs root)`, v.verify.lines));
  else out.push({ name: 'kfd.verify', expectation: vExp, measured: v.verify.lines, pass: v.verify.ok, ...(v.verify.ok ? {} : { reason: v.verify.verdicts.filter((x) => !x.ok).map((x) => x.line).join('; ') }) });

  const note = o.kfd.note ? `; ${o.kfd.note}` : '';
  if (!o.kfd.step) out.push(notJudged('kfd.set-priority', sExp, o.kfd.skipped ?? 'not run'));
  else if (!stepOk(o.kfd.step)) out.push({ name: 'kfd.set-priority', expectation: sExp, measured: null, pass: o.kfd.step.skipped ? null : false, reason: stepProblem(o.kfd.step) });
  else {
    const k = o.kfd.step.json!.runs?.find((x) => x.mechanism === 'stream-priority')?.kfd ?? null;
    if (!k) out.push({ name: 'kfd.set-priority', expectation: sExp, measured: null, pass: false, reason: 'the probe reports no KFD result for stream-priority' });
    else if (!k.verify.checkable) out.push(notJudged('kfd.set-priority', sExp, `not checkable: ${k.verify.reason ?? 'MQDs unreadable'} (debugfs kfd/mqds needs root)`, k.lines));
    else out.push({ name: 'kfd.set-priority', expectation: sExp, measured: { priority: o.kfd.priority, lines: k.lines }, pass: k.ok, ...(k.ok ? (note ? { reason: note.slice(2) } : {}) : { reason: `${(k.set?.lines ?? k.lines).slice(0, 4).join('; ')}${note}` }) });
  }
  return out;
}

// ---- gpucolo run inference-service ---------------------------------------------------------------

const FORM_TEXT: Record<RunObservation['form'], string> = {
  torch: 'torch form, one worker process per model',
  'torch-in-process': 'torch form, HP and LP models in one worker process',
  probe: 'probe form on the cpu backend (stands in for the torch forms here)',
};

export function checkRun(o: Observations): CheckResult[] {
  const out: CheckResult[] = [];
  for (const s of o.runsSkipped) {
    out.push(notJudged(`run.${s.form}.ran`, `gpucolo run inference-service (${FORM_TEXT[s.form]}) exits 0 with results.json`, s.reason));
  }
  for (const ro of o.runs) {
    const p = `run.${ro.form}`;
    const argsText = ro.formArgs.join(' ');
    const ranExp = `gpucolo run inference-service ${argsText} exits 0 with results.json (${FORM_TEXT[ro.form]})`;
    const st = ro.step;
    const res = st.json as Results | null;
    if (st.skipped) {
      out.push(notJudged(`${p}.ran`, ranExp, st.skipped));
      continue;
    }
    out.push({ name: `${p}.ran`, expectation: ranExp, measured: { exitCode: st.exitCode, elapsedS: st.elapsedS, partial: res?.partial ?? null }, pass: st.exitCode === 0 && !!res && !res.partial, ...(st.exitCode === 0 && res && !res.partial ? {} : { reason: res?.partial ? 'partial results (interrupted)' : stepProblem(st) }) });
    if (!res) continue;
    const torch = ro.form !== 'probe';
    const dev = res.backend?.device ?? null;
    if (torch) {
      const onGpu = typeof dev === 'string' && dev !== '' && !/^cpu\b/.test(dev);
      out.push({
        name: `${p}.device`,
        expectation: 'torch workers on the GPU (results backend.device is a GPU device)',
        measured: { form: res.scenario?.form ?? null, device: dev, gpu: res.backend?.gpu ?? null, torch: res.host?.torch ?? null },
        pass: res.scenario?.form === 'torch' && onGpu,
        ...(res.scenario?.form !== 'torch' ? { reason: `ran the ${res.scenario?.form} form` } : !onGpu ? { reason: `workers ran on ${dev ?? 'an unknown device'}: PyTorch sees no GPU with this python (--python, GPUCOLO_PYTHON)` } : {}),
      });
    } else {
      out.push({ name: `${p}.device`, expectation: `probe form on the ${o.backend} backend`, measured: { form: res.scenario?.form ?? null, backend: res.backend?.name ?? null, device: dev }, pass: res.scenario?.form === 'probe' && res.backend?.name === o.backend });
    }
    out.push(phasesCheck(p, res));
    const spPhase = res.phases?.find((ph) => ph.name === 'corun:stream-priority');
    const none = res.phases?.find((ph) => ph.name === 'corun:none');
    if (spPhase) {
      const hp = (ph: typeof spPhase | undefined): number | null => {
        if (!ph || !ph.tasks?.length) return null;
        const top = [...ph.tasks].sort((a, b) => b.priority - a.priority)[0];
        return top.latencyMs?.p99 ?? null;
      };
      out.push({
        name: `${p}.stream-priority`,
        expectation: 'what stream-priority is in this form (real priority, MPS, or not across processes) and the HP P99 against corun:none',
        measured: { status: spPhase.status, notes: spPhase.notes ?? [], hpP99Ms: hp(spPhase), noneHpP99Ms: hp(none) },
        pass: null,
        kind: 'info',
        ...(spPhase.reason ? { reason: spPhase.reason } : {}),
      });
    }
    if (res.quality) out.push({ name: `${p}.quality`, expectation: "the run's quality block", measured: { verdict: res.quality.verdict, warnings: res.quality.warnings.map((w) => w.code) }, pass: null, kind: 'info' });
  }
  return out;
}

/** Every phase ran (or was skipped with its reason), and every task of a phase that ran completed requests. */
export function phasesCheck(prefix: string, res: Results): CheckResult {
  const rows = (res.phases ?? []).map((ph) => ({
    phase: ph.name,
    status: ph.status,
    reason: ph.reason ?? null,
    completed: Object.fromEntries((ph.tasks ?? []).map((t) => [t.name, t.requests?.completed ?? 0])),
  }));
  const bad: string[] = [];
  for (const ph of res.phases ?? []) {
    if (ph.status === 'failed' || ph.status === 'partial') bad.push(`${ph.name}: ${ph.status}${ph.reason ? ` (${ph.reason})` : ''}`);
    else if (ph.status === 'ok') {
      const empty = (ph.tasks ?? []).filter((t) => (t.requests?.completed ?? 0) === 0);
      if (!(ph.tasks ?? []).length) bad.push(`${ph.name}: ok with no tasks`);
      for (const t of empty) bad.push(`${ph.name}: ${t.name} completed 0 requests although the phase says ok`);
    }
  }
  if (!rows.length) bad.push('no phases');
  const skipped = rows.filter((r) => r.status === 'skipped').map((r) => `${r.phase} skipped: ${r.reason ?? 'no reason given'}`);
  return {
    name: `${prefix}.phases`,
    expectation: 'every phase ok (or skipped with its reason: a mechanism this form lacks), every task of an ok phase completed requests',
    measured: rows,
    pass: bad.length === 0,
    ...(bad.length ? { reason: bad.join('; ') } : skipped.length ? { reason: skipped.join('; ') } : {}),
  };
}

// ---- the whole run -------------------------------------------------------------------------------

export function checkBudget(o: Observations): CheckResult {
  const exp = `the whole check finishes within ${EXPECT.budgetS} s on one GPU (issue 15: under 8 minutes on one H100)`;
  if (o.backend === 'cpu' || !o.backend) return notJudged('budget', exp, `${o.backend ?? 'no'} backend: the budget is for a GPU run`, o.elapsedS);
  return { name: 'budget', expectation: exp.replace(`${EXPECT.budgetS} s`, `${o.budgetS} s`), measured: o.elapsedS, unit: 's', pass: o.elapsedS <= o.budgetS };
}

/** Every check, in the order of the steps. */
export function evaluate(o: Observations, deviceIndex = 0): CheckResult[] {
  return [...checkDoctor(o, deviceIndex), ...checkLatency(o), ...checkPriority(o, deviceIndex), ...checkKfd(o), ...checkRun(o), checkBudget(o)];
}
