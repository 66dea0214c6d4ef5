/**
 * `gpucolo top`: a full-screen view of the KFD queues, refreshed every interval, live (this host
 * or a recorded tree, --root) or from a trace (--replay). `--once` prints one frame as plain text
 * and exits. Without a terminal and without --once it refuses (exit 2) rather than print a frame
 * nobody asked for: a script says --once.
 */
import path from 'node:path';
import { Command, Option } from 'commander';
import { buildFrame, frameText } from '../top/frame.js';
import { initialView, MAX_SPEED, MIN_SPEED, type TopView } from '../top/keys.js';
import { LiveSource, NoKfdError } from '../top/live.js';
import { ReplaySource } from '../top/replay.js';
import type { TopSnapshot } from '../top/state.js';
import { formatDuration } from '../units.js';
import { loadTraceForCli } from './analyze.js';
import { errnoCode } from '../errors.js';
import { CliError } from './errors.js';
import { addRootOptions, checkGivenRoots, duration, durationOption, numberArg, resolveRoots, type RootOptions } from './options.js';

export const TOP_MIN_INTERVAL_NS = 100e6;
export const TOP_MAX_INTERVAL_NS = 60e9;
/** --once to a file or a pipe: wide enough for four XCC blocks side by side, lines never cut */
const ONCE_COLUMNS = 120;

interface TopCliOptions extends RootOptions {
  interval: number;
  replay?: string;
  speed: number;
  at?: number | 'end';
  once?: boolean;
}

const speedValue = numberArg({ min: MIN_SPEED, max: MAX_SPEED });

function atValue(v: string): number | 'end' {
  return v === 'end' ? 'end' : duration(v);
}

export function topCommand(): Command {
  const cmd = new Command('top')
    .description('full-screen view of the KFD queues: HQD slots per XCC, processes, lifecycle events, live or from a trace')
    .addOption(durationOption('--interval <duration>', 'refresh (and sampling) interval, 100ms..60s', 1e9))
    .option('--replay <trace>', 'play a trace recorded by gpucolo trace (or a dump directory) instead of sampling')
    .addOption(new Option('--speed <x>', 'replay speed, trace seconds per second (+/- change it)').argParser(speedValue).default(1))
    .addOption(new Option('--at <time>', 'replay: start at this trace time (or "end")').argParser(atValue))
    .option('--once', 'print one frame as plain text to stdout and exit');
  addRootOptions(cmd);
  return cmd.action(async (o: TopCliOptions) => {
    checkUsage(cmd, o);
    if (o.replay !== undefined) await replay(o);
    else await live(o);
  });
}

/** Option combinations and the terminal: every refusal is a usage error (exit 2). */
function checkUsage(cmd: Command, o: TopCliOptions): void {
  checkGivenRoots(cmd);
  if (o.interval < TOP_MIN_INTERVAL_NS || o.interval > TOP_MAX_INTERVAL_NS) {
    throw new CliError(`--interval must be between 100ms and 60s (got ${formatDuration(o.interval)})`, 2);
  }
  const roots = ['root', 'sysfsRoot', 'debugfsRoot', 'procRoot'].filter((k) => o[k as keyof RootOptions] !== undefined);
  if (o.replay !== undefined && roots.length) throw new CliError('--replay plays a recorded trace: --root, --sysfs-root, --debugfs-root and --proc-root do not apply', 2);
  if (o.replay === undefined && (cmd.getOptionValueSource('speed') === 'cli' || o.at !== undefined)) throw new CliError('--speed and --at need --replay', 2);
  if (o.once) return;
  const notTty = !process.stdout.isTTY ? 'stdout' : !process.stdin.isTTY ? 'stdin' : null;
  if (notTty) throw new CliError(`top draws a full-screen view and needs a terminal (${notTty} is not one): use --once for one plain-text frame`, 2);
  if (o.replay === '-') throw new CliError('--replay -: the keys need stdin; give the trace as a file, or use --once', 2);
}

function printOnce(snap: TopSnapshot, view: TopView): void {
  const columns = process.stdout.isTTY ? process.stdout.columns || ONCE_COLUMNS : null;
  process.stdout.write(frameText(buildFrame(snap, { ...view, columns: columns ?? ONCE_COLUMNS }, { interactive: false }), columns));
}

async function live(o: TopCliOptions): Promise<void> {
  const roots = resolveRoots(o);
  let source: LiveSource;
  try {
    source = new LiveSource({
      sysfsRoot: roots.sysfsRoot ?? '/sys',
      debugfsRoot: roots.debugfsRoot ?? '/sys/kernel/debug',
      procRoot: roots.procRoot ?? '/proc',
      intervalNs: o.interval,
      impl: o.impl,
      label: o.root ? `tree ${o.root}` : roots.sysfsRoot ? `sysfs ${roots.sysfsRoot}` : 'this host',
      recorded: roots.sysfsRoot !== undefined || roots.debugfsRoot !== undefined,
    });
  } catch (err) {
    if (err instanceof NoKfdError) throw new CliError(err.message, 1, false, err.code);
    throw err;
  }
  if (o.once) {
    printOnce(await source.once(), initialView({ columns: ONCE_COLUMNS, rows: 0 }));
    return;
  }
  const { runTopApp } = await import('../top/app.js');
  await runTopApp({ live: source, replay: null, tickMs: o.interval / 1e6, initial: (columns, rows) => initialView({ columns, rows }) });
}

async function replay(o: TopCliOptions): Promise<void> {
  const trace = await loadTraceForCli(o.replay!);
  let source: ReplaySource;
  try {
    source = new ReplaySource(trace, o.replay === '-' ? '<stdin>' : path.basename(o.replay!));
  } catch (err) {
    if (err instanceof RangeError) throw new CliError(err.message, 1, false, errnoCode(err));
    throw err;
  }
  const b = source.bounds();
  const start = o.at === undefined ? b.startNs : o.at === 'end' ? b.endNs : Math.max(b.startNs, Math.min(b.endNs, o.at));
  const view = (columns: number, rows: number): TopView => {
    const v = initialView({ columns, rows, replay: { ...b, speed: o.speed } });
    return { ...v, replay: { ...v.replay!, positionNs: start } };
  };
  if (o.once) {
    printOnce(source.snapshotAt(start), view(ONCE_COLUMNS, 0));
    return;
  }
  const { runTopApp } = await import('../top/app.js');
  await runTopApp({ live: null, replay: source, tickMs: o.interval / 1e6, initial: view });
}
