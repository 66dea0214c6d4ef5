/**
 * Randomized corruptions of real-format dumps (fast-check): neither parser throws, issues are
 * well-formed, and the native and TS parsers give byte-identical raw results.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseHqds, parseMqds, parseRls } from '../src/index.js';
import { parseHqdsRaw, parseMqdsRaw, parseRlsRaw } from '../src/kfd/parse.js';
import { MAX_ISSUES } from '../src/kfd/raw.js';
import { DEBUGFS, IMPLS, nativeLoaded } from './helpers/impls.js';
import { randomScenario, synthHqds, synthMqds, synthRls } from './helpers/kfd-synth.js';

const RUNS = Number(process.env.GPUCOLO_FUZZ_RUNS ?? 150);
const fixture = (f: string): Buffer => fs.readFileSync(path.join(DEBUGFS, 'kfd', f));
const old = randomScenario(5, { instPrinted: false, header: 'hex', mapProcessDwords: 16 });
const SOURCES = {
  mqds: [fixture('mqds'), Buffer.from(synthMqds(old))],
  hqds: [fixture('hqds'), Buffer.from(synthHqds(old))],
  rls: [fixture('rls'), Buffer.from(synthRls(old)), Buffer.from('Node 1, gpu_id 1:\n  No active runlist\n')],
};
const PARSE = { mqds: parseMqds, hqds: parseHqds, rls: parseRls };
const RAW = { mqds: parseMqdsRaw, hqds: parseHqdsRaw, rls: parseRlsRaw };

/**
 * One corruption of a dump: a byte change, a lost/duplicated/swapped line, a cut (anywhere, at a
 * line boundary, or after any dword of a dump line), garbage, CR LF, two dumps appended, a node or
 * process section printed twice.
 */
type Mutation =
  | { op: 'flip'; at: number; byte: number }
  | { op: 'dropLine'; at: number }
  | { op: 'dupLine'; at: number }
  | { op: 'swapLines'; at: number; with: number }
  | { op: 'truncate'; at: number }
  | { op: 'cutLine'; at: number }
  | { op: 'cutDword'; at: number; words: number }
  | { op: 'insert'; at: number; bytes: number[] }
  | { op: 'crlf' }
  | { op: 'appendSelf' }
  | { op: 'dupSection'; at: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), byte: fc.nat(255) }),
  fc.record({ op: fc.constant('dropLine' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('dupLine' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('swapLines' as const), at: fc.nat(), with: fc.nat() }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('cutLine' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('cutDword' as const), at: fc.nat(), words: fc.nat(8) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.array(fc.nat(255), { maxLength: 40 }) }),
  fc.constant({ op: 'crlf' as const }),
  fc.constant({ op: 'appendSelf' as const }),
  fc.record({ op: fc.constant('dupSection' as const), at: fc.nat() }),
);

/** A section header: where a node (hqds, rls) or a process (mqds) starts. */
const SECTION = /^(?:Node |Process )/;

function apply(src: Buffer, muts: Mutation[]): Buffer {
  let b = Buffer.from(src);
  for (const m of muts) {
    if (b.length === 0) break;
    const lines = () => b.toString('latin1').split('\n');
    const join = (l: string[]) => Buffer.from(l.join('\n'), 'latin1');
    switch (m.op) {
      case 'flip':
        b[m.at % b.length] = m.byte;
        break;
      case 'dropLine': {
        const l = lines();
        l.splice(m.at % l.length, 1);
        b = join(l);
        break;
      }
      case 'dupLine': {
        const l = lines();
        const i = m.at % l.length;
        l.splice(i, 0, l[i]);
        b = join(l);
        break;
      }
      case 'swapLines': {
        const l = lines();
        const i = m.at % l.length;
        const j = m.with % l.length;
        [l[i], l[j]] = [l[j], l[i]];
        b = join(l);
        break;
      }
      case 'truncate':
        b = b.subarray(0, m.at % b.length);
        break;
      case 'insert': {
        const i = m.at % b.length;
        b = Buffer.concat([b.subarray(0, i), Buffer.from(m.bytes), b.subarray(i)]);
        break;
      }
      case 'crlf':
        b = Buffer.from(b.toString('latin1').replace(/\n/g, '\r\n'), 'latin1');
        break;
      case 'cutLine': {
        // the first k whole lines, each with its newline
        const l = lines();
        b = Buffer.from(l.slice(0, m.at % l.length).map((x) => `${x}\n`).join(''), 'latin1');
        break;
      }
      case 'cutDword': {
        // the file ends after some dword of a dump line (the line keeps its first words)
        const l = lines();
        const dumps = l.flatMap((x, i) => (/^ {2,4}[0-9a-f]{8}:/.test(x) ? [i] : []));
        if (dumps.length === 0) break;
        const i = dumps[m.at % dumps.length];
        const prefix = l[i].indexOf(':') + 1;
        b = Buffer.from([...l.slice(0, i), l[i].slice(0, prefix + 9 * m.words)].join('\n'), 'latin1');
        break;
      }
      case 'appendSelf':
        b = Buffer.concat([b, b]);
        break;
      case 'dupSection': {
        const l = lines();
        const heads = l.flatMap((x, i) => (SECTION.test(x) ? [i] : []));
        if (heads.length === 0) break;
        const k = m.at % heads.length;
        const section = l.slice(heads[k], k + 1 < heads.length ? heads[k + 1] : l.length);
        l.splice(heads[k] + section.length, 0, ...section);
        b = join(l);
        break;
      }
    }
  }
  return b;
}

const corrupted = (kind: keyof typeof SOURCES) =>
  fc.tuple(fc.integer({ min: 0, max: SOURCES[kind].length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([i, muts]) => apply(SOURCES[kind][i], muts));

describe.each(IMPLS)('%s parsers on corrupted dumps', (impl) => {
  for (const kind of ['mqds', 'hqds', 'rls'] as const) {
    it(`${kind}: never throws; issues name lines inside the file; partial iff an error`, () => {
      fc.assert(
        fc.property(corrupted(kind), (buf) => {
          const r = PARSE[kind](buf, { impl });
          expect(r.issues.length).toBeLessThanOrEqual(MAX_ISSUES);
          for (const i of r.issues) {
            expect(i.line).toBeGreaterThanOrEqual(1);
            expect(i.line).toBeLessThanOrEqual(r.lines);
            expect(i.message.length).toBeGreaterThan(0);
            expect(i.message).not.toMatch(/[\n\r]/);
          }
          expect(r.partial).toBe(r.issues.some((i) => i.severity === 'error') || r.suppressed > 0);
        }),
        { numRuns: RUNS },
      );
    });
  }

  it('empty input, a lone newline and pure garbage', () => {
    for (const kind of ['mqds', 'hqds', 'rls'] as const) {
      expect(PARSE[kind]('', { impl })).toMatchObject({ issues: [], partial: false, lines: 0 });
      expect(PARSE[kind]('\n', { impl })).toMatchObject({ issues: [], partial: false, lines: 1 });
      const g = PARSE[kind](Buffer.from([0, 1, 2, 0xff, 0x0a, 0x80, 0x41]), { impl });
      expect(g.issues.map((i) => [i.line, i.message])).toEqual([
        [1, 'unrecognised line: "????"'],
        [2, 'unrecognised line: "?A"'],
      ]);
    }
  });

  it('keeps 100 issues and counts the rest', () => {
    const text = Array.from({ length: 250 }, (_, i) => `junk ${i}`).join('\n');
    const r = parseHqds(text, { impl });
    expect(r.issues).toHaveLength(100);
    expect(r.suppressed).toBe(150);
    expect(r.partial).toBe(true);
  });

  it('truncation in the middle of a dump line: the cut line and the short block are errors', () => {
    const text = fixture('mqds').toString('latin1');
    const cut = text.slice(0, text.indexOf('00000100:', 100) + 20);
    const r = parseMqds(cut, { impl });
    expect(r.issues.map((i) => i.message)).toEqual([
      expect.stringMatching(/^malformed MQD dump line: " {4}00000100: 00000000/),
    ]);
    expect(r.partial).toBe(true);
    const h = fixture('hqds').toString('latin1');
    const hr = parseHqds(h.slice(0, h.indexOf(' Inst 0,  CP Pipe 0, Queue 3') - 30), { impl });
    // the cut also took the node's other Insts and its SDMA RLCs: the node ends without them
    expect(hr.issues.map((i) => i.message)).toEqual([expect.stringMatching(/^malformed register line/), 'node 2 ends without its SDMA RLC dumps (dump cut?)']);
  });

  it('wrong offsets, orphan dumps and unknown headers are named with their line', () => {
    const r = parseMqds(
      [
        '    00000000: 00000001',
        'Process 12 PASID 0x5:',
        '  Compute queue on device 7c1e',
        '    00000000: c0310800 00000000',
        '    00000040: 00000000',
        '  Strange queue on device 7c1e',
        '    00000000: 00000000',
        'Process x PASID 1:',
        '  SDMA queue on device 1',
      ].join('\n'),
      { impl },
    );
    expect(r.issues.map((i) => [i.line, i.severity, i.message])).toEqual([
      [1, 'error', 'MQD dump line outside a queue'],
      [5, 'error', 'MQD dump offset 0x00000040 where 0x00000008 was expected'],
      [6, 'error', 'unrecognised queue header (its dump is skipped): "  Strange queue on device 7c1e"'],
      [8, 'error', 'unrecognised process header (its queues are skipped): "Process x PASID 1:"'],
    ]);
    expect(r.processes.map((p) => [p.pid, p.pasidField, p.queues.length])).toEqual([[12, '0x5', 1]]);
    // one problem, one issue: a damaged first line does not also make the block "start late"
    const first = parseMqds('Process 1 PASID 1:\n  Compute queue on device 1\n    00000000: 1234\n    00000020: 00000000\n', { impl });
    expect(first.issues.map((i) => [i.line, i.message])).toEqual([[3, 'malformed MQD dump line: "    00000000: 1234"']]);
    const rls = parseRls('Node x, gpu_id 1:\n  No active runlist\n  00000000: c005a200\n', { impl });
    expect(rls.issues.map((i) => i.line)).toEqual([1]);
    // a broken block is kept with the words read before the break
    expect(r.processes[0].queues[0].blocks[0].words.length).toBe(2);
  });
});

describe.runIf(nativeLoaded)('native and TS parsers give identical raw tables', () => {
  for (const kind of ['mqds', 'hqds', 'rls'] as const) {
    it(`${kind}: fixtures and their corruptions`, () => {
      for (const src of SOURCES[kind]) expect(RAW[kind](src, 'native')).toEqual(RAW[kind](src, 'ts'));
      fc.assert(
        fc.property(corrupted(kind), (buf) => {
          expect(RAW[kind](buf, 'native')).toEqual(RAW[kind](buf, 'ts'));
        }),
        { numRuns: RUNS * 2 },
      );
    });
  }
  it('truncation at arbitrary dword and line boundaries, duplicated sections and CR LF', () => {
    fc.assert(
      fc.property(fc.constantFrom('mqds', 'hqds', 'rls'), fc.nat(), fc.nat(8), fc.boolean(), fc.boolean(), (kind, at, words, twice, cr) => {
        const src = SOURCES[kind as keyof typeof SOURCES][0];
        let b = apply(src, [{ op: 'cutDword', at, words }]);
        if (twice) b = Buffer.concat([b, src]);
        if (cr) b = apply(b, [{ op: 'crlf' }]);
        expect(RAW[kind as keyof typeof RAW](b, 'native')).toEqual(RAW[kind as keyof typeof RAW](b, 'ts'));
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('strings with characters beyond latin1 go through UTF-8 on both paths', () => {
    const s = 'Process 1 PASID 1:\n  Compute queue on device ☃\nnaïve ünïcödé line\n';
    for (const kind of ['mqds', 'hqds', 'rls'] as const) expect(RAW[kind](s, 'native')).toEqual(RAW[kind](s, 'ts'));
  });
});
