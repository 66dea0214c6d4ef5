import { Command, InvalidArgumentError, Option } from 'commander';
import { fillText, kfdPresent, probeLatency, probePriority, type ClockCheck, type ClockSummary, type FillReport, type PriorityProbeResult, type LatencyProbeResult } from '../dispatch/index.js';
import type { DispatchMechanism } from '../native.js';
import { ENGINE_MECHANISMS } from '../mechanisms.js';
import { formatDuration, formatPercent } from '../units.js';
import type { QuantileSummary, RoundSpread } from '../stats/index.js';
import { CliError } from './errors.js';
import { table } from './table.js';
import { duration, durationOption, integerArg, listArg, listDefault, numberArg, shareArg } from './options.js';
import { MAX_KERNEL_NS } from '../limits.js';

const MECHANISMS = ENGINE_MECHANISMS;

const percent = shareArg();
const positive = numberArg({ min: 0, exclusive: true, what: 'a positive number' });
const int = integerArg({ min: 1, max: 999_999, what: 'a positive integer' });
/** a device index: 0, 1, ... */
const deviceIndex = integerArg({ max: 9999, what: 'a device index (0, 1, ...)' });
const kfdPrio = integerArg({ max: 15, what: 'a KFD queue priority', hint: '0..15' });
const mechanisms = listArg<DispatchMechanism>('mechanism', MECHANISMS);

function blocksOrFill(v: string): number | 'fill' {
  if (v.trim() === 'fill') return 'fill';
  return int(v);
}

/** --sweep K=1,2,4 | lp-kernel=1ms,2ms | reserve=10%,20% */
function sweep(v: string): { param: 'K' | 'lp-kernel' | 'reserve'; values: number[] } {
  const m = /^(K|lp-kernel|reserve)=(.+)$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`bad --sweep "${v}" (K=1,2,4 | lp-kernel=1ms,2ms | reserve=10%,20%)`);
  const param = m[1] as 'K' | 'lp-kernel' | 'reserve';
  const parse = param === 'K' ? int : param === 'reserve' ? percent : duration;
  return { param, values: m[2].split(',').map((x) => parse(x.trim())) };
}

const t = (ns: number | null | undefined): string => (ns === null || ns === undefined ? '-' : formatDuration(Math.round(ns)));

function quantileCells(q: QuantileSummary): string[] {
  return [...q.quantiles.map((x) => (x.supported ? t(x.value) : `(${t(x.value)})`)), t(q.max)];
}

/** The pure-TS engine's timings are coarser: say so wherever its numbers are printed. */
const engineNote = (engine: string | undefined): string => (engine === 'ts' ? ' (pure-TS engine: coarser timings)' : '');

/** "device clock drift over the run: +1.2us (offset known to ±300ns)" */
function clockLine(c: ClockCheck | ClockSummary, over: string): string {
  const drift = 'driftNs' in c ? c.driftNs : c.maxDriftNs;
  if (drift === null) return `device clock: drift ${over} not measured (the offset after the run could not be read)`;
  const sign = drift > 0 ? '+' : drift < 0 ? '-' : '';
  return `device clock: drift ${over} ${sign}${t(Math.abs(drift))} against the host clock${c.uncertaintyNs !== null ? ` (each offset known to ±${t(c.uncertaintyNs)})` : ''}`;
}

function renderLatency(r: LatencyProbeResult): string {
  const out = [`${r.backend}${engineNote(r.engine)}: ${r.spinNs ? `${formatDuration(r.spinNs)} spin` : 'empty'} kernel, ${r.launches} launches, one in flight`, ''];
  out.push(
    ...table(
      ['', 'P50', 'P90', 'P99', 'P99.9', 'MAX', 'N'],
      [
        ['round trip', ...quantileCells(r.roundTrip), String(r.roundTrip.n)],
        ['on device', ...quantileCells(r.device), String(r.device.n)],
      ],
    ),
  );
  for (const c of new Set([...r.roundTrip.caveats, ...r.device.caveats])) out.push(`note: ${c} (shown in parentheses)`);
  out.push(clockLine(r.clock, 'over the run'));
  return `${out.join('\n')}\n`;
}

const pctCell = (x: number | null): string => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);
/** the share LP may keep, as made, with what was asked when the two differ */
const allowedCell = (made: number, asked: number): string => (Math.abs(made - asked) > 1e-9 ? `${pctCell(made)} (asked ${pctCell(asked)})` : pctCell(made));
const rate = (x: number | null): string => (x === null ? '-' : x.toFixed(1));

/** "min–max" of a per-round figure; "-" with fewer than two rounds that have it (no spread to show). */
function spreadCell(s: RoundSpread | null, f: (x: number) => string): string {
  return s && s.n > 1 ? `${f(s.min)}–${f(s.max)}` : '-';
}

/** "1056x256 100%": blocks x threads of the LP kernels and the occupancy they reach ("-" unknown). */
const fillCell = (f: FillReport | null): string => (f ? `${f.blocks}x${f.threadsPerBlock}${f.occupancy !== null ? ` ${Math.round(f.occupancy * 100)}%` : ''}` : '-');

/** A value a quality warning names gets a "!" (the warning is printed under the tables). */
const mark = (cell: string, on: boolean): string => (on ? `${cell}!` : cell);

/** The text report of a priority probe: header, standalone and co-run tables, partitions, notes, legend and quality. */
export function renderPriority(r: PriorityProbeResult): string {
  const out = [...priorityHeader(r), ...standaloneTable(r), ...corunTable(r), ...partitionLines(r), ...priorityNotes(r), ...legendAndQuality(r)];
  return `${out.join('\n')}\n`;
}

/** The spread of a per-round HP P99 (min–max). */
const hp99 = (s: RoundSpread | null): string => spreadCell(s, t);

/** Header of the report: options, rounds, backend and the LP kernels' fill. */
function priorityHeader(r: PriorityProbeResult): string[] {
  const o = r.options;
  const lpFill = r.standalone.find((s) => s.lpFill)?.lpFill ?? null;
  return [
    `HP: ${formatDuration(o.hpKernelNs)} kernels, Poisson ${o.hpRateHz}/s; LP: ${o.lpStreams} stream(s) of ${formatDuration(o.lpKernelNs)} kernels, closed loop; ${formatDuration(o.durationNs)} per run, ${r.rounds} round(s) in rotated order${r.interrupted ? ' (interrupted: rounds incomplete)' : ''}; backend ${r.backend}${engineNote(r.engine)} (${r.computeUnits} compute units)`,
    `LP kernels${o.lpBlocks === undefined || o.lpBlocks === 'fill' ? ' (fill)' : ''}: ${lpFill ? fillText(lpFill) : `${o.lpBlocks ?? 'fill'} blocks`}; co-runs with a reserve fill the LP side as made (LP BLOCKS), and LP SHARE compares blocks done`,
    '',
    'standalone (pooled over the rounds; ROUNDS = min–max of the per-round figure):',
  ];
}

/** The standalone table: LP kernel and its fill, HP latency quantiles, LP throughput, their spreads. */
function standaloneTable(r: PriorityProbeResult): string[] {
  return [
    ...table(
      ['LP KERNEL', 'LP BLOCKS', 'HP P50', 'P90', 'P99', 'P99.9', 'MAX', 'ROUNDS', 'HP START P99', 'LP KERNELS/S', 'ROUNDS'],
      r.standalone.map((s) => [
        t(s.lpKernelNs),
        fillCell(s.lpFill),
        ...quantileCells(s.hpLatency),
        hp99(r.standaloneHp.spread.hpP99Ns),
        t(s.hpTimeToStart.quantiles.find((x) => x.p === 99)?.value),
        rate(s.lpThroughput),
        spreadCell(s.spread.lpThroughput, (x) => x.toFixed(1)),
      ]),
      '  ',
    ),
  ];
}

/** The co-run table: one row per mechanism run (values a quality warning names marked "!"), one per skipped run. */
function corunTable(r: PriorityProbeResult): string[] {
  const q = r.quality;
  const warned = (phase: string, task: string, codes: string[]): boolean => q.warnings.some((w) => w.phase === phase && w.task === task && codes.includes(w.code));
  return [
    '',
    'co-run (HP latency from intended arrival):',
    ...table(
      ['MECHANISM', 'K', 'RESERVE', 'LP KERNEL', 'LP BLOCKS', 'HP P50', 'P90', 'P99', 'P99.9', 'MAX', 'ROUNDS', 'P99/ALONE', 'ADDED P99', 'IN LP KERNELS', 'BOUND', 'LP KERNELS/S', 'ROUNDS', 'LP SHARE', 'ROUNDS', 'ALLOWED'],
      [
        ...r.runs.map((x) => [
          x.mechanism,
          x.throttleK === null ? '-' : String(x.throttleK),
          x.reserve === null ? '-' : `${Math.round(x.reserve * 100)}%`,
          t(x.lpKernelNs),
          fillCell(x.lpFill),
          ...quantileCells(x.hpLatency),
          hp99(x.spread.hpP99Ns),
          mark(x.hpP99VsStandalone === null ? '-' : `${x.hpP99VsStandalone.toFixed(2)}x`, warned(x.label, 'hp', ['faster-than-standalone'])),
          t(x.addedHpP99Ns),
          x.addedP99InLpKernels === null ? '-' : x.addedP99InLpKernels.toFixed(2),
          x.bound ? (x.bound.verdict === 'met' ? `<= ${x.bound.limit} met` : x.bound.verdict === 'exceeded' ? `> ${x.bound.limit} exceeded` : 'inconclusive') : '-',
          rate(x.lpThroughput),
          spreadCell(x.spread.lpThroughput, (v) => v.toFixed(1)),
          mark(pctCell(x.lpShare), warned(x.label, 'lp', ['share-above-standalone', 'share-above-allowed'])),
          spreadCell(x.spread.lpShare, (v) => pctCell(v)),
          allowedCell(x.lpAllowedShare, x.lpAllowedShareRequested),
        ]),
        // what the backend cannot run: a row that says so (the reason is printed below)
        ...r.skipped.map((x) => [
          x.mechanism,
          x.throttleK === null ? '-' : String(x.throttleK),
          x.reserve === null ? '-' : `${Math.round(x.reserve * 100)}%`,
          t(x.lpKernelNs),
          'skipped',
          ...Array.from({ length: 15 }, () => '-'),
        ]),
      ],
      '  ',
    ),
  ];
}

/** Why each skipped run was skipped, and the compute-unit partition of each partitioned run. */
function partitionLines(r: PriorityProbeResult): string[] {
  const out: string[] = [];
  for (const x of r.skipped) out.push(`skipped: ${x.label.replace(/^corun:/, '')}: ${x.reason}`);
  for (const x of r.runs) {
    const p = x.partition;
    if (!p) continue;
    const side = (s: { requested: number; made: number }): string => `${s.made}${s.made !== s.requested ? ` (asked ${s.requested})` : ''}`;
    const unit = x.mechanism === 'sm-partition' ? 'SMs' : 'CUs';
    const rounded = p.hp.made !== p.hp.requested || p.lp.made !== p.lp.requested;
    out.push(
      `partition of ${x.label.replace(/^corun:/, '')}: HP ${side(p.hp)} ${unit}, LP ${side(p.lp)} ${unit} of ${r.computeUnits}${rounded ? (x.mechanism === 'sm-partition' ? ' (the driver rounds green-context partitions up: multiples of 8 SMs on sm_90)' : ' (as made)') : ''}; LP allowed ${pctCell(x.lpAllowedShare)}`,
    );
  }
  return out;
}

/** The clock line, the probe's notes, latency caveats and run errors (once each), and KFD queue dumps. */
function priorityNotes(r: PriorityProbeResult): string[] {
  const out: string[] = [];
  if (r.runs.length || r.standalone.length) out.push(clockLine(r.clock, 'over a run, at most'));
  for (const n of r.notes) out.push(`note: ${n}`);
  const notes = new Set<string>();
  for (const x of [r.standaloneHp, ...r.runs]) for (const c of x.hpLatency.caveats) notes.add(c);
  for (const x of r.runs) for (const e of x.errors) notes.add(`${x.mechanism}: ${e}`);
  if (notes.size) out.push('', ...[...notes].map((n) => `note: ${n}`));
  for (const x of r.runs) {
    if (!x.kfd) continue;
    out.push('', `KFD queues during ${x.mechanism}${x.throttleK !== null ? ` K=${x.throttleK}` : ''}${x.reserve !== null ? ` reserve=${Math.round(x.reserve * 100)}%` : ''}:`, ...x.kfd.lines.map((l) => `  ${l}`));
  }
  return out;
}

/** The legend of the columns and the quality verdict with its warnings. */
function legendAndQuality(r: PriorityProbeResult): string[] {
  const q = r.quality;
  const out: string[] = [];
  out.push(
    '',
    'LP BLOCKS = blocks x threads of each LP kernel and the share of the LP side\'s resident-block slots they keep occupied; P99/ALONE = co-run HP P99 / standalone HP P99; IN LP KERNELS = added HP P99 / one LP kernel (throttle BOUND: K, inconclusive when a value it rests on is flagged); LP SHARE = LP blocks done per second / LP alone\'s; ALLOWED = the compute units LP keeps as made (asked, when the driver rounded); ROUNDS = min–max over the rounds (shares and ratios against the same round\'s standalone runs); values in parentheses have too few samples for that percentile; ! = flagged below',
  );
  out.push('', `quality: ${q.verdict}${q.warnings.length ? ` (${q.warnings.length} warning${q.warnings.length > 1 ? 's' : ''})` : ''}`, ...q.warnings.map((w) => `  ${w.code}: ${w.message}`));
  return out;
}

export function probeCommand(): Command {
  const probe = new Command('probe').description('dispatch microbenchmarks on a backend (cpu, cuda, hip)');
  const backend = () => new Option('--backend <name>', 'cpu, cuda or hip').choices(['cpu', 'cuda', 'hip']).default('cpu');

  probe.addCommand(
    new Command('latency')
      .description('empty-kernel (or short-spin) launch round trips: the dispatch floor')
      .addOption(backend())
      .option('--device <n>', 'device index', deviceIndex, 0)
      .addOption(durationOption('--kernel <duration>', 'spin kernel length (default: empty kernel)', undefined, MAX_KERNEL_NS))
      .addOption(durationOption('--duration <duration>', 'measurement time', 2e9))
      .option('--json', 'print the result as JSON')
      .action(async (o: { backend: 'cpu' | 'cuda' | 'hip'; device: number; kernel?: number; duration: number; json?: boolean }) => {
        const r = await probeLatency({ backend: o.backend, device: o.device, spinNs: o.kernel ?? 0, durationNs: o.duration, warmupNs: Math.min(200e6, o.duration / 5) });
        process.stdout.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : renderLatency(r));
      }),
  );

  probe.addCommand(
    new Command('priority')
      .description('high-priority probes next to saturating low-priority streams, per mechanism, vs standalone')
      .addOption(backend())
      .option('--device <n>', 'device index', deviceIndex, 0)
      .addOption(durationOption('--lp-kernel <duration>', 'low-priority kernel length', 2e6, MAX_KERNEL_NS))
      .option('--lp-streams <n>', 'low-priority streams', int, 2)
      .addOption(
        new Option('--lp-blocks <n|fill>', "blocks per low-priority kernel; fill = enough resident blocks to occupy every compute unit LP may use (its CUs as made x the probe kernel's occupancy per CU at 256 threads)")
          .argParser(blocksOrFill)
          .default('fill'),
      )
      .addOption(durationOption('--hp-kernel <duration>', 'high-priority kernel length', 100e3, MAX_KERNEL_NS))
      .addOption(new Option('--hp-rate <per-second>', 'high-priority arrivals per second (Poisson)').argParser(positive).default(200, '200/s'))
      .addOption(listDefault(new Option('--mechanism <list>', `comma list of ${MECHANISMS.join(', ')}`).argParser(mechanisms), ['none', 'stream-priority', 'throttle'] as DispatchMechanism[]))
      .addOption(new Option('--reserve <share>', 'compute units kept for HP (cu-mask, sm-partition)').argParser(percent).default(0.1, formatPercent(0.1)))
      .option('--k <n>', 'throttle window: LP kernels in flight', int, 1)
      .option('--sweep <param=values>', 'K=1,2,4,8 | lp-kernel=1ms,2ms | reserve=10%,20%', sweep)
      .addOption(durationOption('--duration <duration>', 'time per run', 10e9))
      // 2: the fewest rounds with a spread, so the default run (5 runs a round) takes ~100 s on 2
      // cores; 10 s runs keep ~1900 HP probes a round, enough for each round's P99 to have a
      // confidence interval (>= 368 samples), which the standalone-drift check compares
      .option('--rounds <n>', 'rounds: every variant once per round, order rotated each round; samples pooled, spread shown (>= 2 for a spread)', int, 2)
      .option('--seed <n>', 'Poisson seed', int, 1)
      .option('--kfd-priority <n>', 'hip on a KFD host: set the HP stream\'s KFD queue priority (0..15) with AMDKFD_IOC_UPDATE_QUEUE (needs --mechanism stream-priority); ring parameters from sysfs + mqds', kfdPrio)
      .option(
        '--allow-debug-trap',
        'with --kfd-priority: also read the HP queues\' rings from the KFD debug queue snapshot (DBG_TRAP on this process). SIDE EFFECT: enabling it refreshes the runlist and preempts every queue of every process on the GPU (twice); without it a queue that sysfs + mqds cannot pair is left unset, with the reason',
      )
      .option('--no-kfd-check', 'hip: skip verifying the streams\' KFD queue priorities mid-run')
      .option('--json', 'print the result as JSON')
      .action(priorityAction),
  );
  return probe;
}

interface PriorityCli {
  backend: 'cpu' | 'cuda' | 'hip';
  device: number;
  lpKernel: number;
  lpStreams: number;
  lpBlocks: number | 'fill';
  hpKernel: number;
  hpRate: number;
  mechanism: DispatchMechanism[];
  reserve: number;
  k: number;
  sweep?: { param: 'K' | 'lp-kernel' | 'reserve'; values: number[] };
  duration: number;
  rounds: number;
  seed: number;
  kfdPriority?: number;
  allowDebugTrap?: boolean;
  kfdCheck: boolean;
  json?: boolean;
}

/** Checks --duration and the KFD options against each other and the host; the KFD settings of the probe (or undefined). */
function priorityKfdOptions(o: PriorityCli): { kfdPriority?: number; allowDebugTrap?: boolean } | undefined {
  if (o.duration < 100e6) throw new CliError('--duration must be at least 100ms per run', 2);
  const kfdHost = kfdPresent();
  if (o.allowDebugTrap && o.kfdPriority === undefined) throw new CliError('--allow-debug-trap only applies with --kfd-priority (it lets the priority change read rings from the debug queue snapshot)', 2);
  if (o.kfdPriority !== undefined) {
    if (o.backend !== 'hip') throw new CliError(`--kfd-priority acts on KFD queues, which only the hip backend creates (backend: ${o.backend})`, 2);
    if (!kfdHost) throw new CliError('--kfd-priority: no KFD on this host (/sys/class/kfd/kfd/topology/nodes is missing): needs the amdgpu driver', 2);
    if (!o.kfdCheck) throw new CliError('--kfd-priority and --no-kfd-check contradict each other', 2);
    if (!o.mechanism.includes('stream-priority')) {
      process.stderr.write('gpucolo probe: --kfd-priority only applies to stream-priority runs (other mechanisms give every stream the same level); add stream-priority to --mechanism\n');
    }
  }
  return o.backend === 'hip' && o.kfdCheck && kfdHost ? { kfdPriority: o.kfdPriority, ...(o.allowDebugTrap ? { allowDebugTrap: true } : {}) } : undefined;
}

/** `probe priority`: checks the options, runs the probe (SIGINT stops it), prints the tables or JSON. */
async function priorityAction(o: PriorityCli): Promise<void> {
  const kfd = priorityKfdOptions(o);
  const ctl = new AbortController();
  const onInt = (): void => ctl.abort();
  process.once('SIGINT', onInt);
  try {
    const r = await probePriority({
      backend: o.backend,
      device: o.device,
      lpKernelNs: o.lpKernel,
      lpStreams: o.lpStreams,
      lpBlocks: o.lpBlocks,
      hpKernelNs: o.hpKernel,
      hpRateHz: o.hpRate,
      mechanisms: o.mechanism,
      reserve: o.reserve,
      throttleK: o.k,
      sweep: o.sweep,
      durationNs: o.duration,
      rounds: o.rounds,
      seed: o.seed,
      kfd,
      signal: ctl.signal,
      onRun: (label, round, rounds) => process.stderr.write(`gpucolo probe: round ${round}/${rounds}: ${label} (${formatDuration(o.duration)})\n`),
    });
    process.stdout.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : renderPriority(r));
  } finally {
    process.off('SIGINT', onInt);
  }
}
