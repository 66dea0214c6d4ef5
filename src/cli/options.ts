/** Options shared by the commands: KFD tree roots, and the parsers of option values (numbers, shares, durations, lists, pids). */
import { Command, InvalidArgumentError, Option } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import type { Impl } from '../native.js';
import { formatDuration, parseDuration } from '../units.js';
import { CliError } from './errors.js';

export interface RootOptions {
  root?: string;
  sysfsRoot?: string;
  debugfsRoot?: string;
  procRoot?: string;
  impl?: Impl;
}

export function addRootOptions(cmd: Command): Command {
  return cmd
    .option('--root <dir>', 'a whole fixture/host tree: <dir>/sys, <dir>/sys/kernel/debug, <dir>/proc')
    .option('--sysfs-root <dir>', 'sysfs root (reads <dir>/class/kfd/kfd/...)', undefined)
    .option('--debugfs-root <dir>', 'debugfs root (reads <dir>/kfd/{mqds,hqds,rls})', undefined)
    .option('--proc-root <dir>', 'procfs root (reads <dir>/<pid>/status)', undefined)
    .addOption(new Option('--impl <impl>', 'parser implementation (default: native when loaded)').choices(['native', 'ts']));
}

/** Resolves --root and the per-tree roots into the three roots (explicit ones win). */
export function resolveRoots(o: RootOptions): { sysfsRoot?: string; debugfsRoot?: string; procRoot?: string } {
  const base = o.root ? path.resolve(o.root) : undefined;
  return {
    sysfsRoot: o.sysfsRoot ?? (base ? path.join(base, 'sys') : undefined),
    debugfsRoot: o.debugfsRoot ?? (base ? path.join(base, 'sys/kernel/debug') : undefined),
    procRoot: o.procRoot ?? (base ? path.join(base, 'proc') : undefined),
  };
}

/*
 * Argument parsers for option values, shared by every command: small factories that return a
 * commander argParser. A bad value throws InvalidArgumentError (commander prints it on one line
 * after the option's name; the CLI exits 2). Messages read `not <what>: "<value>"`.
 */

/** A parser from a function that throws on bad input: its message becomes the usage error. */
export function argFrom<T>(parse: (v: string) => T): (v: string) => T {
  return (v) => {
    try {
      return parse(v);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

export interface IntegerArg {
  /** smallest value accepted (default 0) */
  min?: number;
  /** largest value accepted (default Number.MAX_SAFE_INTEGER: larger ones are not exact) */
  max?: number;
  /** what the value is, for the message: `not ${what}: "v"` (default "an integer >= min" or "an integer from min to max") */
  what?: string;
  /** appended to the message in parentheses, e.g. the range when `what` does not say it */
  hint?: string;
}

/** Whole numbers written in decimal digits (no sign, no exponent), min..max. */
export function integerArg({ min = 0, max, what, hint }: IntegerArg = {}): (v: string) => number {
  const top = max ?? Number.MAX_SAFE_INTEGER;
  const label = what ?? (max === undefined ? `an integer >= ${min}` : `an integer from ${min} to ${max}`);
  return (v) => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || n < min || n > top) throw new InvalidArgumentError(`not ${label}: "${v}"${hint ? ` (${hint})` : ''}`);
    return n;
  };
}

export interface NumberArg {
  /** smallest value accepted (default: none) */
  min?: number;
  /** min itself is refused (> min rather than >= min) */
  exclusive?: boolean;
  /** largest value accepted (default: none) */
  max?: number;
  /** what the value is, for the message (default "a number > min", "a number from min to max", ...) */
  what?: string;
}

/** Finite numbers as JavaScript reads them ("2", "0.5", "1e3"), within the bounds. */
export function numberArg({ min, exclusive = false, max, what }: NumberArg = {}): (v: string) => number {
  const label =
    what ??
    (min !== undefined && max !== undefined
      ? `a number from ${min} to ${max}`
      : min !== undefined
        ? `a number ${exclusive ? '>' : '>='} ${min}`
        : max !== undefined
          ? `a number <= ${max}`
          : 'a number');
  return (v) => {
    const n = Number(v);
    const ok = v.trim() !== '' && Number.isFinite(n) && (min === undefined || (exclusive ? n > min : n >= min)) && (max === undefined || n <= max);
    if (!ok) throw new InvalidArgumentError(`not ${label}: "${v}"`);
    return n;
  };
}

/** A share strictly between 0 and 1, as a percentage ("10%") or a fraction ("0.1"). */
export function shareArg(): (v: string) => number {
  return (v) => {
    const m = /^(\d+(?:\.\d+)?)%$/.exec(v.trim());
    const x = m ? Number(m[1]) / 100 : Number(v);
    if (!(x > 0 && x < 1)) throw new InvalidArgumentError(`not a share: "${v}" (e.g. 10%)`);
    return x;
  };
}

/** One of `allowed`, e.g. `--layout notes`; the message lists them. */
export function choiceArg<T extends string>(name: string, allowed: readonly T[]): (v: string) => T {
  return (v) => {
    const x = v.trim();
    if (!(allowed as readonly string[]).includes(x)) throw new InvalidArgumentError(`unknown ${name} "${x}" (${allowed.join(', ')})`);
    return x as T;
  };
}

export interface ListArg<T extends string> {
  /** an empty list ("" or ",") is a value (default: refused, "name at least one <name>") */
  allowEmpty?: boolean;
  /** what is wrong with a known name here, or null/undefined when it may be used */
  check?: (x: T) => string | null | undefined;
}

/** A comma list of known names ("none,throttle"); spaces around names and empty items are ignored. */
export function listArg<T extends string>(name: string, allowed: readonly T[], { allowEmpty = false, check }: ListArg<T> = {}): (v: string) => T[] {
  const known = choiceArg(name, allowed);
  return (v) => {
    const list = v
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean)
      .map((x) => {
        const item = known(x);
        const why = check?.(item);
        if (why) throw new InvalidArgumentError(why);
        return item;
      });
    if (!list.length && !allowEmpty) throw new InvalidArgumentError(`name at least one ${name}`);
    return list;
  };
}

const PID_PART = integerArg({ min: 1, max: 0x7fffffff, what: 'a pid' });

/** commander argument parser for pids (repeatable, comma lists allowed). */
export function collectPids(value: string, prev: number[] = []): number[] {
  for (const part of value.split(',')) prev.push(PID_PART(part));
  return prev;
}

export interface DurationArg {
  /** the unit of the parsed value (default ns) */
  unit?: 'ns' | 'ms' | 's';
  /** 0 is refused */
  positive?: boolean;
  /** the longest accepted, in ns */
  maxNs?: number;
}

const UNIT_NS = { ns: 1, ms: 1e6, s: 1e9 } as const;
const parseDurationArg = argFrom(parseDuration);

/** Durations ("100ms", "2s"; a bare number is seconds), returned in `unit`. */
export function durationArg({ unit = 'ns', positive = false, maxNs }: DurationArg = {}): (v: string) => number {
  return (v) => {
    const ns = parseDurationArg(v);
    if (positive && !(ns > 0)) throw new InvalidArgumentError('must be longer than 0');
    if (maxNs !== undefined && ns > maxNs) throw new InvalidArgumentError(`at most ${formatDuration(maxNs)}, got "${v}"`);
    return ns / UNIT_NS[unit];
  };
}

/** commander argument parser for durations ("100ms", "2s"; a bare number is seconds) -> ns. */
export const duration = durationArg();

/**
 * A duration option (the value is in ns) whose help shows its default as people write it
 * ("2s", not "2000000000"); the shown text is derived from the value, so they cannot drift apart.
 */
export function durationOption(flags: string, description: string, defaultNs?: number, maxNs?: number): Option {
  const o = new Option(flags, description).argParser(maxNs === undefined ? duration : durationArg({ maxNs }));
  return defaultNs === undefined ? o : o.default(defaultNs, formatDuration(defaultNs));
}

/** A comma-list option's default shown as it is typed ("a,b"), not as a JSON array. */
export function listDefault<T>(o: Option, values: T[]): Option {
  return o.default(values, values.join(','));
}

/** What is wrong with `dir` as a root to read, or null when it is a directory (or stat cannot tell). */
function rootProblem(dir: string): string | null {
  try {
    return fs.statSync(dir).isDirectory() ? null : 'not a directory';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'no such directory' : code === 'ENOTDIR' ? 'not a directory' : null;
  }
}

/**
 * A root the user named (--root, --sysfs-root, --debugfs-root, --proc-root) that does not exist
 * is a typo, not a host without the amdgpu driver: one usage error naming it (exit 2) instead of
 * "the amdgpu driver is not loaded" for every file under it. Defaults are not checked: a /sys
 * without KFD keeps the readers' own driver message.
 */
export function checkGivenRoots(cmd: Command): void {
  for (const opt of cmd.options) {
    if (!opt.long || !/^--([a-z]+-)?root$/.test(opt.long)) continue;
    const key = opt.attributeName();
    const value = cmd.getOptionValue(key) as unknown;
    const source = cmd.getOptionValueSource(key);
    if (typeof value !== 'string' || source === undefined || source === 'default') continue;
    const problem = rootProblem(value);
    if (problem) throw new CliError(`${opt.long} ${value}: ${problem}`, 2);
  }
}

/**
 * A seconds option (the value is in s; a bare number means seconds, as it always did) that also
 * takes units ("500ms", "2m") and shows its default as "10s", the way it is written.
 */
export function secondsOption(flags: string, description: string, defaultS?: number): Option {
  const o = new Option(flags, description).argParser(durationArg({ unit: 's' }));
  return defaultS === undefined ? o : o.default(defaultS, formatDuration(defaultS * 1e9));
}
