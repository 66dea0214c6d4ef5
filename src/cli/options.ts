/** Options shared by the commands that read KFD trees. */
import { Command, InvalidArgumentError, Option } from 'commander';
import path from 'node:path';
import type { Impl } from '../native.js';

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
