/**
 * The frame's building blocks: lines of segments, each with an optional tone that the terminal
 * renderer (src/top/app.ts) turns into a colour and the plain-text form (--once) drops. Plus the
 * number formats of the frame: unknown is '-', never 0.
 */

/** What a segment means, not how it looks: the renderer picks the colour. */
export type Tone = 'title' | 'dim' | 'high' | 'normal' | 'low' | 'unknown' | 'warn' | 'key';

export interface Segment {
  text: string;
  tone?: Tone;
}

export type FrameLine = Segment[];

export const plain = (text: string, tone?: Tone): FrameLine => [tone ? { text, tone } : { text }];

/** The text of a line without its tones (trailing blanks trimmed). */
export const lineText = (l: FrameLine): string => l.map((s) => s.text).join('').trimEnd();

/** Left-aligned columns, two spaces apart (like src/cli/table.ts), as frame lines. */
export function tableLines(header: string[], rows: string[][], indent = ''): FrameLine[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]): string => (indent + r.map((c, i) => (i === r.length - 1 ? c : (c ?? '').padEnd(widths[i]))).join('  ')).trimEnd();
  return [plain(fmt(header), 'title'), ...rows.map((r) => plain(fmt(r)))];
}

/** 1500000 -> "1.5ms"; null -> "-". */
export function fmtMs(ns: number | null | undefined): string {
  if (ns === null || ns === undefined) return '-';
  if (ns === 0) return '0';
  if (ns >= 1e9) return `${+(ns / 1e9).toPrecision(3)}s`;
  if (ns >= 1e5) return `${+(ns / 1e6).toPrecision(3)}ms`;
  return `${+(ns / 1e3).toPrecision(3)}us`;
}

/** Trace time: "t=12.345s". */
export const fmtT = (ns: number): string => `t=${(ns / 1e9).toFixed(3)}s`;

export function fmtBytes(b: number | null | undefined): string {
  if (b === null || b === undefined) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = b;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${b} B` : `${v.toFixed(1)} ${units[i]}`;
}

export const fmtNum = (v: number | null | undefined): string => (v === null || v === undefined ? '-' : String(v));

/** A share of one core: 0.0123 -> "1.2%"; null -> "-". */
export const fmtShare = (s: number | null): string => (s === null ? '-' : `${(s * 100).toFixed(s < 0.1 ? 2 : 1)}%`);

/** Cut to `width` characters (the terminal would wrap otherwise). */
export function clip(l: FrameLine, width: number): FrameLine {
  let left = width;
  const out: FrameLine = [];
  for (const s of l) {
    if (left <= 0) break;
    out.push(s.text.length <= left ? s : { ...s, text: s.text.slice(0, left) });
    left -= s.text.length;
  }
  return out;
}
