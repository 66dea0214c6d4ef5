/**
 * Reports of scenario runs: atomic result files, charts (Vega-Lite -> SVG/PNG), report.md and
 * the comparison of two results.json files. Everything here works from Results alone.
 */
export { writeFileAtomic, writeJsonAtomic, type AtomicWriteOptions } from '../write.js';
export { fmtNum, fmtPct, fmtRatio, fmtPass } from './format.js';
export { chartSpecs, latencyCdfSpec, p99Spec, throughputShareSpec, sloBounds, type ChartSpec, type LatencySlo, type LatencySlos } from './chart-specs.js';
export { renderCharts, renderSpecs, type ChartFile, type RenderOptions } from './charts.js';
export { renderMarkdown, type ChartLink } from './markdown.js';
export {
  compareResults,
  loadResults,
  type CompareMissing,
  type CompareRow,
  type CompareSuccess,
  type LatencyPair,
  type Comparison,
  type MetricPair,
  type P99Change,
} from './compare.js';
