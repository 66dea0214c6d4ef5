/**
 * From judged checks to summary.json, the exit code and the lines on screen (pure).
 *
 * Exit codes of `npm run gpu-check`:
 *   0  no expectation failed (some may be skipped: their reasons are in the summary)
 *   1  at least one expectation failed
 *   2  the check could not run (bad option, no dist/, unreadable --replay file)
 *   3  --strict: nothing failed, but an expectation that applies here was not judged
 *   130 interrupted (Ctrl-C); the summary holds what ran
 */
import { deviceOf } from './expectations.js';
import type { CheckResult, GpuCheckSummary, Observations } from './types.js';

export const SUMMARY_SCHEMA = 'gpucolo.gpu-check/1';

export function counts(checks: CheckResult[]): GpuCheckSummary['counts'] {
  const c = { total: checks.length, passed: 0, failed: 0, skipped: 0, notApplicable: 0, info: 0 };
  for (const x of checks) {
    if (x.kind === 'info') c.info++;
    else if (x.kind === 'not-applicable') c.notApplicable++;
    else if (x.pass === true) c.passed++;
    else if (x.pass === false) c.failed++;
    else c.skipped++;
  }
  return c;
}

export function exitCodeFor(c: GpuCheckSummary['counts'], strict: boolean, interrupted = false): number {
  if (interrupted) return 130;
  if (c.failed > 0) return 1;
  if (strict && c.skipped > 0) return 3;
  return 0;
}

export function buildSummary(o: Observations, checks: CheckResult[], opts: { strict: boolean; rawDir: string; replayedFrom?: string; interrupted?: boolean; deviceIndex?: number }): GpuCheckSummary {
  const c = counts(checks);
  const exitCode = exitCodeFor(c, opts.strict, opts.interrupted);
  const steps = [
    o.doctor,
    ...o.latency.rounds.flatMap((r) => [r.engine, ...(r.floor ? [r.floor] : [])]),
    ...(o.spin ? [o.spin] : []),
    ...(o.priority.step ? [o.priority.step] : []),
    ...(o.kfd.step ? [o.kfd.step] : []),
    ...o.runs.map((r) => r.step),
  ].map((s) => ({
    name: s.name,
    argv: s.argv,
    exitCode: s.exitCode,
    elapsedS: s.elapsedS,
    ...(s.timedOut ? { timedOut: true } : {}),
    ...(s.skipped ? { skipped: s.skipped } : {}),
    ...(s.file ? { file: s.file } : {}),
    ...(s.exitCode !== 0 && s.stderrTail.length ? { stderrTail: s.stderrTail } : {}),
  }));
  return {
    schema: SUMMARY_SCHEMA,
    gpucoloVersion: o.gpucoloVersion,
    createdAt: new Date().toISOString(),
    host: o.host,
    requestedBackend: o.requestedBackend,
    backend: o.backend,
    backendWhy: o.backendWhy,
    device: deviceOf(o.doctor.json, o.backend, opts.deviceIndex ?? 0)?.name ?? null,
    judgeTimings: o.judgeTimings,
    elapsedS: o.elapsedS,
    ...(opts.replayedFrom ? { replayedFrom: opts.replayedFrom } : {}),
    exitCode,
    ok: c.failed === 0,
    counts: c,
    checks,
    steps,
    rawDir: opts.rawDir,
  };
}

function measuredText(m: unknown): string {
  if (m === null || m === undefined) return '-';
  if (typeof m === 'number') return Number.isInteger(m) ? String(m) : m.toPrecision(4);
  if (typeof m === 'string' || typeof m === 'boolean') return String(m);
  const s = JSON.stringify(m, (_k, v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? Number(v.toPrecision(4)) : v));
  return s.length > 140 ? `${s.slice(0, 137)}...` : s;
}

/** The screen: one line per check (PASS / FAIL / SKIP / N/A / INFO), then the verdict. */
export function summaryText(s: GpuCheckSummary, file: string): string {
  const out: string[] = [`gpucolo gpu-check: backend ${s.backend ?? 'none'}${s.device ? ` (${s.device})` : ''}; ${s.backendWhy}; ${s.elapsedS.toFixed(1)} s${s.replayedFrom ? `; replayed from ${s.replayedFrom}` : ''}`];
  if (!s.judgeTimings && s.backend === 'cpu') out.push('timings are recorded, not judged (cpu backend; --judge-cpu-timings judges them)');
  for (const c of s.checks) {
    const tag = c.kind === 'info' ? 'INFO' : c.kind === 'not-applicable' ? 'N/A ' : c.pass === true ? 'PASS' : c.pass === false ? 'FAIL' : 'SKIP';
    out.push(`${tag}  ${c.name}: ${c.expectation}`);
    out.push(`        measured: ${measuredText(c.measured)}${c.unit ? ` ${c.unit}` : ''}`);
    if (c.reason) out.push(`        ${c.pass === false ? 'why' : 'note'}: ${c.reason}`);
  }
  const k = s.counts;
  out.push('', `${k.passed} passed, ${k.failed} failed, ${k.skipped} skipped, ${k.notApplicable} not applicable, ${k.info} info; exit ${s.exitCode}; summary: ${file}`);
  return `${out.join('\n')}\n`;
}
