/**
 * The frame model of `gpucolo top`: a pure function from the assembled state (TopSnapshot) and
 * the view (TopView) to lines of text with tones. The terminal renderer (src/top/app.ts) draws
 * these lines; `--once` prints their text; tests read them. Nothing here touches a terminal.
 */
import type { TraceGpu, TraceSample } from '../trace/schema.js';
import { formatDuration } from '../units.js';
import { activePerXcc, gridLines } from './grid.js';
import type { TopView } from './keys.js';
import { eventLines, processLines, processTags, sortProcesses, tickerEvents } from './rows.js';
import type { TopSnapshot } from './state.js';
import { clip, fmtMs, fmtShare, fmtT, lineText, plain, type FrameLine, type Segment } from './text.js';

/** A part of the frame; a flexible one gives up lines (from its end) when the terminal is short. */
export interface FrameSection {
  name: 'header' | 'gpu' | 'processes' | 'events' | 'cost' | 'missing' | 'help';
  lines: FrameLine[];
  flexible?: boolean;
}

export interface Frame {
  sections: FrameSection[];
}

export interface FrameOptions {
  /** a live terminal: adds the key help line (not in --once output) */
  interactive: boolean;
  /** how long the last frame took to build and draw; null when not measured */
  frameNs?: number | null;
}

export function buildFrame(s: TopSnapshot, v: TopView, o: FrameOptions): Frame {
  const tags = processTags(s.sample);
  const sections: FrameSection[] = [
    { name: 'header', lines: headerLines(s, v) },
    { name: 'gpu', lines: gpuLines(s, v, tags) },
    processSection(s, v, tags),
    eventSection(s, v),
    { name: 'cost', lines: [costLine(s, o.frameNs ?? null)] },
  ];
  if (s.missing.length) sections.push({ name: 'missing', lines: s.missing.map((m) => plain(`missing: ${m}`, 'warn')) });
  if (o.interactive) sections.push({ name: 'help', lines: [helpLine(v)] });
  return { sections };
}

function headerLines(s: TopSnapshot, v: TopView): FrameLine[] {
  const procs = s.sample?.processes ?? [];
  const nq = procs.reduce((a, p) => a + p.queues.length, 0);
  const when = s.sample ? `sample ${s.sample.seq} at ${fmtT(s.sample.t_ns)}${s.sample.debugfs ? '' : ' (sysfs only)'}` : 'waiting for the first sample';
  const first: FrameLine = [
    { text: 'gpucolo top', tone: 'title' },
    { text: ` - ${s.label} - ${procs.length} process(es), ${nq} queue(s) - ${when}` },
  ];
  if (v.paused) first.push({ text: '  PAUSED', tone: 'warn' });
  const lines = [first];
  if (v.replay && s.replay) {
    const r = v.replay;
    const atEnd = r.positionNs >= r.endNs ? ', end of trace' : '';
    lines.push(plain(`replay ${s.replay.file}: ${fmtT(r.positionNs)} of ${fmtT(r.endNs)} (sample ${s.replay.index + 1}/${s.replay.count}), speed x${+r.speed.toPrecision(3)}${atEnd}`));
  }
  return lines;
}

function gpuSummary(g: TraceGpu, sample: TraceSample, tags: Map<number, string>, selected: boolean, i: number, n: number): FrameLine {
  const per = activePerXcc(g, sample, tags);
  const slots = per === null ? 'active CP slots ? (hqds not read)' : `active CP slots ${per.reduce((a, x) => a + x, 0)} (${per.join('+')} per XCC)`;
  const unmatched = sample.debugfs ? `, ${sample.unmatchedHqds.filter((h) => h[0] === g.node).length} unmatched` : '';
  const text = `GPU ${i + 1}/${n}: node ${g.node ?? '?'}, gpu_id ${g.gpuId}, ${g.gfxTarget ?? '?'} ${g.name}, ${g.numXcc} XCC: ${slots}${unmatched}`;
  return [{ text: selected ? '> ' : '  ', tone: 'key' }, { text, tone: selected ? 'title' : undefined }];
}

function gpuLines(s: TopSnapshot, v: TopView, tags: Map<number, string>): FrameLine[] {
  if (s.gpus.length === 0) return [plain('GPUs: none known (no KFD topology)', 'warn')];
  if (!s.sample) return s.gpus.map((g, i) => plain(`GPU ${i + 1}/${s.gpus.length}: node ${g.node ?? '?'}, gpu_id ${g.gpuId}`));
  const sel = Math.min(v.gpuIndex, s.gpus.length - 1);
  const lines = s.gpus.map((g, i) => gpuSummary(g, s.sample!, tags, i === sel, i, s.gpus.length));
  const gpu = s.gpus[sel];
  if (!s.sample.debugfs) {
    lines.push(plain('HQD slots: not known (debugfs hqds not read: it needs root)', 'warn'));
    return lines;
  }
  lines.push(...gridLines(gpu, s.sample, s.slots?.get(gpu.gpuId) ?? null, tags, v.columns));
  lines.push(...legendLines(s, gpu, tags));
  return lines;
}

function legendLines(s: TopSnapshot, gpu: TraceGpu, tags: Map<number, string>): FrameLine[] {
  const holders = (s.sample?.processes ?? []).filter((p) => p.queues.some((q) => q.gpuId === gpu.gpuId && q.hqds?.length));
  const who = holders.map((p) => `${tags.get(p.pid)} pid ${p.pid}${s.procs?.get(p.pid)?.name ? ` ${s.procs.get(p.pid)!.name}` : ''}`).join(', ');
  const layout = s.slots?.get(gpu.gpuId) ? '.. free  -- not a KFD slot' : '.. no queue seen (slot layout not known here)';
  return [plain(`${who || 'no process holds a slot'}; H/N/L high/normal/low priority, ? unknown; ${layout}; !! active, no known queue; A~ active unknown; A- inactive`, 'dim')];
}

function processSection(s: TopSnapshot, v: TopView, tags: Map<number, string>): FrameSection {
  const all = s.sample?.processes ?? [];
  const shown = sortProcesses(v.filterPid === null ? all : all.filter((p) => p.pid === v.filterPid), v.sort, s.procs);
  const filter = v.filterInput !== null ? `, filter pid: ${v.filterInput}_` : v.filterPid !== null ? `, filter pid ${v.filterPid}${shown.length ? '' : ' (no such KFD process)'}` : '';
  const title = plain(`Processes (${shown.length} of ${all.length}; sort: ${v.sort}${filter})`, 'title');
  if (shown.length === 0) return { name: 'processes', lines: [title], flexible: true };
  return { name: 'processes', lines: [title, ...processLines(shown, tags, s.procs)], flexible: true };
}

function eventSection(s: TopSnapshot, v: TopView): FrameSection {
  const events = tickerEvents(s.events, v.filterPid);
  const title = plain(`Lifecycle events (${events.length})`, 'title');
  if (events.length === 0) {
    const why = s.sample && s.sample.seq === 0 && !s.replay ? ' (the first sample is the baseline: changes show from the next one)' : '';
    return { name: 'events', lines: [title, plain(`  none yet${why}`, 'dim')], flexible: true };
  }
  // newest first: a short terminal cuts flexible sections from their end, so the oldest go
  return { name: 'events', lines: [title, ...eventLines(events, events.length).reverse()], flexible: true };
}

function costLine(s: TopSnapshot, frameNs: number | null): FrameLine {
  const c = s.cost;
  const every = `every ${formatDuration(c.intervalNs)}`;
  const cpu = c.sampler === 'recorded' ? '' : `; CPU: ${cpuText(c)}`;
  const frame = frameNs === null ? '' : `; frame ${fmtMs(frameNs)}`;
  return plain(`sampler ${c.sampler} ${every}: read ${fmtMs(c.readNs)}, parse ${fmtMs(c.parseNs)}, join ${fmtMs(c.joinNs)}${cpu}; missed ${c.missed}${frame}`, 'dim');
}

/** The sampler's CPU time as a share of one core; a difference, so known from the second sample on. */
function cpuText(c: TopSnapshot['cost']): string {
  if (c.samplerCpuShare === null && c.jsCpuShare === null) return 'known from the second sample';
  return `sampler thread ${fmtShare(c.samplerCpuShare)} of a core${c.sampler === 'native-thread' ? `, JS thread ${fmtShare(c.jsCpuShare)}` : ''}`;
}

function helpLine(v: TopView): FrameLine {
  const k = (key: string, what: string): Segment[] => [{ text: key, tone: 'key' }, { text: ` ${what}  ` }];
  const keys = [...k('q', 'quit'), ...k('p', v.paused ? 'resume' : 'pause'), ...k('s', `sort (${v.sort})`), ...k('/', 'filter pid'), ...k('g', 'GPU')];
  if (v.replay) keys.push(...k('<-/->', 'seek'), ...k('+/-', 'speed'));
  return keys;
}

/**
 * The frame cut to the terminal: every line at most `columns` wide and, with `rows`, at most
 * that many lines: the flexible sections (processes, events) share the rows the others leave,
 * each cut from its end with a "... N more" line, and what still does not fit is cut from the end.
 */
export function layoutFrame(f: Frame, columns: number | null, rows: number | null): FrameLine[] {
  const lines = rows === null ? f.sections.flatMap((s) => s.lines) : fitSections(f.sections, rows);
  return columns === null ? lines : lines.map((l) => clip(l, columns));
}

function fitSections(sections: FrameSection[], rows: number): FrameLine[] {
  const flex = sections.filter((s) => s.flexible);
  const fixed = sections.reduce((a, s) => a + (s.flexible ? 0 : s.lines.length), 0);
  const budget = shareRows(flex, Math.max(0, rows - fixed));
  const out: FrameLine[] = [];
  for (const s of sections) {
    const b = budget.get(s);
    if (b === undefined || b >= s.lines.length) out.push(...s.lines);
    else if (b > 0) {
      // a cut section shows a "more" line in place of what it lost
      const shown = Math.max(0, b - 1);
      out.push(...s.lines.slice(0, shown), plain(`  ... ${s.lines.length - shown} more`, 'dim'));
    }
  }
  return out.slice(0, rows);
}

/** Rows for each flexible section: an equal share each, and what one does not need goes to the others. */
function shareRows(flex: FrameSection[], avail: number): Map<FrameSection, number> {
  const out = new Map<FrameSection, number>();
  let left = avail;
  let open = [...flex];
  while (open.length > 0) {
    const share = Math.floor(left / open.length);
    const small = open.filter((s) => s.lines.length <= share);
    if (small.length === 0) {
      open.forEach((s, i) => out.set(s, share + (i < left - share * open.length ? 1 : 0)));
      break;
    }
    for (const s of small) {
      out.set(s, s.lines.length);
      left -= s.lines.length;
    }
    open = open.filter((s) => !small.includes(s));
  }
  return out;
}

/** The frame as plain text, one line each, no escape codes (--once, tests); lines cut at `columns` unless null. */
export function frameText(f: Frame, columns: number | null): string {
  return `${layoutFrame(f, columns, null).map(lineText).join('\n')}\n`;
}
