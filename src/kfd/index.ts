/** KFD introspection: parsers (native + TS), sysfs readers, the queue model and snapshots. */
export { parseMqds, parseHqds, parseRls, parseMqdsRaw, parseHqdsRaw, parseRlsRaw, readTopology, readKfdProcs } from './parse.js';
export { joinQueues } from './join.js';
export type {
  JoinInput,
  JoinResult,
  QidMatch,
  SnapshotHqd,
  SnapshotNode,
  SnapshotProcess,
  SnapshotQueue,
  SnapshotSdmaSlot,
  SnapshotXcc,
  UnmatchedHqd,
} from './join.js';
export { snapshot, QUEUES_SCHEMA } from './snapshot.js';
export type { QueueSnapshot, SnapshotIssue, SnapshotOptions, SourceName, SourceStatus } from './snapshot.js';
export { parseProcStatus, readProcStatus, namespacePid } from './procfs.js';
export type { ProcStatus } from './procfs.js';
export { gfxTargetName, priorityLevel, decodeComputeMqd, decodeSdmaMqd, decodeComputeHqd, decodeSdmaHqd } from './decode.js';
export { kfdVersion } from './ioctl.js';
export * from './types.js';
export type { MqdsRaw, HqdsRaw, RlsRaw, TopologyRaw, ProcsRaw, ReadIssue, ParseIssue, Severity } from './raw.js';
