/** Human durations ("100ms", "10s", "1.5m", "250us", "2h") <-> nanoseconds. */
import { outOfRange } from './errors.js';

const UNITS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Parses a duration; a bare number is seconds. Throws a RangeError with the offending text. */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|h)?\s*$/.exec(text);
  if (!m) throw outOfRange(`not a duration: "${text}" (use e.g. 100ms, 10s, 1.5m)`, 'ERR_INVALID_ARG_VALUE');
  const ns = Number(m[1]) * UNITS[m[2] ?? 's'];
  if (!Number.isFinite(ns)) throw outOfRange(`duration out of range: "${text}"`);
  return Math.round(ns);
}

/** 1500000 -> "1.5ms", 10e9 -> "10s". */
export function formatDuration(ns: number): string {
  const a = Math.abs(ns);
  if (a >= 60e9 && a % 60e9 === 0) return `${ns / 60e9}m`;
  if (a >= 1e9) return `${+(ns / 1e9).toPrecision(4)}s`;
  if (a >= 1e6) return `${+(ns / 1e6).toPrecision(4)}ms`;
  if (a >= 1e3) return `${+(ns / 1e3).toPrecision(4)}us`;
  return `${ns}ns`;
}

/** 0.1 -> "10%", 0.125 -> "12.5%": a share as people write it (and as --reserve 10% parses it). */
export function formatPercent(share: number): string {
  return `${+(share * 100).toPrecision(4)}%`;
}
