/**
 * Process supervision for every gpucolo runner: children in their own process groups, a run
 * registry, group stops (signal -> grace -> SIGKILL) and cleanup on gpucolo's own signals and
 * exit; plus /proc tree queries for "is this process part of my run?". Import only this file.
 */
export { Supervisor, UsageError } from './supervisor.js';
export type {
  ChildSpec,
  ExitInfo,
  OutputMode,
  SignalHandlerOptions,
  StdinMode,
  StopOptions,
  SupervisedChild,
  SupervisorOptions,
} from './supervisor.js';
export { RUNS_SCHEMA, RegistryFormatError, readRunRegistry, writeRegistryFile } from './registry.js';
export type { ChildRecord, ChildState, ExitReason, RunRegistryDoc } from './registry.js';
export {
  ancestors,
  descendants,
  groupMembers,
  isDescendantOf,
  listPids,
  liveGroupMembers,
  namespacePid,
  parseStat,
  readStat,
  readStatus,
  relatedGroups,
  scanStats,
  subtree,
} from './proctree.js';
export type { PidStat, PidStatus } from './proctree.js';
export { REGISTRY_PREFIX, defaultRegistryDir, defaultRegistryFile, listRegistryFiles, reapRegistries } from './cleanup.js';
export type { ReapAction, ReapOptions, ReapOutcome, ReapReport } from './cleanup.js';
export { supervisorWithRegistry } from './with-registry.js';
export type { RegisteredSupervisor } from './with-registry.js';
