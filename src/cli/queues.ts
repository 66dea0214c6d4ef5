import { Command } from 'commander';
import { snapshot, type QueueSnapshot, type SnapshotNode, type SnapshotQueue } from '../kfd/index.js';
import { addRootOptions, checkGivenRoots, collectPids, resolveRoots, type RootOptions } from './options.js';
import { table } from './table.js';
import { CliError } from './errors.js';

export function queuesCommand(): Command {
  const cmd = new Command('queues')
    .description('snapshot of the KFD queues of every process: type, GPU, priority, hardware slots per XCC')
    .option('--pid <pid>', 'only this process (repeatable, or a comma list)', collectPids)
    .option('--json', 'print one JSON object (schema gpucolo.queues/1)');
  addRootOptions(cmd);
  return cmd.action((o: RootOptions & { pid?: number[]; json?: boolean }) => {
    checkGivenRoots(cmd);
    const snap = snapshot({ ...resolveRoots(o), pids: o.pid, impl: o.impl });
    const anySource = Object.values(snap.sources).some((s) => s.ok);
    if (o.json) process.stdout.write(`${JSON.stringify(snap, null, 2)}\n`);
    else process.stdout.write(render(snap));
    if (!anySource) {
      const s = snap.sources.topology;
      throw new CliError(`no KFD data readable: ${s.error ?? 'sysfs not read'}${s.hint ? ` (${s.hint})` : ''}`, 1, true, 'ENOKFD');
    }
  });
}

/** '-' where a field does not apply (SDMA has no priority, sysfs alone shows none), '?' where it is unknown. */
function prio(q: SnapshotQueue): string {
  if (!q.priority) return q.source !== 'sysfs' && (q.type === 'compute' || q.type === 'diq') ? '?' : '-';
  return `${q.priority.level ?? '?'} ${q.priority.pipe}/${q.priority.queue}`;
}

const yesNo = (v: boolean | null): string => (v === null ? '?' : v ? 'yes' : 'no');

/**
 * HW SLOTS and ACTIVE of a queue. What hqds did not show is '?': the queue's GPU missing from it,
 * XCCs of its node missing (`, 2 XCC ?`), a slot cut before CP_HQD_ACTIVE (`(1 ?)`), the node's
 * SDMA RLCs missing.
 */
function slots(q: SnapshotQueue, hqdsRead: boolean, node: SnapshotNode | undefined): [string, string] {
  if (q.sdma) return [`sdma ${q.sdma.engine}/${q.sdma.rlc}`, yesNo(q.sdma.active)];
  if (!hqdsRead) return ['?', '?'];
  const sdmaType = q.type.startsWith('sdma');
  const unknownXccs = node ? node.perXcc.filter((x) => x.activeCp === null && x.cpSlots === null).length : 0;
  if (sdmaType && (node === undefined || node.activeSdma === null)) return ['?', '?'];
  if (q.hqds.length === 0) {
    if (sdmaType) return ['-', 'no'];
    return node === undefined || (unknownXccs > 0 && unknownXccs === node.perXcc.length) ? ['?', '?'] : ['-', unknownXccs ? `0, ${unknownXccs} XCC ?` : '0'];
  }
  const active = q.hqds.filter((h) => h.active === true).length;
  const unknown = q.hqds.filter((h) => h.active === null).length;
  return [
    q.hqds.map((h) => `${h.inst}/${h.pipe}/${h.queue}`).join(' '),
    `${active}/${q.hqds.length}${unknown ? ` (${unknown} ?)` : ''}${unknownXccs ? `, ${unknownXccs} XCC ?` : ''}`,
  ];
}

const num = (v: number | null): string => (v === null ? '?' : String(v));

/** The text report of a queue snapshot: summary, queues per process, unmatched HQDs, GPU nodes, notes. */
export function render(s: QueueSnapshot): string {
  const nq = s.processes.reduce((a, p) => a + p.queues.length, 0);
  const src = (Object.entries(s.sources) as [string, { ok: boolean; skipped: boolean }][])
    .map(([k, v]) => `${k} ${v.ok ? 'ok' : v.skipped ? 'skipped' : 'unreadable'}`)
    .join(', ');
  const out = [`KFD queues: ${s.processes.length} process(es), ${nq} queue(s)   [parser ${s.path}; ${src}]`, ...processLines(s), ...unmatchedHqdLines(s), ...nodeLines(s), ...noteLines(s)];
  return `${out.join('\n')}\n`;
}

/** Per process: a heading and its queues' table (type, priority, hardware slots, runlist). */
function processLines(s: QueueSnapshot): string[] {
  const out: string[] = [];
  const hqdsRead = s.sources.hqds.ok;
  const nodeOf = new Map(s.nodes.map((n) => [n.gpuId, n]));
  for (const p of s.processes) {
    out.push('');
    const extra = [p.name, p.nsPid !== null ? `pid ${p.nsPid} in its namespace` : null].filter(Boolean).join(', ');
    out.push(`Process ${p.pid}${extra ? ` (${extra})` : ''}`);
    if (p.queues.length === 0) {
      out.push('  no queues');
      continue;
    }
    const rows = p.queues.map((q) => {
      const [sl, act] = slots(q, hqdsRead, q.gpuId === null ? undefined : nodeOf.get(q.gpuId));
      return [
        q.qid === null ? '?' : String(q.qid),
        q.type + (q.aql === false ? ' (pm4)' : ''),
        q.gpuId ?? '?',
        num(q.node),
        prio(q),
        sl,
        act,
        q.inRunlist === null ? '?' : q.inRunlist ? 'yes' : 'no',
      ];
    });
    out.push(...table(['QID', 'TYPE', 'GPU', 'NODE', 'PRIORITY', 'HW SLOTS inst/pipe/queue', 'ACTIVE', 'RUNLIST'], rows, '  '));
  }
  return out;
}

/** Active HQD slots whose MQD belongs to no queue above (or why that is not known). */
function unmatchedHqdLines(s: QueueSnapshot): string[] {
  const out: string[] = [];
  const hqdsRead = s.sources.hqds.ok;
  out.push('');
  if (!hqdsRead) out.push('Unmatched HQDs: not known (debugfs hqds not read)');
  else if (s.unmatchedHqds.length === 0) out.push('Unmatched HQDs: none (every active HQD belongs to a queue above)');
  else {
    out.push(`Unmatched HQDs: ${s.unmatchedHqds.length} active slot(s) whose MQD is not in mqds`);
    out.push(
      ...table(
        ['NODE', 'GPU', 'KIND', 'SLOT', 'MQD', 'VMID'],
        s.unmatchedHqds.map((h) => [
          String(h.node),
          h.gpuId,
          h.likelyStale ? `${h.kind} (likely stale registers: no queue on this GPU)` : h.kind,
          `${h.inst}/${h.pipe}/${h.queue}`,
          h.mqdAddress ?? '-',
          h.vmid === null ? '-' : String(h.vmid),
        ]),
        '  ',
      ),
    );
  }
  return out;
}

/** The GPU nodes' table (queues, active HQDs, SDMA, runlist), when there are nodes. */
function nodeLines(s: QueueSnapshot): string[] {
  const out: string[] = [];
  const hqdsRead = s.sources.hqds.ok;
  if (s.nodes.length) {
    out.push('');
    out.push('GPU nodes:');
    out.push(
      ...table(
        ['NODE', 'GPU', 'NAME', 'GFX', 'XCC', 'QUEUES', 'ACTIVE HQDS', 'PER XCC', 'SDMA', 'RUNLIST'],
        s.nodes.map((n) => [
          num(n.node),
          n.gpuId,
          n.name || '-',
          n.gfxTarget ?? '?',
          num(n.numXcc),
          String(n.queues),
          hqdsRead ? `${num(n.activeHqds)}/${num(n.cpSlots)}` : '?',
          hqdsRead ? n.perXcc.map((x) => num(x.activeCp)).join('+') || '-' : '?',
          hqdsRead ? num(n.activeSdma) : '?',
          n.runlist === null ? '?' : n.runlist.present ? `${n.runlist.processes} proc, ${n.runlist.mapQueues} queues${n.runlist.chained ? ', oversubscribed' : ''}` : 'none',
        ]),
        '  ',
      ),
    );
  }
  return out;
}

/** Unreadable sources, missing fields, warnings, parse issues and the PARTIAL mark, after a blank line. */
function noteLines(s: QueueSnapshot): string[] {
  const out: string[] = [];
  const notes: string[] = [];
  for (const [name, st] of Object.entries(s.sources)) {
    if (!st.ok && !st.skipped) notes.push(`${name}: ${st.error}${st.hint ? ` — ${st.hint}` : ''}`);
  }
  if (s.missing.length) notes.push(`missing fields: ${s.missing.join(', ')}`);
  for (const w of s.warnings) notes.push(`warning: ${w}`);
  for (const i of s.issues) notes.push(`${i.severity}: ${i.file}${i.line ? `:${i.line}` : ''}: ${i.message}`);
  if (s.partial) notes.push('result is PARTIAL: some input was not understood (see above)');
  if (notes.length) {
    out.push('');
    out.push(...notes);
  }
  return out;
}
