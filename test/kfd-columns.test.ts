/**
 * The named column layouts of the KFD tables (issue #20): src/kfd/columns.ts declares them for
 * TS, native/kfd/columns.h for C++, and the addon's kfdTableColumns() returns the C++ names. A
 * table whose columns differ between the two would make one side read another column than the
 * other writes, so every table must give the same names in the same order in both languages.
 */
import { describe, expect, it } from 'vitest';
import { KFD_TABLES, columnCount, columnNames, kfdTableColumns, type KfdTable } from '../src/kfd/columns.js';
import {
  HQDS_NODE_COLS,
  HQDS_SLOT_COLS,
  MQDS_BLOCK_COLS,
  MQDS_PROC_COLS,
  MQDS_QUEUE_COLS,
  PROCS_METRIC_COLS,
  PROCS_PROC_COLS,
  PROCS_QUEUE_COLS,
  RLS_NODE_COLS,
  RLS_PACKET_COLS,
} from '../src/kfd/raw.js';
import { loadNative } from '../src/native.js';
import { nativeLoaded } from './helpers/impls.js';

const TABLES = Object.keys(KFD_TABLES) as KfdTable[];

describe('TS column layouts (src/kfd/columns.ts)', () => {
  it('declares every table of the shared contract, in its order', () => {
    expect(TABLES).toEqual([
      'mqdsProcs',
      'mqdsQueues',
      'mqdsBlocks',
      'hqdsNodes',
      'hqdsSlots',
      'rlsNodes',
      'rlsPackets',
      'procsProcs',
      'procsQueues',
      'procsMetrics',
      'joinTopology',
      'joinProcs',
      'joinProcQueues',
      'joinQueues',
      'joinAddresses',
      'joinHqds',
      'joinProcesses',
      'joinRunlist',
      'joinUnmatchedHqds',
      'joinUnmatchedRunlist',
      'joinNodes',
      'joinXccs',
    ]);
  });

  it.each(TABLES)('%s: each column index is its position (the literals cannot drift)', (table) => {
    const cols: Record<string, number> = KFD_TABLES[table];
    expect(Object.values(cols)).toEqual(columnNames(table).map((_, i) => i));
    expect(columnCount(table)).toBe(columnNames(table).length);
  });

  it('the row widths exported by src/kfd/raw.ts are the column counts', () => {
    expect({
      MQDS_PROC_COLS,
      MQDS_QUEUE_COLS,
      MQDS_BLOCK_COLS,
      HQDS_NODE_COLS,
      HQDS_SLOT_COLS,
      RLS_NODE_COLS,
      RLS_PACKET_COLS,
      PROCS_PROC_COLS,
      PROCS_QUEUE_COLS,
      PROCS_METRIC_COLS,
    }).toEqual({
      // the widths the native ABI has always had (native/kfd/*_parser.h, sysfs_reader.h)
      MQDS_PROC_COLS: 4,
      MQDS_QUEUE_COLS: 8,
      MQDS_BLOCK_COLS: 4,
      HQDS_NODE_COLS: 6,
      HQDS_SLOT_COLS: 10,
      RLS_NODE_COLS: 9,
      RLS_PACKET_COLS: 4,
      PROCS_PROC_COLS: 6,
      PROCS_QUEUE_COLS: 5,
      PROCS_METRIC_COLS: 4,
    });
    expect(MQDS_QUEUE_COLS).toBe(columnCount('mqdsQueues'));
    expect(HQDS_SLOT_COLS).toBe(columnCount('hqdsSlots'));
    expect(RLS_NODE_COLS).toBe(columnCount('rlsNodes'));
    expect(PROCS_PROC_COLS).toBe(columnCount('procsProcs'));
  });

  it('the join tables keep the widths of native/kfd/join.h', () => {
    const widths = Object.fromEntries(TABLES.filter((t) => t.startsWith('join')).map((t) => [t, columnCount(t)]));
    expect(widths).toEqual({
      joinTopology: 3,
      joinProcs: 4,
      joinProcQueues: 4,
      joinQueues: 27,
      joinAddresses: 2,
      joinHqds: 6,
      joinProcesses: 5,
      joinRunlist: 4,
      joinUnmatchedHqds: 13,
      joinUnmatchedRunlist: 6,
      joinNodes: 15,
      joinXccs: 4,
    });
  });
});

// Skipped only when no addon is loaded; an addon that is loaded but lacks kfdTableColumns fails
// here, since then nothing checks that its layouts are the ones TS reads.
describe.skipIf(!nativeLoaded)('native column layouts = TS column layouts', () => {
  it('the addon exports kfdTableColumns', () => {
    expect(typeof loadNative()?.kfdTableColumns).toBe('function');
  });

  it('every table has the same column names in the same order in both languages', () => {
    const native = loadNative()!.kfdTableColumns!();
    expect(Object.keys(native).sort()).toEqual([...TABLES].sort());
    for (const table of TABLES) expect({ table, columns: native[table] }).toEqual({ table, columns: columnNames(table) });
  });

  it('agrees with kfdTableColumns() of columns.ts as a whole', () => {
    expect(loadNative()!.kfdTableColumns!()).toEqual(kfdTableColumns());
  });
});
