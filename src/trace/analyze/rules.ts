/**
 * The rules behind every verdict and derived figure, in words, written into `report.rules` so
 * that a report can be read without the code that made it.
 */
import { PERCENTILE_RULE } from '../../stats/index.js';
import type { AnalyzeOptions, ReportRules } from './types.js';

export function rulesText(o: Required<AnalyzeOptions>): ReportRules {
  const pct = `${Math.round(o.stableShare * 1000) / 10}%`;
  return {
    stableShare: o.stableShare,
    edgeSamples: o.edgeSamples,
    minSamples: o.minSamples,
    queueListSamples: 'queue counts and sets use the samples that list queues: every sample when sysfs was readable, else the samples that read debugfs and whose mqds text was whole (a cut or broken dump lacks queues, and what it shows may have no identity); the events of such a sample and of the one after it are replaced by the changes between the listing samples around it',
    window: `a process's window runs from the first sample showing one of its queues to the last sample showing the process; ${o.edgeSamples} sample(s) are dropped at an end that is a lifecycle change (queues appearing during the trace, the process exiting during the trace)`,
    stable: `stable = the most common set of queue keys appears in >= ${pct} of the considered window samples (at least ${o.minSamples}); fewer considered samples: too-few-samples`,
    setChanges: 'a set change is a sample whose queue keys differ from the previous sample that listed queues',
    mapping: "per compute queue and sample with HQD data: the XCCs with an active slot (CP_HQD_ACTIVE) holding the queue's MQD, checked against the GPU's numXcc from the trace header; partial = active on some but not all XCCs; split-slots = different (pipe, queue) on different XCCs. A sample whose mqds or hqds text was not whole, that did not show the queue's node or one of its XCCs, or that could not read a slot's CP_HQD_ACTIVE, is no observation of the queue's mapping",
    slotChange: 'a slot change is a mapped sample whose slot signature differs from the previous mapped sample (unmapped gaps in between do not count)',
    xccDistribution: 'active HQD slots per XCC count the queues in the trace plus unmatched active slots, over the samples that read that XCC: a node or Inst a dump did not show is unknown there, not 0 active, and the balance check compares the XCCs that were read; in a trace of selected pids, other processes\' slots are not recorded',
    lifecycle: "start reference = the latest 'command-started' marker at or before the process was first seen, else its process-started event; stop/exit = the first 'stop-signal' / 'command-exited' marker after the start reference (exit falls back to the process-exited event). Created/destroyed times are those of the sample that first showed the change, so the true time lies up to one sampling gap earlier (the *ResolutionNs fields)",
    coexistence: 'co-located = processes holding queues that were alive (listed) in the same samples; for every sample in which two or more of them held queues: no MQD (gpu, address) in two processes, no active HQD slot (node, inst, pipe, queue) or SDMA RLC held by two queues, and distinct device queues == sum of per-process counts',
    percentiles: PERCENTILE_RULE,
  };
}
