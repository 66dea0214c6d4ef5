/**
 * Public parser entry points. Each picks the native or the TS implementation (`impl`), gets the
 * same raw tables from either, and builds the same objects from them.
 */
import { pickImpl, requireNative, type Impl } from '../native.js';
import { buildHqds, buildMqds, buildProcs, buildRls, buildTopology } from './build.js';
import { parseHqdsTs } from './hqds-parser.js';
import { parseMqdsTs } from './mqds-parser.js';
import { parseRlsTs } from './rls-parser.js';
import { readKfdProcsTs, readTopologyTs } from './sysfs-reader.js';
import type { HqdsRaw, MqdsRaw, ProcsRaw, RlsRaw, TopologyRaw } from './raw.js';
import type { Hqds, KfdProcs, Mqds, ParseOptions, Rls, Topology } from './types.js';
import { invalidArg } from '../errors.js';

function toBytes(input: string | Uint8Array): Uint8Array {
  return typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
}

function checkInput(input: unknown, what: string): asserts input is string | Uint8Array {
  if (typeof input !== 'string' && !(input instanceof Uint8Array)) {
    throw invalidArg(`${what}: input must be a string or a Buffer/Uint8Array`, 'ERR_INVALID_ARG_TYPE');
  }
}

/** Raw tables of debugfs kfd/mqds (for parity tests and benchmarks). */
export function parseMqdsRaw(input: string | Uint8Array, impl: Impl): MqdsRaw {
  checkInput(input, 'parseMqds');
  return impl === 'native' ? requireNative().parseMqds(toBytes(input)) : parseMqdsTs(input);
}
export function parseHqdsRaw(input: string | Uint8Array, impl: Impl): HqdsRaw {
  checkInput(input, 'parseHqds');
  return impl === 'native' ? requireNative().parseHqds(toBytes(input)) : parseHqdsTs(input);
}
export function parseRlsRaw(input: string | Uint8Array, impl: Impl): RlsRaw {
  checkInput(input, 'parseRls');
  return impl === 'native' ? requireNative().parseRls(toBytes(input)) : parseRlsTs(input);
}

/** Parses the text of debugfs kfd/mqds: processes, queues, raw MQD blocks per XCC, decoded fields. */
export function parseMqds(input: string | Uint8Array, opts: ParseOptions = {}): Mqds {
  const impl = pickImpl(opts.impl);
  return buildMqds(parseMqdsRaw(input, impl), impl, opts.file);
}

/** Parses the text of debugfs kfd/hqds: nodes, HIQ/CP slots per XCC with 56 registers, SDMA RLCs. */
export function parseHqds(input: string | Uint8Array, opts: ParseOptions = {}): Hqds {
  const impl = pickImpl(opts.impl);
  return buildHqds(parseHqdsRaw(input, impl), impl, opts.file);
}

/** Parses the text of debugfs kfd/rls: per node the runlist IB cut into MAP_PROCESS/MAP_QUEUES. */
export function parseRls(input: string | Uint8Array, opts: ParseOptions = {}): Rls {
  const impl = pickImpl(opts.impl);
  return buildRls(parseRlsRaw(input, impl), impl, opts.file);
}

export function readTopologyRaw(sysfsRoot: string, impl: Impl): TopologyRaw {
  return impl === 'native' ? requireNative().readTopology(sysfsRoot) : readTopologyTs(sysfsRoot);
}
export function readKfdProcsRaw(sysfsRoot: string, impl: Impl, pids?: readonly number[]): ProcsRaw {
  return impl === 'native' ? requireNative().readKfdProcs(sysfsRoot, pids ? [...pids] : undefined) : readKfdProcsTs(sysfsRoot, pids);
}

/** KFD topology nodes (CPU and GPU) under <sysfsRoot>/class/kfd/kfd/topology/nodes. */
export function readTopology(opts: { sysfsRoot?: string; impl?: Impl } = {}): Topology {
  const impl = pickImpl(opts.impl);
  return buildTopology(readTopologyRaw(opts.sysfsRoot ?? '/sys', impl), impl);
}

/** Per-process KFD state under <sysfsRoot>/class/kfd/kfd/proc (no root needed). */
export function readKfdProcs(opts: { sysfsRoot?: string; pids?: readonly number[]; impl?: Impl } = {}): KfdProcs {
  const impl = pickImpl(opts.impl);
  return buildProcs(readKfdProcsRaw(opts.sysfsRoot ?? '/sys', impl, opts.pids), impl);
}
