import { Command, Option } from 'commander';
import { formatDuration } from '../units.js';
import { runTrace, type TraceOptions, type TraceSource } from '../trace/index.js';
import { ListenError, httpUrl, parseListen } from '../trace/exporter.js';
import { argFrom, checkGivenRoots, collectPids, durationOption, listArg, listDefault, resolveRoots, type RootOptions } from './options.js';
import { errnoCode } from '../errors.js';
import { CliError } from './errors.js';

const sources = listArg<TraceSource>('source', ['sysfs', 'debugfs']);

/** --serve: an address the exporter can listen on */
const listenAddress = argFrom((v: string): string => {
  parseListen(v);
  return v;
});

/** trace-<date>-<time>.jsonl; the tracer takes trace-...-2.jsonl etc. when a run in the same second has it. */
export function defaultOut(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `trace-${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}.jsonl`;
}

export interface TraceCliOptions extends RootOptions {
  pid?: number[];
  interval: number;
  duration?: number;
  out?: string;
  sources: TraceSource[];
  debugfsInterval?: number;
  sysfsWalk: 'incremental' | 'full';
  countersInterval?: number;
  baseline: number;
  tail: number;
  stopAfter?: number;
  serve?: string;
  grace: number;
}

/** The sampling options trace and study share. */
export function addSamplingOptions(cmd: Command): Command {
  return cmd
    .addOption(durationOption('--interval <duration>', 'sampling interval, 10ms..60s (above 1s for long studies; the tail is then at least one interval)', 100e6))
    .addOption(listDefault(new Option('--sources <list>', 'sysfs,debugfs (debugfs needs root)').argParser(sources), ['sysfs', 'debugfs'] as TraceSource[]))
    .addOption(durationOption('--debugfs-interval <duration>', 'read debugfs at this interval (default: the interval, at least 100ms)'))
    .addOption(new Option('--sysfs-walk <walk>', 'incremental: read only new queues and, at --counters-interval, counters; full: every sysfs file every sample').choices(['incremental', 'full']).default('incremental'))
    .addOption(durationOption('--counters-interval <duration>', 'incremental walk: re-read process counters (vram, sdma, evicted, cu occupancy) at this interval (default: the interval, at least 1s)'))
    .addOption(durationOption('--baseline <duration>', 'with a command: sample this long before starting it', 2e9))
    .addOption(durationOption('--tail <duration>', 'keep sampling this long after the command (or every --pid) exited', 5e9))
    .addOption(durationOption('--stop-after <duration>', 'with a command: send its process group SIGTERM at this time after its start'))
    .addOption(durationOption('--grace <duration>', 'time between SIGTERM and SIGKILL when stopping the command', 5e9))
    .option('--root <dir>', 'a whole recorded host: <dir>/sys, <dir>/sys/kernel/debug, <dir>/proc')
    .option('--sysfs-root <dir>', 'sysfs root')
    .option('--debugfs-root <dir>', 'debugfs root')
    .option('--proc-root <dir>', 'procfs root')
    .addOption(new Option('--impl <impl>', 'parsers and sampler: native (C++ thread) or ts (timers)').choices(['native', 'ts']));
}

/** TraceOptions from parsed CLI options (everything but out/pids/command). */
export function samplingOptions(o: TraceCliOptions): Omit<TraceOptions, 'out'> {
  const roots = resolveRoots(o);
  const isTty = process.stderr.isTTY === true;
  return {
    intervalNs: o.interval,
    durationNs: o.duration ?? null,
    debugfsIntervalNs: o.debugfsInterval ?? null,
    sysfsWalk: o.sysfsWalk,
    countersIntervalNs: o.countersInterval ?? null,
    sources: o.sources,
    sysfsRoot: roots.sysfsRoot ?? '/sys',
    debugfsRoot: roots.debugfsRoot ?? '/sys/kernel/debug',
    procRoot: roots.procRoot ?? '/proc',
    impl: o.impl,
    baselineNs: o.baseline,
    tailNs: o.tail,
    stopAfterNs: o.stopAfter ?? null,
    graceMs: o.grace / 1e6,
    log: (line) => process.stderr.write(`${isTty ? '\r\x1b[K' : ''}${line}\n`),
    status: isTty ? (line) => process.stderr.write(`\r\x1b[K${line}`) : undefined,
  };
}

export function traceCommand(): Command {
  const cmd = new Command('trace')
    .description('record KFD queues of every process, given pids, or a command (after --) at 10 ms..60 s intervals, as JSON Lines')
    .argument('[command...]', 'command to start and trace with its descendants (put it after --)')
    .option('--pid <pid>', 'trace this process and its descendants (repeatable, or a comma list)', collectPids)
    .addOption(durationOption('--duration <duration>', 'stop after this long (default: until the command/pids end, or Ctrl-C)'))
    .option('--out <file>', 'trace file, "-" for stdout (default trace-<date>-<time>.jsonl)')
    .option('--serve <address>', 'expose current counts as Prometheus metrics, e.g. 127.0.0.1:9464', listenAddress);
  addSamplingOptions(cmd).passThroughOptions();

  return cmd.action(async (command: string[], o: TraceCliOptions) => {
    checkGivenRoots(cmd);
    const isTty = process.stderr.isTTY === true;
    // the file is opened by runTrace once every option is checked and --serve listens
    const opts: TraceOptions = {
      ...samplingOptions(o),
      out: o.out ?? defaultOut(),
      outUnique: o.out === undefined,
      pids: o.pid,
      command: command.length ? command : undefined,
      serve: o.serve,
      onOpen: (file) => {
        if (file !== '-') process.stderr.write(`gpucolo trace: recording to ${file} every ${formatDuration(opts.intervalNs)}${opts.durationNs ? ` for ${formatDuration(opts.durationNs)}` : ''} (Ctrl-C stops)\n`);
      },
    };
    if (opts.stopAfterNs !== null && !opts.command) throw new CliError('--stop-after needs a command (after --)', 2);
    let res;
    try {
      res = await runTrace(opts);
    } catch (err) {
      // a bad value, or --serve on a busy/privileged port or a foreign address: usage, exit 2
      if (err instanceof RangeError || err instanceof ListenError) throw new CliError(err.message, 2, false, errnoCode(err));
      throw err;
    }
    if (res.metrics) process.stderr.write(`gpucolo trace: metrics were served on ${httpUrl(res.metrics.host, res.metrics.port, '/metrics')}\n`);
    const cmdPart = res.command?.exit ? `; command ${res.command.exit.reason}${res.command.exit.code !== null ? ` (code ${res.command.exit.code})` : ''}${res.command.exit.signal ? ` (${res.command.exit.signal})` : ''}` : '';
    process.stderr.write(
      `${isTty ? '\r\x1b[K' : ''}gpucolo trace: ${res.samples} samples, ${res.events} events, ${res.missedIntervals} missed intervals, ended by ${res.endedBy}${cmdPart}${res.out !== '-' ? ` -> ${res.out}` : ''}\n`,
    );
    if (res.error) throw new CliError(res.error, 1);
  });
}
