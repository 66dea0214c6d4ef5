/** `gpucolo tune`: the mechanism setting that meets the high-priority SLOs with the most low-priority throughput. */
export { tuneScenario, DEFAULT_BUDGET_NS, DEFAULT_COARSE, DEFAULT_MAX_REPEATS } from './run.js';
export type { TuneOptions, TuneEvent, TuneRunResult } from './run.js';
export { searchKnob, coarseLevels, bestMet, paretoFront, Budget } from './search.js';
export type { SearchOptions, SearchResult, SearchTrial, TrialOutcome, Verdict, FrontPoint } from './search.js';
export { tailDecision, binomialCdf, binomialSf, allowedOverShare, samplesToMeet, DEFAULT_CONFIDENCE } from './early-stop.js';
export type { Decision, TailSample, TailDecision } from './early-stop.js';
export { TUNABLE, knobFor, knobProblem, lpInflight, settingYaml } from './knobs.js';
export type { Knob, KnobName, Setting } from './knobs.js';
export { tuneResultSchema, tuneJsonSchema, TUNE_SCHEMA } from './schema.js';
export type { TuneResult, TuneTrial, SloCheck, MechanismSummary, Recommendation } from './schema.js';
export { frontChartSpec, renderTuneMarkdown } from './report.js';
