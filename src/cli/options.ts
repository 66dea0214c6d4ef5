/** Options shared by the commands: KFD tree roots, pids, durations (shown as typed), lists. */
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

/** commander argument parser for pids (repeatable, comma lists allowed). */
export function collectPids(value: string, prev: number[] = []): number[] {
  for (const part of value.split(',')) {
    if (!/^\d{1,10}$/.test(part.trim()) || Number(part) <= 0 || Number(part) > 0x7fffffff) {
      throw new InvalidArgumentError(`not a pid: "${part}"`);
    }
    prev.push(Number(part));
  }
  return prev;
}

/** commander argument parser for durations ("100ms", "2s"; a bare number is seconds) -> ns. */
export function duration(v: string): number {
  try {
    return parseDuration(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/**
 * A duration option (the value is in ns) whose help shows its default as people write it
 * ("2s", not "2000000000"); the shown text is derived from the value, so they cannot drift apart.
 */
export function durationOption(flags: string, description: string, defaultNs?: number, maxNs?: number): Option {
  const parse = maxNs === undefined
    ? duration
    : (v: string): number => {
        const ns = duration(v);
        if (ns > maxNs) throw new InvalidArgumentError(`at most ${formatDuration(maxNs)}, got "${v}"`);
        return ns;
      };
  const o = new Option(flags, description).argParser(parse);
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
  const o = new Option(flags, description).argParser((v: string) => duration(v) / 1e9);
  return defaultS === undefined ? o : o.default(defaultS, formatDuration(defaultS * 1e9));
}
