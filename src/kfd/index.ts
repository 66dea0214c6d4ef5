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
export { parseProcStatus, readProcStatus, namespacePid } from '../procfs.js';
export type { ProcStatus } from '../procfs.js';
export { gfxTargetName, priorityLevel, decodeComputeMqd, decodeSdmaMqd, decodeComputeHqd, decodeSdmaHqd } from './decode.js';
export { kfdVersion, updateQueue, updateQueueArgs, queueSnapshotSelf, parseQueueSnapshot } from './ioctl.js';
export type { UpdateQueueOptions, UpdateQueueSent, QueueSnapshotEntry, QueueSnapshotSelfOptions, QueueSnapshotSelfResult, KfdIoctlError } from './ioctl.js';
export { expectedKfdPriority, pipePriorityOf, verifyOwnQueues, planKfdPriority, GPU_MAX_HW_QUEUES } from './priority.js';
export type {
  HipPriority,
  RocrGeneration,
  KfdPriority,
  ExpectedStream,
  VerifyOwnQueuesOptions,
  OwnQueue,
  LevelVerdict,
  OwnQueuesReport,
  PlanKfdPriorityOptions,
  PlanRefusal,
  KfdPriorityPlan,
  KfdPriorityPlanOk,
  KfdPriorityPlanRefused,
} from './priority.js';
export * from './types.js';
export type { MqdsRaw, HqdsRaw, RlsRaw, TopologyRaw, ProcsRaw, ReadIssue, ParseIssue, Severity } from './raw.js';
