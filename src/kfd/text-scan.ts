/**
 * Line-scanning helpers shared by the TS parsers of the debugfs hex dumps. The C++ twins are in
 * native/kfd/text_scan.h; any change of rule here (what a dump line is, how an issue is worded)
 * must be made there too, or the parity tests fail.
 */
import { MAX_ISSUES, type ParseIssue, type Severity } from './raw.js';

/** Collects issues, keeping the first MAX_ISSUES. */
export class IssueSink {
  readonly issues: ParseIssue[] = [];
  suppressed = 0;
  add(line: number, severity: Severity, message: string): void {
    if (this.issues.length < MAX_ISSUES) this.issues.push({ line, severity, message });
    else this.suppressed++;
  }
}

/** The first 40 characters of a line, non-printable characters as '?', for messages. */
export function snippet(s: string, start: number, end: number): string {
  const stop = Math.min(end, start + 40);
  let out = '';
  for (let i = start; i < stop; i++) {
    const c = s.charCodeAt(i);
    out += c < 0x20 || c > 0x7e ? '?' : s[i];
  }
  return end - start > 40 ? `${out}...` : out;
}

export function hex8(v: number): string {
  return (v >>> 0).toString(16).padStart(8, '0');
}

/** Input as the parsers see it: one char per byte (latin1), so garbage bytes stay 1:1. */
export function asLatin1(input: string | Uint8Array): string {
  if (typeof input === 'string') {
    // A JS string may hold characters above 0xff; the native path reads UTF-8 bytes, so do we.
    // eslint-disable-next-line no-control-regex
    if (/^[\x00-\x7f]*$/.test(input)) return input;
    return Buffer.from(input, 'utf8').toString('latin1');
  }
  return Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('latin1');
}

/** Eight lowercase hex digits at s[pos..pos+8) as an unsigned 32-bit value, or -1. */
export function parseHex8(s: string, pos: number): number {
  // one small function, no helper per digit: with DumpLineScanner also inlined into each parser's
  // loop, V8's inlining budget then still covers both call sites in parseDumpLine (with a helper
  // per digit one site stayed a call and hqds took ~6% longer; issue #20)
  let v = 0;
  for (let i = 0; i < 8; i++) {
    const c = s.charCodeAt(pos + i);
    if (c >= 0x30 && c <= 0x39) v = v * 16 + (c - 0x30);
    else if (c >= 0x61 && c <= 0x66) v = v * 16 + (c - 0x57);
    else return -1;
  }
  return v;
}

/**
 * Parses one hex-dump line `<prefix spaces>XXXXXXXX: w1 w2 ... wk` (1 <= k <= 8, every field
 * eight lowercase hex digits, single spaces, nothing after the last word) between start and end.
 * Writes the words to out[at..] and returns k, or -1 if the line is malformed. The leading
 * field (offset or register address) goes to lead[0].
 */
export function parseDumpLine(
  s: string,
  start: number,
  end: number,
  prefix: number,
  out: Uint32Array,
  at: number,
  lead: number[],
): number {
  for (let i = 0; i < prefix; i++) if (s.charCodeAt(start + i) !== 0x20) return -1;
  const body = end - start - prefix;
  // "XXXXXXXX:" + k * " XXXXXXXX"
  if (body < 18 || (body - 9) % 9 !== 0) return -1;
  const k = (body - 9) / 9;
  if (k > 8) return -1;
  let p = start + prefix;
  const first = parseHex8(s, p);
  if (first < 0 || s.charCodeAt(p + 8) !== 0x3a) return -1;
  p += 9;
  for (let j = 0; j < k; j++, p += 9) {
    if (s.charCodeAt(p) !== 0x20) return -1;
    const w = parseHex8(s, p + 1);
    if (w < 0) return -1;
    out[at + j] = w;
  }
  lead[0] = first;
  return k;
}

/**
 * How a parser tells its hex-dump lines from its header lines by their first characters:
 * mqds and hqds indent dump lines by four spaces (headers by at most three), rls indents both
 * its IB dump and `  No active runlist` by two, so a dump line there is two spaces and a hex digit.
 */
export const DumpLines = { fourSpaces: 0, twoSpacesHex: 1 } as const;
export type DumpLines = (typeof DumpLines)[keyof typeof DumpLines];

function isDumpLine(s: string, start: number, kind: DumpLines): boolean {
  if (s.charCodeAt(start) !== 0x20 || s.charCodeAt(start + 1) !== 0x20) return false;
  const c2 = s.charCodeAt(start + 2);
  if (kind === DumpLines.twoSpacesHex) return (c2 >= 0x30 && c2 <= 0x39) || (c2 >= 0x61 && c2 <= 0x66);
  return c2 === 0x20 && s.charCodeAt(start + 3) === 0x20;
}

/**
 * The line loop the three dump parsers share: splits s at LF, reads a CR LF line end as LF, skips
 * blank lines, counts lines, and tells a hex-dump line (see DumpLines) from anything else. Each
 * parser then says only what it does with the two kinds of line:
 *
 *   while (sc.next()) { if (sc.dump) { ...dump line s[sc.start, sc.end)... } else { ...header... } }
 *
 * A cursor rather than a function taking two callbacks: with callbacks the parsers' state moves
 * into closure contexts and one shared loop calls three parsers' callbacks, which made them about
 * 10-14% slower (issue #20); with the cursor the loop body stays in each parser, as before.
 */
export class DumpLineScanner {
  /** the current line is s[start, end), without its line end */
  start = 0;
  end = 0;
  /** 1-based number of the current line (blank lines count); after the scan, the lines read */
  lineNo = 0;
  /** whether the current line is a hex-dump line */
  dump = false;
  private pos = 0;

  constructor(
    readonly s: string,
    private readonly dumpLines: DumpLines,
  ) {}

  /** Moves to the next line that is not blank; false at the end of the text. */
  next(): boolean {
    const s = this.s;
    const n = s.length;
    while (this.pos < n) {
      const start = this.pos;
      let end = s.indexOf('\n', start);
      if (end < 0) end = n;
      this.lineNo++;
      this.pos = end + 1;
      if (end > start && s.charCodeAt(end - 1) === 0x0d) end--; // CR LF
      if (end === start) continue; // blank line
      this.start = start;
      this.end = end;
      this.dump = isDumpLine(s, start, this.dumpLines);
      return true;
    }
    return false;
  }
}

/** A Uint32Array that grows; `bound` is an upper limit guess that avoids regrowth. */
export class WordBuffer {
  buf: Uint32Array;
  length = 0;
  constructor(bound: number) {
    this.buf = new Uint32Array(Math.max(64, bound));
  }
  /** Make room for n more words. */
  reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint32Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }
  finish(): Uint32Array {
    return this.buf.slice(0, this.length);
  }
}

/** Decimal fields captured by a \d{1,10} group: a u32 or null when out of range. */
export function decU32(text: string): number | null {
  const v = Number(text);
  return v <= 0xffffffff ? v : null;
}
