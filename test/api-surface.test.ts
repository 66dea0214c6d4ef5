/**
 * The public API (issue #20): the run-time names of the package entry, src/index.ts (what
 * `import ... from 'gpucolo'` gives), and of its four namespaces (scenario, experiment,
 * distributed, energy).
 *
 * CHANGING THE PUBLIC API MEANS CHANGING THESE LISTS ON PURPOSE, and documenting the change in
 * README.md ("## Library"). If this test fails because an export appeared or disappeared, either
 * undo the change in src/index.ts (or in the namespace's barrel, e.g. src/scenario/index.ts) or
 * update the list here and the README together. Internal helpers belong in their modules, not
 * here; code inside gpucolo imports them from there, so a barrel never grows to serve it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as api from '../src/index.js';
import * as reportArea from '../src/report/index.js';
import * as traceArea from '../src/trace/index.js';
import { ROOT } from './helpers/impls.js';

// prettier-ignore
const PUBLIC = [
  // package, native core, doctor
  'VERSION', 'GpucoloError', 'nativeReport', 'doctor',
  // KFD: parsers, sysfs readers, queue model, snapshot, priorities
  'parseMqds', 'parseHqds', 'parseRls', 'parseMqdsRaw', 'parseHqdsRaw', 'parseRlsRaw',
  'readTopology', 'readKfdProcs', 'joinQueues', 'snapshot', 'verifyOwnQueues', 'planKfdPriority', 'updateQueue',
  // dispatch: runs, backends, probes, the KFD check
  'runDispatch', 'listBackends', 'DispatchError', 'probeLatency', 'probePriority', 'kfdCheck',
  // trace: record, read, analyze, export, study
  'runTrace', 'readTrace', 'loadTrace', 'readDumpDir', 'analyzeTrace', 'renderTraceMarkdown',
  'toPerfetto', 'writePerfetto', 'runStudy',
  // scenarios and their reports
  'scenario', 'loadScenario', 'runScenario', 'renderMarkdown', 'renderCharts', 'compareResults', 'loadResults',
  // tune
  'tuneScenario',
  // runners
  'experiment', 'loadExperimentPlan', 'runExperiment',
  'distributed', 'runDistributed', 'compareDistributed', 'analyzeDistributed',
  'runStaged', 'planStaged', 'planPipeline', 'loadPipeline',
  // statistics
  'quantiles', 'quantileOf', 'distribution', 'confidenceRanks', 'summarizeLatencyMs', 'jainIndex',
  'minSamplesForCi', 'percentileSampleSize',
  // energy
  'energy', 'startSampling', 'probeEnergySources',
];

// The four namespaces are curated lists too (src/scenario/index.ts, src/runners/experiment/index.ts,
// src/runners/distributed/index.ts, src/energy/index.ts): load/parse the files, run, read the
// results, the vocabulary and schema ids. Drivers, supervisors, formatters, zod schema objects and
// per-source parsers stay in their modules.
// prettier-ignore
const NAMESPACES: Record<'scenario' | 'experiment' | 'distributed' | 'energy', string[]> = {
  scenario: [
    'MECHANISMS', 'MODELS', 'RESULTS_SCHEMA', 'SCENARIO_SCHEMA',
    'cannedScenarios', 'loadScenario', 'parseScenario', 'runScenario',
  ],
  experiment: [
    'EXPERIMENT_RESULT_SCHEMA', 'LAYOUTS', 'MODES',
    'defaultModelsPath', 'loadExperiment', 'loadModels', 'parseExperiment', 'parseModels', 'planRuns',
    'loadExperimentPlan', 'runExperiment', 'extractMetrics', 'extractMetricsBounded',
  ],
  distributed: [
    'DIST_RESULT_SCHEMA', 'DIST_ROUNDS_SCHEMA', 'DIST_RUN_SCHEMA', 'LAUNCHERS', 'METHODS', 'PS_IMPLS', 'PS_TOPOLOGIES',
    'runDistributed', 'compareDistributed', 'analyzeDistributed',
    'listResultFiles', 'loadAnyResult', 'loadDistributedResult', 'parseDistributedResult', 'loadRoundsSummary',
  ],
  energy: ['ENERGY_SOURCES', 'openEnergySources', 'probeEnergySources', 'startSampling'],
};

// The barrels that are only the public lists (src/energy/index.ts also holds the sampler itself).
const BARRELS = ['scenario/index', 'runners/experiment/index', 'runners/distributed/index'];

const sorted = (xs: readonly string[]): string[] => [...xs].sort();

describe('public API surface (src/index.ts)', () => {
  it('the list itself has no duplicates', () => {
    expect(new Set(PUBLIC).size).toBe(PUBLIC.length);
    for (const [ns, names] of Object.entries(NAMESPACES)) expect(new Set(names).size, ns).toBe(names.length);
  });

  it('exports exactly the listed names at run time', () => {
    expect(Object.keys(api).sort()).toEqual(sorted(PUBLIC));
  });

  it('no listed name is undefined', () => {
    const missing = PUBLIC.filter((k) => (api as Record<string, unknown>)[k] === undefined);
    expect(missing).toEqual([]);
  });

  for (const [ns, names] of Object.entries(NAMESPACES)) {
    it(`namespace ${ns} exports exactly its listed names`, () => {
      const mod = (api as Record<string, unknown>)[ns];
      expect(mod && typeof mod === 'object').toBe(true);
      expect(Object.keys(mod as object).sort()).toEqual(sorted(names));
      const missing = names.filter((k) => (mod as Record<string, unknown>)[k] === undefined);
      expect(missing, `${ns} names that are undefined`).toEqual([]);
    });
  }

  it('the flat names of a namespace are the namespace functions themselves', () => {
    expect(api.loadScenario).toBe(api.scenario.loadScenario);
    expect(api.runScenario).toBe(api.scenario.runScenario);
    expect(api.loadExperimentPlan).toBe(api.experiment.loadExperimentPlan);
    expect(api.runExperiment).toBe(api.experiment.runExperiment);
    expect(api.runDistributed).toBe(api.distributed.runDistributed);
    expect(api.compareDistributed).toBe(api.distributed.compareDistributed);
    expect(api.analyzeDistributed).toBe(api.distributed.analyzeDistributed);
    expect(api.startSampling).toBe(api.energy.startSampling);
    expect(api.probeEnergySources).toBe(api.energy.probeEnergySources);
  });

  it('a namespace reaches no internals: the drivers, supervisors, formatters and parsers the commands use', () => {
    // one representative per kind that the namespaces exported whole before they were curated
    const internal: Record<keyof typeof NAMESPACES, string[]> = {
      scenario: ['runProbePhase', 'runTorchPhase', 'runSchedule', 'scenarioQuality', 'scenarioSchema', 'planRun'],
      experiment: ['runJob', 'experimentSupervisor', 'setGovernor', 'summaryMarkdown', 'experimentFileSchema'],
      distributed: ['distributedSupervisor', 'runRounds', 'torchrunArgv', 'reportText', 'distributedResultSchema'],
      energy: ['openRapl', 'parseHwmonPowerW', 'summariseDevice', 'openNativeSmi'],
    };
    for (const [ns, names] of Object.entries(internal)) {
      const mod = (api as Record<string, unknown>)[ns] as Record<string, unknown>;
      expect(names.filter((k) => k in mod), ns).toEqual([]);
    }
  });

  it('code in src/ imports the modules, never a namespace barrel (only src/index.ts does)', () => {
    const src = path.join(ROOT, 'src');
    const barrels = new Set(BARRELS.map((b) => path.join(src, `${b}.ts`)));
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.ts') && p !== path.join(src, 'index.ts')) {
          for (const m of fs.readFileSync(p, 'utf8').matchAll(/from\s+'(\.{1,2}\/[^']+)\.js'/g)) {
            if (barrels.has(path.resolve(path.dirname(p), `${m[1]}.ts`))) offenders.push(`${path.relative(ROOT, p)}: ${m[1]}.js`);
          }
        }
      }
    };
    walk(src);
    expect(offenders).toEqual([]);
  });

  it('renderMarkdown is the scenario report; the queue-usage report is renderTraceMarkdown (no shadowing)', () => {
    expect(api.renderMarkdown).toBe(reportArea.renderMarkdown);
    expect(api.renderTraceMarkdown).toBe(traceArea.renderMarkdown);
    expect(api.renderMarkdown).not.toBe(api.renderTraceMarkdown);
  });
});
