/**
 * Metrics of a training run, read from its log with the registry's regexes.
 *
 * A regex is JavaScript syntax; the Python spellings of named groups that training repositories
 * often carry, `(?P<name>...)` and `(?P=name)`, are accepted and translated. It is compiled with
 * the flags `g` and `m` (so `^` and `$` match at line starts and ends). Its first capture group is
 * the value: the last match in the log whose group parses as a finite number wins (a run that
 * prints its accuracy every epoch reports the final one); no such match gives null.
 */
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
 * regex never matches with a number).
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
