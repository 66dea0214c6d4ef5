// The writer of bench/kfd-churn.ts, plain JavaScript so that it starts as a bare `node` process:
// its CPU time is its own, not the traced process's.
//
//   node bench/kfd-churn-writer.mjs <manifest.json> <period ms> [first step]
//
// Applies step first, first+1, ... (mod the number of steps) every <period ms> on its own schedule
// (absolute deadlines; a late step is applied at once and counted, never skipped), prints "ready"
// after the first one, and on SIGTERM/SIGINT prints one JSON line {steps, cpuNs, late} and exits.
// applySysfs and replaceFile are shared with kfd-churn.ts (in-process steps in tests).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Writes a file as a whole (temp + rename): a reader sees the old bytes or the new ones. */
export function replaceFile(file, bytes) {
  fs.writeFileSync(`${file}.tmp`, bytes);
  fs.renameSync(`${file}.tmp`, file);
}

/**
 * Makes proc/<pid>/queues match `queues` ({pid: [{qid, type}]}): a queue dir appears whole (built
 * aside, renamed in) and disappears at once (renamed away, then removed); writes cu_occupancy.
 * @param {string} procDir sysfs class/kfd/kfd/proc
 * @param {string} gpuId decimal gpu id, as sysfs names it
 * @param {Record<string, {qid: number, type: number}[]>} queues
 * @param {Record<string, number>} cuOccupancy
 */
export function applySysfs(procDir, gpuId, queues, cuOccupancy) {
  for (const [pid, want] of Object.entries(queues)) {
    const qdir = path.join(procDir, pid, 'queues');
    fs.mkdirSync(qdir, { recursive: true });
    const have = new Set(fs.readdirSync(qdir).filter((n) => /^\d+$/.test(n)));
    const wantIds = new Set(want.map((q) => String(q.qid)));
    for (const n of have) {
      if (wantIds.has(n)) continue;
      const trash = path.join(procDir, pid, `.gone-${n}-${process.pid}`);
      fs.renameSync(path.join(qdir, n), trash);
      fs.rmSync(trash, { recursive: true, force: true });
    }
    for (const q of want) {
      const name = String(q.qid);
      const target = path.join(qdir, name);
      if (have.has(name) && fs.readFileSync(path.join(target, 'type'), 'latin1') === String(q.type)) continue;
      const tmp = path.join(procDir, pid, `.new-${name}-${process.pid}`);
      fs.rmSync(tmp, { recursive: true, force: true });
      fs.mkdirSync(tmp);
      fs.writeFileSync(path.join(tmp, 'type'), String(q.type));
      fs.writeFileSync(path.join(tmp, 'size'), '1048576');
      fs.writeFileSync(path.join(tmp, 'gpuid'), gpuId);
      if (have.has(name)) fs.rmSync(target, { recursive: true, force: true });
      fs.renameSync(tmp, target);
    }
  }
  for (const [pid, occ] of Object.entries(cuOccupancy)) {
    const stats = path.join(procDir, pid, `stats_${gpuId}`);
    fs.mkdirSync(stats, { recursive: true });
    replaceFile(path.join(stats, 'cu_occupancy'), `${occ}\n`);
  }
}

function main() {
  const [manifestPath, periodText, firstText] = process.argv.slice(2);
  const periodNs = BigInt(Math.round(Number(periodText) * 1e6));
  if (!manifestPath || !(periodNs > 0n)) {
    process.stderr.write('usage: node kfd-churn-writer.mjs <manifest.json> <period ms> [first step]\n');
    process.exit(2);
  }
  const m = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  // the bytes of every step in memory: a step is then only writes and renames
  const steps = m.steps.map((s) => ({ ...s, bytes: Object.fromEntries(Object.entries(s.files).map(([f, p]) => [f, fs.readFileSync(p)])) }));
  let k = Number(firstText ?? 0);
  let done = 0;
  let late = 0;
  const apply = () => {
    const s = steps[((k % steps.length) + steps.length) % steps.length];
    for (const f of ['mqds', 'hqds', 'rls']) replaceFile(path.join(m.debugfsKfd, f), s.bytes[f]);
    applySysfs(m.sysfsProc, m.gpuId, s.sysfs, s.cuOccupancy);
    k++;
    done++;
  };
  apply();
  process.stdout.write('ready\n');
  const origin = process.hrtime.bigint();
  let next = 1n;
  let timer = null;
  const tick = () => {
    const now = process.hrtime.bigint();
    const due = origin + next * periodNs;
    if (now < due) {
      timer = setTimeout(tick, Number((due - now + 999_999n) / 1_000_000n));
      return;
    }
    if (now - due >= periodNs) late++;
    apply();
    next++;
    timer = setTimeout(tick, Math.max(0, Number((origin + next * periodNs - process.hrtime.bigint()) / 1_000_000n)));
  };
  timer = setTimeout(tick, Number(periodNs / 1_000_000n));
  const stop = () => {
    if (timer) clearTimeout(timer);
    const c = process.cpuUsage();
    process.stdout.write(`${JSON.stringify({ steps: done, cpuNs: (c.user + c.system) * 1e3, late })}\n`, () => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
