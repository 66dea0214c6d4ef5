/**
 * The public API (issue #20): the run-time names of the package entry, src/index.ts (what
 * `import ... from 'gpucolo'` gives), and of its documented namespaces.
 *
 * CHANGING THE PUBLIC API MEANS CHANGING THESE LISTS ON PURPOSE, and documenting the change in
 * README.md ("## Library"). If this test fails because an export appeared or disappeared, either
 * undo the change in src/index.ts (or in the module a namespace exports whole) or update the
 * list here and the README together. Internal helpers belong in their modules, not here.
 */
import { describe, expect, it } from 'vitest';
import * as api from '../src/index.js';
import * as reportArea from '../src/report/index.js';
import * as traceArea from '../src/trace/index.js';

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

// The README documents these namespaces as "each module whole": their names are the modules' own.
// prettier-ignore
const NAMESPACES: Record<'scenario' | 'experiment' | 'distributed' | 'energy', string[]> = {
  scenario: [
    'ARRIVALS_BEHIND', 'CANNED_DIR', 'CLOSED_LOOP_CAP', 'DEFAULT_ROUNDS', 'DRIFT_MARGIN', 'MECHANISMS',
    'MODELS', 'RESULTS_SCHEMA', 'SCENARIO_SCHEMA', 'arrivalTimes', 'cannedScenarios', 'closedLoopDurationNs',
    'deadlineNs', 'kfdGpuSharing', 'loadScenario', 'parseScenario', 'phaseSpecs', 'planRun',
    'probeMechanismProblem', 'runProbePhase', 'runScenario', 'runSchedule', 'runTorchPhase',
    'scenarioJsonSchema', 'scenarioQuality', 'scenarioSchema', 'scheduledDurationNs', 'seededRandom',
  ],
  experiment: [
    'BackgroundLoop', 'CPU_CSV_HEADER', 'DEFAULT_GRACE_MS', 'DEFAULT_TIMEOUT_S', 'EXPERIMENT_RESULT_SCHEMA',
    'GPU_CSV_HEADER', 'LAYOUTS', 'METRIC_MATCH_TIMEOUT_MS', 'MODES', 'NOTES_BACKGROUND_NOTE',
    'NOTES_COMBINED_NOTE', 'NOTES_SUCCESS_TEXT', 'attemptLog', 'buildArgv', 'compactTimestamp',
    'defaultModelsPath', 'energyMetrics', 'estimateNote', 'experimentFileSchema', 'experimentSupervisor',
    'extractMetrics', 'extractMetricsBounded', 'governorFiles', 'jobSucceeded', 'loadExperiment',
    'loadExperimentPlan', 'loadModels', 'missingRepoDirs', 'modelsFileSchema', 'nameFromFile', 'notesNames',
    'notesTimestamp', 'parseExperiment', 'parseModels', 'perfStatText', 'planRuns', 'readGovernors',
    'runExperiment', 'runJob', 'runWithRetries', 'sanitizeId', 'setGovernor', 'startEnergyRecording',
    'summaryCsv', 'summaryMarkdown', 'unavailableEnergyMetrics', 'writeEnergyCsv',
  ],
  distributed: [
    'AXIS_FORMATS', 'DEFAULT_DIST_GRACE_MS', 'DEFAULT_EXIT_GRACE_MS', 'DEFAULT_PYTHON', 'DIST_RESULT_SCHEMA',
    'DIST_ROUNDS_SCHEMA', 'DIST_RUN_SCHEMA', 'LAUNCHERS', 'METHODS', 'METHOD_DISPLAY', 'PLOT_NAMES',
    'PROBE_CODE', 'PS_IMPLS', 'PS_TOPOLOGIES', 'RESULT_FORMAT_TEXT', 'ROUNDS_FILES', 'ROUNDS_TOLERANCE',
    'TORCHRUN_BROKEN', 'analyzeDistributed', 'barLabel', 'checkPorts', 'chooseLauncher', 'commRows',
    'compareDistributed', 'comparisonRows', 'defaultPython', 'defaultScriptPath', 'directRankEnv',
    'distributedResultSchema', 'distributedSupervisor', 'freePort', 'listResultFiles', 'loadAnyResult',
    'loadDistributedResult', 'loadResultsDir', 'loadRoundsSummary', 'logTail', 'manifestFileName',
    'methodOfDisplayName', 'methodOfFile', 'notesResultSchema', 'pairedRatios', 'parseDistributedResult',
    'parseEndpoint', 'parseNotesResult', 'plotSpecs', 'probeTorchrun', 'qualityLines', 'readLines',
    'reapedChildrenTicks', 'replaceElided', 'reportMarkdown', 'reportText', 'resultData', 'resultFileName',
    'roundDir', 'roundsMarkdown', 'roundsQuality', 'roundsText', 'runDistributed', 'runHostLoadWindow',
    'runRounds', 'scriptSeconds', 'summarizeRounds', 'targetVerdict', 'timeUnit', 'topologyLines',
    'torchrunArgv', 'trainArgs', 'validateRun', 'withReapedChildren', 'writeRoundsReport',
  ],
  energy: [
    'AMD_PCI_VENDOR', 'ENERGY_SOURCES', 'openAmdgpuSysfs', 'openEnergySources', 'openNativeSmi', 'openRapl',
    'parseGpuBusyPercent', 'parseHwmonEnergyJ', 'parseHwmonPowerW', 'parseHwmonTempC', 'parseHwmonTempLabel',
    'parsePciVendor', 'parseProductName', 'parseRaplEnergyJ', 'parseRaplMaxEnergyRangeJ', 'parseRaplName',
    'probeEnergySources', 'raplReadHint', 'startSampling', 'summariseDevice',
  ],
};

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
    });
  }

  it('the flat names of a namespace are the namespace functions themselves', () => {
    expect(api.loadScenario).toBe(api.scenario.loadScenario);
    expect(api.runScenario).toBe(api.scenario.runScenario);
    expect(api.runExperiment).toBe(api.experiment.runExperiment);
    expect(api.runDistributed).toBe(api.distributed.runDistributed);
    expect(api.startSampling).toBe(api.energy.startSampling);
  });

  it('renderMarkdown is the scenario report; the queue-usage report is renderTraceMarkdown (no shadowing)', () => {
    expect(api.renderMarkdown).toBe(reportArea.renderMarkdown);
    expect(api.renderTraceMarkdown).toBe(traceArea.renderMarkdown);
    expect(api.renderMarkdown).not.toBe(api.renderTraceMarkdown);
  });
});
