/**
 * Model swap times of a real torch pair (examples/pipelines/torch-edit-score: the conv image editor
 * and the resnet18 reward scorer), each in its own workloads/model_host.py process as a staged run
 * has it. Per repeat and model: load_to_gpu -> process the items -> unload_from_gpu (the scorer
 * reads the editor's outputs of the same repeat). Prints per model the parameter MB, the memory the
 * model reported at load, load and unload ms (median, min, max over the repeats, as timed inside
 * the host), per-item ms, and the device, torch version and host.
 *
 * One comparison, interleaved (bench/interleave.ts): the host as shipped vs a copy of
 * model_host.py without its safety-net gc.collect() after the model's own unload (a second pair
 * of host processes). Each repeat is a round that runs both pairs, in an order that alternates
 * between rounds, and gives one shipped / without ratio of the unload time per model; reported as
 * median (min-max) over the rounds. --no-compare runs the shipped pair only.
 *
 * On cpu, module.to('cpu') moves nothing: load is near zero, unload is mostly gc.collect(). The
 * figures that matter for swapping need a GPU host (--device cuda).
 *
 *   npx tsx bench/staged-swap.ts [--device auto|cpu|cuda] [--repeat N (rounds, >= 5)] [--items N]
 *                                [--dtype float32|float16] [--python PY] [--json FILE] [--no-compare]
 * python: --python, else $GPUCOLO_PYTHON, else the first of python3, /usr/bin/python3 that imports
 * torch, torchvision and PIL.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ModelHost, defaultHostScript } from '../src/runners/staged/host.js';
import { summarize, type Summary } from '../src/runners/staged/report.js';
import { supervisorWithRegistry } from '../src/supervisor/index.js';
import { formatLoad, formatSpread, interleaveRuns, metricRatio, type Metrics } from './interleave.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : def;
}

const EXAMPLE = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../examples/pipelines/torch-edit-score');
const device = arg('device', 'auto');
const dtype = arg('dtype', 'float32');
const repeat = Math.max(5, Number(arg('repeat', '5')) | 0);
const compare = !process.argv.includes('--no-compare');
const maxItems = Math.max(1, Number(arg('items', '9')) | 0);
const jsonOut = arg('json', '');

interface Info {
  python: string;
  torch: string;
  torchvision: string;
  device: string;
  deviceName: string;
  params: Record<string, number>;
}

/** Torch version, the resolved device and the parameter bytes of both models (built as the bench will build them). */
function probe(python: string): Info | string {
  const code = `
import json, sys
sys.path.insert(0, sys.argv[1])
import torch, torchvision, PIL, models
kw = dict(device=sys.argv[2], dtype=sys.argv[3], seed=0)
ed, sc = models.ImageEditor(**kw), models.RewardScorer(**kw)
dev = ed.device
name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu (%d torch threads)" % torch.get_num_threads()
print(json.dumps({"torch": torch.__version__, "torchvision": torchvision.__version__, "device": str(dev), "deviceName": name,
                  "params": {"edit": ed.param_bytes(), "score": sc.param_bytes()}}))
`;
  const r = spawnSync(python, ['-c', code, EXAMPLE, device, dtype], { encoding: 'utf8', timeout: 120_000 });
  if (r.error) return `${python}: ${r.error.message}`;
  if (r.status !== 0) return `${python}: ${(r.stderr || '').trim().split('\n').slice(-1)[0] || `exit ${r.status}`}`;
  return { python, ...(JSON.parse(r.stdout.trim().split('\n').slice(-1)[0]) as Omit<Info, 'python'>) };
}

function findPython(): Info {
  const explicit = arg('python', '') || process.env.GPUCOLO_PYTHON || '';
  const candidates = explicit ? [explicit] : ['python3', '/usr/bin/python3'];
  const why: string[] = [];
  for (const py of candidates) {
    const r = probe(py);
    if (typeof r !== 'string') return r;
    why.push(r);
  }
  console.error(`no usable python (torch, torchvision, PIL, and CUDA for --device cuda) for --device ${device}:\n  ${why.join('\n  ')}`);
  process.exit(2);
}

type Item = { id: string; category: string; [k: string]: unknown };

function loadItems(): Item[] {
  const byCat = JSON.parse(fs.readFileSync(path.join(EXAMPLE, 'items.json'), 'utf8')) as Record<string, { id: string }[]>;
  const all = Object.entries(byCat).flatMap(([category, list]) => list.map((r) => ({ ...r, category })));
  return all.slice(0, maxItems);
}

const fmt = (x: number | null, d = 1): string => (x === null ? '-' : x.toFixed(d));
const mmm = (s: Summary, d = 1): string => `${fmt(s.median, d)} (${fmt(s.min, d)}..${fmt(s.max, d)})`;

interface ModelFigures {
  stage: string;
  classPath: string;
  paramsMB: number;
  memoryMB: number[];
  loadMs: number[];
  unloadMs: number[];
  itemMs: number[];
  firstItemMs: number;
}

/**
 * A copy of model_host.py without the safety-net gc.collect() of do_unload (the model's own
 * unload_from_gpu still runs, with its own collection); null when the shipped file no longer has
 * that line where this expects it.
 */
function hostWithoutSafetyNet(dir: string): string | null {
  const text = fs.readFileSync(defaultHostScript(), 'utf8');
  const start = text.indexOf('\ndef do_unload(');
  const end = text.indexOf('\ndef ', start + 1);
  if (start < 0 || end < 0) return null;
  const body = text.slice(start, end);
  const line = '\n    gc.collect()\n';
  if (body.split(line).length !== 2) return null;
  const file = path.join(dir, 'model_host_no_safety_net.py');
  fs.writeFileSync(file, text.slice(0, start) + body.replace(line, '\n    pass  # bench/staged-swap.ts: the safety-net collection left out\n') + text.slice(end));
  return file;
}

type Pair = { label: string; script: string; models: ModelFigures[]; hosts: ModelHost[] };

function newFigures(info: Info): ModelFigures[] {
  return [
    { stage: 'edit', classPath: 'models.ImageEditor', paramsMB: info.params.edit / 2 ** 20, memoryMB: [], loadMs: [], unloadMs: [], itemMs: [], firstItemMs: NaN },
    { stage: 'score', classPath: 'models.RewardScorer', paramsMB: info.params.score / 2 ** 20, memoryMB: [], loadMs: [], unloadMs: [], itemMs: [], firstItemMs: NaN },
  ];
}

/** One repeat of a pair: per model load, the items, unload; returns the unload ms per model. */
async function repeatPair(p: Pair, items: Item[]): Promise<Metrics> {
  const edits = new Map<string, Record<string, unknown>>();
  const out: Metrics = {};
  for (let k = 0; k < p.models.length; k++) {
    const m = p.models[k];
    const h = p.hosts[k];
    const ld = await h.load();
    m.loadMs.push(ld.ms);
    m.memoryMB.push((ld.memoryBytes ?? 0) / 2 ** 20);
    for (const it of items) {
      const inputs = m.stage === 'score' ? { edit: edits.get(`${it.category}/${it.id}`) } : {};
      const res = await h.process(it.id, it, inputs);
      if (!res.ok) throw new Error(`${p.label} ${m.stage} ${it.category}/${it.id}: ${res.message}`);
      if (m.stage === 'edit') edits.set(`${it.category}/${it.id}`, res.outputs);
      if (Number.isNaN(m.firstItemMs)) m.firstItemMs = res.ms;
      else m.itemMs.push(res.ms);
    }
    const ms = (await h.unload()).ms;
    m.unloadMs.push(ms);
    out[`${m.stage}UnloadMs`] = ms;
  }
  return out;
}

async function main(): Promise<void> {
  const info = findPython();
  const items = loadItems();
  const { supervisor, dispose } = supervisorWithRegistry({ runId: `bench-staged-swap-${process.pid}`, graceMs: 3000 });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-bench-swap-'));
  const pairs: Pair[] = [{ label: 'shipped', script: defaultHostScript(), models: newFigures(info), hosts: [] }];
  let compareNote = '';
  if (compare) {
    const script = hostWithoutSafetyNet(tmp);
    if (script) pairs.push({ label: 'without', script, models: newFigures(info), hosts: [] });
    else compareNote = 'comparison skipped: workloads/model_host.py no longer has the safety-net `gc.collect()` line in do_unload that this bench removes';
  }
  const models = pairs[0].models;
  let load: number[] = [];
  let ratios: { edit: ReturnType<typeof metricRatio>; score: ReturnType<typeof metricRatio> } | null = null;
  const t0 = performance.now();
  try {
    for (const p of pairs) {
      for (const m of p.models) {
        const h = await ModelHost.start({ supervisor, name: `${p.label}-${m.stage}`, argv: [info.python, p.script], cwd: EXAMPLE, timeoutMs: 300_000, startTimeoutMs: 120_000 });
        p.hosts.push(h);
        await h.init(m.classPath, { device, dtype, seed: 0 }, [EXAMPLE, path.dirname(defaultHostScript())]);
      }
    }
    if (pairs.length > 1) {
      const run = await interleaveRuns(
        pairs.map((p) => ({ name: p.label, run: () => repeatPair(p, items) })),
        { rounds: repeat, onRun: (r, name) => process.stderr.write(`repeat ${r + 1}/${repeat} ${name} done\n`) },
      );
      load = run.load;
      ratios = { edit: metricRatio(run, 'editUnloadMs', 'shipped', 'without'), score: metricRatio(run, 'scoreUnloadMs', 'shipped', 'without') };
    } else {
      for (let r = 0; r < repeat; r++) {
        await repeatPair(pairs[0], items);
        load.push(os.loadavg()[0]);
        process.stderr.write(`repeat ${r + 1}/${repeat} done\n`);
      }
    }
  } finally {
    await Promise.all(pairs.flatMap((p) => p.hosts).map((h) => h.stop().catch(() => undefined)));
    dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const wallS = (performance.now() - t0) / 1000;

  const cpus = os.cpus();
  const hostLine = `${os.hostname()} (${cpus.length} CPUs, ${cpus[0]?.model.trim() ?? 'unknown cpu'}, ${os.type()} ${os.release()})`;
  console.log(`staged swap bench: ${models.length} models x ${repeat} repeats x ${items.length} items, dtype ${dtype}, ${wallS.toFixed(1)} s`);
  console.log(`device: ${info.device} [${info.deviceName}] (--device ${device}); torch ${info.torch}, torchvision ${info.torchvision}; python ${info.python}`);
  console.log(`host: ${hostLine}`);
  console.log('');
  console.log('| model | params MB | memory MB at load | load ms median (min..max) | unload ms median (min..max) | item ms median (min..max) | first item ms |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const m of models) {
    const mem = summarize(m.memoryMB);
    console.log(
      `| ${m.stage} (${m.classPath}) | ${m.paramsMB.toFixed(1)} | ${fmt(mem.median)} | ${mmm(summarize(m.loadMs), 2)} | ${mmm(summarize(m.unloadMs), 2)} | ${mmm(summarize(m.itemMs), 2)} | ${fmt(m.firstItemMs, 2)} |`,
    );
  }
  console.log(`\nhost ${formatLoad(load)} over the rounds`);
  if (ratios) {
    const without = pairs[1].models;
    const x = (s: ReturnType<typeof metricRatio>): string => (s ? formatSpread(s, (v) => `${v.toFixed(2)}x`) : '-');
    console.log('');
    console.log(`unload: the host as shipped vs without its safety-net gc.collect(), interleaved over ${repeat} rounds (order alternating)`);
    console.log('');
    console.log('| model | unload ms, shipped: median (min..max) | unload ms, without the safety net | shipped / without, per round: median (min-max) |');
    console.log('|---|---:|---:|---:|');
    for (const [k, m] of models.entries()) {
      console.log(`| ${m.stage} | ${mmm(summarize(m.unloadMs), 2)} | ${mmm(summarize(without[k].unloadMs), 2)} | ${x(k === 0 ? ratios.edit : ratios.score)} |`);
    }
  } else if (compareNote) {
    console.log(`\n${compareNote}`);
  }
  if (info.device === 'cpu') {
    console.log('');
    console.log("cpu figures: module.to('cpu') copies nothing, so load is near zero and unload is mostly gc.collect(); GPU swap times need --device cuda on a GPU host.");
  }
  if (jsonOut) {
    fs.writeFileSync(
      jsonOut,
      `${JSON.stringify(
        {
          date: new Date().toISOString(),
          host: hostLine,
          ...info,
          dtype,
          repeat,
          items: items.length,
          wallS,
          models: models.map((m) => ({ ...m, load: summarize(m.loadMs), unload: summarize(m.unloadMs), item: summarize(m.itemMs) })),
          withoutSafetyNet: pairs[1]?.models.map((m) => ({ stage: m.stage, unloadMs: m.unloadMs, unload: summarize(m.unloadMs) })) ?? null,
          unloadRatio: ratios,
          load,
        },
        null,
        1,
      )}\n`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
