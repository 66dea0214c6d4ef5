/**
 * Random damage (fast-check) to the dumps a snapshot joins: the native one-call join
 * (native/kfd/join.cc) and the TS join (TS parsers, objects, joinQueues) still give the same
 * result, for any subset of files read, with and without a sysfs view that disagrees in part.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'vitest';
import fc from 'fast-check';
import type { DumpFiles } from '../src/kfd/snapshot.js';
import { readKfdProcs, readTopology } from '../src/index.js';
import { DEBUGFS, SYSFS, nativeLoaded } from './helpers/impls.js';
import { expectSameJoin, randomSysfs } from './helpers/kfd-snapshot-sysfs.js';
import { randomScenario, synthHqds, synthMqds, synthRls } from './helpers/kfd-synth.js';

const RUNS = Number(process.env.GPUCOLO_FUZZ_RUNS ?? 150);
const FILES = ['mqds', 'hqds', 'rls'] as const;

/** One damage to a file: a byte, a line lost/doubled/swapped, a cut, garbage, CR LF, the file twice. */
type Damage =
  | { op: 'flip'; at: number; byte: number }
  | { op: 'dropLine' | 'dupLine' | 'truncate' | 'cutLine'; at: number }
  | { op: 'swapLines'; at: number; with: number }
  | { op: 'insert'; at: number; bytes: number[] }
  | { op: 'crlf' | 'appendSelf' };

const damage: fc.Arbitrary<Damage> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), byte: fc.constantFrom(0x30, 0x31, 0x38, 0x61, 0x66, 0x20, 0x0a, 0x3a, 0x78) }),
  fc.record({ op: fc.constantFrom('dropLine' as const, 'dupLine' as const, 'truncate' as const, 'cutLine' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('swapLines' as const), at: fc.nat(), with: fc.nat() }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.array(fc.nat(255), { maxLength: 24 }) }),
  fc.record({ op: fc.constantFrom('crlf' as const, 'appendSelf' as const) }),
);

function lines(b: Buffer): string[] {
  return b.toString('latin1').split('\n');
}
const fromLines = (l: string[]): Buffer => Buffer.from(l.join('\n'), 'latin1');

function applyDamage(src: Buffer, d: Damage): Buffer {
  if (src.length === 0) return src;
  const b = Buffer.from(src);
  const l = lines(b);
  switch (d.op) {
    case 'flip':
      // hex digits, separators and newlines: the bytes that change what a dump line says
      b[d.at % b.length] = d.byte;
      return b;
    case 'dropLine':
      l.splice(d.at % l.length, 1);
      return fromLines(l);
    case 'dupLine':
      l.splice(d.at % l.length, 0, l[d.at % l.length]);
      return fromLines(l);
    case 'swapLines': {
      const [i, j] = [d.at % l.length, d.with % l.length];
      [l[i], l[j]] = [l[j], l[i]];
      return fromLines(l);
    }
    case 'truncate':
      return b.subarray(0, d.at % b.length);
    case 'cutLine':
      return Buffer.from(l.slice(0, d.at % l.length).map((x) => `${x}\n`).join(''), 'latin1');
    case 'insert': {
      const i = d.at % b.length;
      return Buffer.concat([b.subarray(0, i), Buffer.from(d.bytes), b.subarray(i)]);
    }
    case 'crlf':
      return Buffer.from(b.toString('latin1').replace(/\n/g, '\r\n'), 'latin1');
    case 'appendSelf':
      return Buffer.concat([b, b]);
  }
}

const fixture = (f: string): Buffer => fs.readFileSync(path.join(DEBUGFS, 'kfd', f));
const FIXTURE = { mqds: fixture('mqds'), hqds: fixture('hqds'), rls: fixture('rls') };
const FIXTURE_SYSFS = { topology: readTopology({ sysfsRoot: SYSFS, impl: 'ts' }), procs: readKfdProcs({ sysfsRoot: SYSFS, impl: 'ts' }) };

const input = fc.record({
  seed: fc.integer({ min: 1, max: 1_000_000 }),
  // 0: the shared fixture with its sysfs tree; else a synthesized machine with a random sysfs view
  source: fc.nat(3),
  read: fc.subarray([...FILES], { minLength: 1 }),
  sysfs: fc.constantFrom('none', 'topology', 'procs', 'both'),
  damage: fc.array(fc.record({ file: fc.constantFrom(...FILES), d: damage }), { minLength: 1, maxLength: 4 }),
});

describe.skipIf(!nativeLoaded)('native snapshot join = TS join on damaged dumps', () => {
  it('any damage, any files read, any sysfs view', () => {
    fc.assert(
      fc.property(input, (c) => {
        const s = randomScenario(c.seed, c.seed % 4 === 0 ? { instPrinted: false, header: 'hex', mapProcessDwords: 16 } : {});
        const base =
          c.source === 0
            ? FIXTURE
            : { mqds: Buffer.from(synthMqds(s), 'latin1'), hqds: Buffer.from(synthHqds(s), 'latin1'), rls: Buffer.from(synthRls(s), 'latin1') };
        const sys = c.source === 0 ? FIXTURE_SYSFS : randomSysfs(s, c.seed);
        const dumps: DumpFiles = {};
        for (const f of c.read) dumps[f] = base[f];
        for (const { file, d } of c.damage) if (dumps[file]) dumps[file] = applyDamage(dumps[file] as Buffer, d);
        expectSameJoin(dumps, {
          topology: c.sysfs === 'topology' || c.sysfs === 'both' ? sys.topology : null,
          procs: c.sysfs === 'procs' || c.sysfs === 'both' ? sys.procs : null,
        });
      }),
      { numRuns: RUNS },
    );
  });
});
