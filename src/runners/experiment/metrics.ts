/**
 * Metrics of a training run, read from its log with the registry's regexes.
 *
 * A regex is JavaScript syntax; the Python spellings of named groups that training repositories
 * often carry, `(?P<name>...)` and `(?P=name)`, are accepted and translated. It is compiled with
 * the flags `g` and `m` (so `^` and `$` match at line starts and ends). Its first capture group is
 * the value: the last match in the log whose group parses as a finite number wins (a run that
 * prints its accuracy every epoch reports the final one); no such match gives null.
 *
 * The patterns come from a models file, which may come from anywhere, and JavaScript's regex
 * engine backtracks: `^(a+)+$` on a line of 40 a's and a '!' takes longer than the run did. So the
 * runner matches with extractMetricsBounded: in a worker thread, each regex with a time limit
 * (METRIC_MATCH_TIMEOUT_MS); one that does not finish in time is stopped (the worker is
 * terminated) and refused by name, its metric null, while the supervisor's own thread stays free
 * (signals, the registry, the next run). A linear-time engine (RE2) was not used: the `re2`
 * package builds natively at install (its current releases need Node 22), and `re2-wasm` has a
 * fixed 16 MiB heap that aborts the process on a long log.
 */
import { Worker } from 'node:worker_threads';
import { GpucoloError } from '../../errors.js';

/** `(?P<name>` -> `(?<name>`, `(?P=name)` -> `\k<name>` (Python's spellings of named groups). */
export function toJsRegexSource(source: string): string {
  return source.replace(/\(\?P<([A-Za-z_][A-Za-z0-9_]*)>/g, '(?<$1>').replace(/\(\?P=([A-Za-z_][A-Za-z0-9_]*)\)/g, '\\k<$1>');
}

/**
 * Why a metric regex cannot be used (it does not compile, or it has no capture group for the
 * value), or null when it is fine.
 */
export function metricRegexProblem(source: string): string | null {
  let re: RegExp;
  try {
    re = new RegExp(toJsRegexSource(source), 'gm');
  } catch (err) {
    return `is not a valid regular expression: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`;
  }
  // an alternation with the empty pattern always matches: the length of its result counts the groups
  const groups = new RegExp(`${re.source}|`).exec('')!.length - 1;
  if (groups < 1) return 'has no capture group: the first group (...) captures the value, e.g. "Test Accuracy:\\s*([\\d.]+)"';
  return null;
}

/** The regex of one metric, compiled as extractMetrics uses it. */
export function compileMetricRegex(name: string, source: string): RegExp {
  const problem = metricRegexProblem(source);
  if (problem) throw new GpucoloError(`regex of metric ${name} ${problem}`, { code: 'EBADCONFIG' });
  return new RegExp(toJsRegexSource(source), 'gm');
}

/** "93.41" / " 93.41% " / "1e-3" -> number; anything else (or a non-finite value) -> null. */
function parseValue(text: string | undefined): number | null {
  if (text === undefined) return null;
  const v = Number.parseFloat(text.trim());
  return Number.isFinite(v) ? v : null;
}

/**
 * metric name -> value of the first capture group of the last match in `log` (null when the
 * regex never matches with a number). Runs on the calling thread with no time limit: for patterns
 * that are not your own, use extractMetricsBounded.
 */
export function extractMetrics(log: string, regexes: Record<string, string>): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const [name, source] of Object.entries(regexes)) {
    const re = compileMetricRegex(name, source);
    let value: number | null = null;
    for (const m of log.matchAll(re)) {
      const v = parseValue(m[1]);
      if (v !== null) value = v;
    }
    out[name] = value;
  }
  return out;
}

/** How long one metric regex may search one log before it is refused. */
export const METRIC_MATCH_TIMEOUT_MS = 30_000;

export interface RefusedMetric {
  metric: string;
  /** the regex as the registry gives it */
  pattern: string;
  /** one line: why it was refused */
  reason: string;
}

export interface BoundedMetrics {
  /** every metric of `regexes`: its value, or null (no match, refused, or not searched) */
  values: Record<string, number | null>;
  /** regexes that did not compile or did not finish within the time limit */
  refused: RefusedMetric[];
  /** the signal stopped the search: metrics not searched by then are null */
  interrupted: boolean;
}

export interface BoundedOptions {
  /** per regex (default METRIC_MATCH_TIMEOUT_MS) */
  timeoutMs?: number;
  /** stops the search at once (the worker is terminated) */
  signal?: AbortSignal;
}

type FromWorker = { kind: 'ready' } | { kind: 'value'; name: string; value: number | null } | { kind: 'error'; name: string; message: string };

/**
 * The worker: decodes the log once, then runs each regex in turn and posts its value. Self-
 * contained (its text is the worker's source; see src/dispatch/ts-engine/worker-source.ts for the
 * rules): no imports, nothing from the module around it.
 */
function metricsWorkerMain(): void {
  const wt = (process as unknown as { getBuiltinModule(id: string): unknown }).getBuiltinModule('node:worker_threads') as typeof import('node:worker_threads');
  const data = wt.workerData as { log: SharedArrayBuffer; length: number; metrics: [string, string][] };
  const port = wt.parentPort!;
  const text = Buffer.from(data.log, 0, data.length).toString('utf8');
  port.postMessage({ kind: 'ready' });
  for (const [name, source] of data.metrics) {
    let re: RegExp;
    try {
      re = new RegExp(source, 'gm');
    } catch (err) {
      port.postMessage({ kind: 'error', name, message: (err as Error).message });
      continue;
    }
    let value: number | null = null;
    for (const m of text.matchAll(re)) {
      if (m[1] === undefined) continue;
      const v = Number.parseFloat(m[1].trim());
      if (Number.isFinite(v)) value = v;
    }
    port.postMessage({ kind: 'value', name, value });
  }
}

const WORKER_SOURCE = `"use strict";\nvar __name = function (target) { return target; };\n(${metricsWorkerMain.toString()})();\n`;

function shortPattern(p: string): string {
  return p.length > 80 ? `${p.slice(0, 77)}...` : p;
}

/**
 * extractMetrics off the calling thread, each regex with a time limit: a regex that does not
 * finish within `timeoutMs` on this log (catastrophic backtracking) is stopped and refused with
 * one line naming it, and the others still run. Never rejects.
 */
export function extractMetricsBounded(log: string | Uint8Array, regexes: Record<string, string>, opts: BoundedOptions = {}): Promise<BoundedMetrics> {
  const timeoutMs = opts.timeoutMs ?? METRIC_MATCH_TIMEOUT_MS;
  const values: Record<string, number | null> = Object.fromEntries(Object.keys(regexes).map((k) => [k, null]));
  const refused: RefusedMetric[] = [];
  const todo: [string, string][] = [];
  for (const [name, pattern] of Object.entries(regexes)) {
    const problem = metricRegexProblem(pattern);
    if (problem) refused.push({ metric: name, pattern, reason: `regex of metric ${name} ${problem}` });
    else todo.push([name, toJsRegexSource(pattern)]);
  }
  if (!todo.length || opts.signal?.aborted) return Promise.resolve({ values, refused, interrupted: opts.signal?.aborted === true && todo.length > 0 });

  // the log once, shared by every worker this takes (one more after each refused regex)
  const bytes = typeof log === 'string' ? Buffer.from(log, 'utf8') : log;
  const shared = new SharedArrayBuffer(Math.max(1, bytes.length));
  new Uint8Array(shared).set(bytes);

  return new Promise((resolve) => {
    const s: SearchState = { regexes, todo, timeoutMs, shared, length: bytes.length, signal: opts.signal, values, refused, worker: null, timer: null, next: 0, finished: false, resolve, onAbort: () => finishSearch(s, true) };
    opts.signal?.addEventListener('abort', s.onAbort, { once: true });
    startWorker(s);
  });
}

/** What one bounded search holds while it runs: the regexes still to search, the worker and its timer. */
interface SearchState {
  /** the regexes as the registry gives them (for the refusals) */
  regexes: Record<string, string>;
  /** [metric, JS regex source] of every regex to search */
  todo: [string, string][];
  timeoutMs: number;
  /** the log, shared by every worker the search takes */
  shared: SharedArrayBuffer;
  /** the log's length in bytes */
  length: number;
  signal?: AbortSignal;
  values: Record<string, number | null>;
  refused: RefusedMetric[];
  worker: Worker | null;
  timer: NodeJS.Timeout | null;
  /** index into todo of the regex being searched */
  next: number;
  finished: boolean;
  resolve: (r: BoundedMetrics) => void;
  onAbort: () => void;
}

/** Clears the time limit of the regex being searched. */
function clearSearchTimer(s: SearchState): void {
  if (s.timer) clearTimeout(s.timer);
  s.timer = null;
}

/** Ends the search once: stops the timer and the worker, lets go of the signal, resolves. */
function finishSearch(s: SearchState, interrupted: boolean): void {
  if (s.finished) return;
  s.finished = true;
  clearSearchTimer(s);
  s.signal?.removeEventListener('abort', s.onAbort);
  const w = s.worker;
  s.worker = null;
  if (w) void w.terminate();
  s.resolve({ values: s.values, refused: s.refused, interrupted });
}

/** Starts the time limit of the regex at s.next; when it runs out the regex is refused and the rest go on in a fresh worker. */
function armSearchTimer(s: SearchState): void {
  clearSearchTimer(s);
  const [name, pattern] = s.todo[s.next];
  s.timer = setTimeout(() => {
    // stuck in this regex: stop it, refuse it, go on with the rest in a fresh worker
    const w = s.worker;
    s.worker = null;
    if (w) void w.terminate();
    s.refused.push({
      metric: name,
      pattern: s.regexes[name],
      reason: `regex of metric ${name} ("${shortPattern(s.regexes[name] ?? pattern)}") did not finish within ${s.timeoutMs / 1000} s on a ${s.length}-byte log (catastrophic backtracking?): refused, the metric is null; rewrite it without nested repetition`,
    });
    s.next++;
    startWorker(s);
  }, s.timeoutMs);
}

/** Refuses the regex at s.next with a reason and moves past it. */
function refuseCurrent(s: SearchState, reason: (name: string) => string): void {
  const [name] = s.todo[s.next];
  s.refused.push({ metric: name, pattern: s.regexes[name], reason: reason(name) });
  s.next++;
}

/** A fresh worker for the regexes from s.next on (or the end of the search when none is left). */
function startWorker(s: SearchState): void {
  if (s.finished) return;
  if (s.next >= s.todo.length) {
    finishSearch(s, false);
    return;
  }
  const w = new Worker(WORKER_SOURCE, { eval: true, name: 'gpucolo metrics', workerData: { log: s.shared, length: s.length, metrics: s.todo.slice(s.next) } });
  s.worker = w;
  w.on('message', (m: FromWorker) => onWorkerMessage(s, w, m));
  w.on('error', (err) => {
    if (s.worker !== w) return;
    // the worker itself failed (out of memory on a huge log): what is left is not searched
    s.worker = null;
    clearSearchTimer(s);
    refuseCurrent(s, (name) => `regex of metric ${name} could not be run: ${err.message.split('\n')[0]}`);
    startWorker(s);
  });
  w.on('exit', () => {
    if (s.worker !== w || s.finished) return;
    // exited without an error event and without answering: count the regex as refused
    s.worker = null;
    clearSearchTimer(s);
    if (s.next < s.todo.length) refuseCurrent(s, (name) => `regex of metric ${name} could not be run: the matching thread exited`);
    startWorker(s);
  });
}

/** The worker is ready (the first regex's time starts) or answered one regex (its value, or why it cannot run). */
function onWorkerMessage(s: SearchState, w: Worker, m: FromWorker): void {
  if (s.worker !== w) return;
  if (m.kind === 'ready') {
    armSearchTimer(s);
    return;
  }
  const [name] = s.todo[s.next];
  if (m.kind === 'value') s.values[name] = m.value;
  else s.refused.push({ metric: name, pattern: s.regexes[name], reason: `regex of metric ${name} cannot run: ${m.message.split('\n')[0]}` });
  s.next++;
  if (s.next >= s.todo.length) finishSearch(s, false);
  else armSearchTimer(s);
}
