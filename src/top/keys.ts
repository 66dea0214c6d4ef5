/**
 * The view state of `gpucolo top` and the pure reducer that the keys, the clock and terminal
 * resizes drive. No terminal here: the ink app (src/top/app.ts) turns key presses into
 * `TopKey`s and dispatches; tests call reduceTop directly.
 */

export const SORTS = ['pid', 'queues', 'vram', 'priority'] as const;
export type TopSort = (typeof SORTS)[number];

/** Replay speed bounds: +/- double and halve within them. */
export const MIN_SPEED = 1 / 64;
export const MAX_SPEED = 1024;

export interface TopReplayView {
  /** trace time shown (t_ns of the trace) */
  positionNs: number;
  startNs: number;
  endNs: number;
  /** trace seconds per real second */
  speed: number;
  /** left/right move this far */
  seekNs: number;
}

export interface TopView {
  paused: boolean;
  sort: TopSort;
  /** only this pid; null = every process */
  filterPid: number | null;
  /** the pid being typed after / or f; null when not editing */
  filterInput: string | null;
  /** index into the snapshot's GPUs */
  gpuIndex: number;
  columns: number;
  rows: number;
  quit: boolean;
  /** null when watching live */
  replay: TopReplayView | null;
}

/** A key press, terminal-independent: a printable character or a named key. */
export interface TopKey {
  input: string;
  name?: 'left' | 'right' | 'return' | 'escape' | 'backspace' | 'up' | 'down';
}

export type TopAction =
  | { type: 'key'; key: TopKey; gpuCount: number }
  | { type: 'resize'; columns: number; rows: number }
  /** real time passed (replay playback) */
  | { type: 'tick'; elapsedNs: number };

export function initialView(o: { columns: number; rows: number; replay?: Omit<TopReplayView, 'positionNs'> | null }): TopView {
  return {
    paused: false,
    sort: 'pid',
    filterPid: null,
    filterInput: null,
    gpuIndex: 0,
    columns: o.columns,
    rows: o.rows,
    quit: false,
    replay: o.replay ? { ...o.replay, positionNs: o.replay.startNs } : null,
  };
}

export function reduceTop(v: TopView, a: TopAction): TopView {
  switch (a.type) {
    case 'resize':
      return a.columns === v.columns && a.rows === v.rows ? v : { ...v, columns: a.columns, rows: a.rows };
    case 'tick':
      return tick(v, a.elapsedNs);
    case 'key':
      return v.filterInput !== null ? editFilter(v, a.key) : command(v, a.key, a.gpuCount);
  }
}

/** Replay playback: the position moves with real time x speed, and stops at the end. */
function tick(v: TopView, elapsedNs: number): TopView {
  const r = v.replay;
  if (!r || v.paused || r.positionNs >= r.endNs || elapsedNs <= 0) return v;
  return { ...v, replay: { ...r, positionNs: Math.min(r.endNs, r.positionNs + elapsedNs * r.speed) } };
}

function command(v: TopView, k: TopKey, gpuCount: number): TopView {
  if (k.name === 'left' || k.name === 'right') return seek(v, k.name === 'left' ? -1 : 1);
  if (k.name !== undefined) return v;
  switch (k.input) {
    case 'q':
      return { ...v, quit: true };
    case 'p':
    case ' ':
      return { ...v, paused: !v.paused };
    case 's':
      return { ...v, sort: SORTS[(SORTS.indexOf(v.sort) + 1) % SORTS.length] };
    case '/':
    case 'f':
      return { ...v, filterInput: '' };
    case 'g':
      return gpuCount > 0 ? { ...v, gpuIndex: (v.gpuIndex + 1) % gpuCount } : v;
    case '+':
    case '=':
      return speed(v, 2);
    case '-':
    case '_':
      return speed(v, 0.5);
    default:
      return v;
  }
}

/** While typing a pid: digits, backspace, return (empty clears the filter), escape (keeps the old one). */
function editFilter(v: TopView, k: TopKey): TopView {
  const text = v.filterInput ?? '';
  if (k.name === 'escape') return { ...v, filterInput: null };
  if (k.name === 'return') return { ...v, filterInput: null, filterPid: text === '' ? null : Number(text) };
  if (k.name === 'backspace') return { ...v, filterInput: text.slice(0, -1) };
  if (k.name === undefined && /^\d+$/.test(k.input) && text.length + k.input.length <= 10) {
    return { ...v, filterInput: text + k.input };
  }
  return v;
}

function seek(v: TopView, dir: -1 | 1): TopView {
  const r = v.replay;
  if (!r) return v;
  const positionNs = Math.max(r.startNs, Math.min(r.endNs, r.positionNs + dir * r.seekNs));
  return positionNs === r.positionNs ? v : { ...v, replay: { ...r, positionNs } };
}

function speed(v: TopView, factor: number): TopView {
  const r = v.replay;
  if (!r) return v;
  const s = Math.max(MIN_SPEED, Math.min(MAX_SPEED, r.speed * factor));
  return s === r.speed ? v : { ...v, replay: { ...r, speed: s } };
}
