/**
 * The CPU frequency governor for the time of a run: set on every CPU through
 * <sysfs>/devices/system/cpu/cpu<N>/cpufreq/scaling_governor and put back afterwards.
 *
 * Never a failure: no cpufreq (VMs, containers), no permission (needs root) or an unknown
 * governor give one warning line and the run goes on with whatever governor there is. Restoring
 * is synchronous so that it also works from process 'exit' handlers and signal paths.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readInputText } from '../../input-file.js';

export interface GovernorOptions {
  /** default /sys */
  sysfsRoot?: string;
}

export interface GovernorSetting {
  /** the governor asked for */
  requested: string;
  /** true when every CPU now runs it (or already did) */
  applied: boolean;
  /** one line when it could not be set everywhere */
  warning?: string;
  /** cpu name -> governor before (only CPUs that were changed) */
  previous: Record<string, string>;
  /** puts every changed CPU back; idempotent; returns a warning line when some could not be */
  restore(): string | undefined;
}

const CPU_DIR = 'devices/system/cpu';
const errCode = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;

function why(err: unknown): string {
  const code = errCode(err);
  if (code === 'EACCES' || code === 'EPERM') return `${code}: permission denied (needs root)`;
  if (code === 'EROFS') return 'EROFS: sysfs is read-only here (container)';
  if (code === 'EINVAL') return 'EINVAL: the kernel refused this governor';
  return code ?? (err as Error).message;
}

/** CPUs that have a scaling_governor file: [cpu name, file path]. */
export function governorFiles(sysfsRoot = '/sys'): [string, string][] {
  const dir = path.join(sysfsRoot, CPU_DIR);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out: [string, string][] = [];
  for (const n of names.filter((x) => /^cpu\d+$/.test(x)).sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)))) {
    const f = path.join(dir, n, 'cpufreq', 'scaling_governor');
    if (fs.existsSync(f)) out.push([n, f]);
  }
  return out;
}

/** The governor of every CPU that has cpufreq ({} when none has). */
export function readGovernors(sysfsRoot = '/sys'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [cpu, f] of governorFiles(sysfsRoot)) {
    try {
      out[cpu] = readInputText(f, { kind: 'sysfs' }).trim();
    } catch {
      // unreadable: left out
    }
  }
  return out;
}

/**
 * Sets `governor` on every CPU. Never throws for system reasons: the result says what happened,
 * and `restore()` undoes exactly what was changed.
 */
export function setGovernor(governor: string, opts: GovernorOptions = {}): GovernorSetting {
  const root = opts.sysfsRoot ?? '/sys';
  const previous: Record<string, string> = {};
  const files = new Map<string, string>();
  let restored = false;
  const restore = (): string | undefined => {
    if (restored) return undefined;
    restored = true;
    const failed: string[] = [];
    for (const [cpu, gov] of Object.entries(previous)) {
      try {
        fs.writeFileSync(files.get(cpu)!, gov);
      } catch (err) {
        failed.push(`${cpu} (${why(err)})`);
      }
    }
    return failed.length ? `cpu governor not restored on ${failed.join(', ')}` : undefined;
  };
  const result = (applied: boolean, warning?: string): GovernorSetting => ({ requested: governor, applied, previous, restore, ...(warning ? { warning } : {}) });

  const cpus = governorFiles(root);
  if (cpus.length === 0) {
    return result(false, `cpu governor "${governor}" not set: no cpufreq in ${path.join(root, CPU_DIR)}/cpu*/cpufreq (VM or container without frequency scaling)`);
  }
  // the first CPU's list is the driver's list (all CPUs share one driver)
  const availFile = path.join(path.dirname(cpus[0][1]), 'scaling_available_governors');
  try {
    const avail = readInputText(availFile, { kind: 'sysfs' }).trim().split(/\s+/).filter(Boolean);
    if (avail.length && !avail.includes(governor)) {
      return result(false, `cpu governor "${governor}" not set: not offered by this cpufreq driver (available: ${avail.join(', ')})`);
    }
  } catch {
    // no list: try the write, the kernel says EINVAL for an unknown governor
  }
  let failure: string | undefined;
  for (const [cpu, f] of cpus) {
    let before: string;
    try {
      before = readInputText(f, { kind: 'sysfs' }).trim();
    } catch (err) {
      failure = `cannot read ${f}: ${why(err)}`;
      break;
    }
    if (before === governor) continue;
    try {
      fs.writeFileSync(f, governor);
    } catch (err) {
      failure = `cannot write ${f}: ${why(err)}`;
      break;
    }
    files.set(cpu, f);
    previous[cpu] = before;
  }
  if (failure) {
    // all or nothing: a half-set machine would be the worst of both
    const restoreWarning = restore();
    for (const k of Object.keys(previous)) delete previous[k];
    return result(false, `cpu governor "${governor}" not set: ${failure}${restoreWarning ? `; ${restoreWarning}` : ''}`);
  }
  return result(true);
}
