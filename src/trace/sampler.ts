/**
 * Takes samples of the KFD pseudo-files at a fixed interval and hands them over raw (tables, not
 * objects). Two implementations, one output (NativeSample):
 *  - 'native-thread': a C++ thread on CLOCK_MONOTONIC with absolute deadlines, delivering through
 *    a ThreadSafeFunction (src/native.ts startSampler);
 *  - 'ts-timer': setTimeout re-armed against absolute deadlines (drift-corrected), reading with
 *    the TS readers.
 * Both skip deadlines they are late for (reported as `missed`) rather than bursting to catch up.
 */
import fs from 'node:fs';
import { loadNative, type NativeReadError, type NativeSample } from '../native.js';
import { parseHqdsTs } from '../kfd/hqds-ts.js';
import { parseMqdsTs } from '../kfd/mqds-ts.js';
import { parseRlsTs } from '../kfd/rls-ts.js';
import { readKfdProcsTs, underRoot } from '../kfd/sysfs-ts.js';

export type { NativeSample as RawSample };

export interface SamplerOptions {
  sysfsRoot: string;
  debugfsRoot: string;
  intervalNs: number;
  /** read debugfs every N-th sample; 0 = never */
  debugfsEvery: number;
  /** stop after this many samples; 0 = until stop() */
  maxSamples?: number;
  /** 'native' (thread) or 'ts' (timers); default native when the addon is loaded */
  impl?: 'native' | 'ts';
}

export interface Sampler {
  kind: 'native-thread' | 'ts-timer';
  /** CLOCK_MONOTONIC ns of t = 0 */
  originNs: bigint;
  stop(): Promise<void>;
  /** resolves when the sampler stopped by itself (maxSamples) or after stop() */
  done: Promise<void>;
}

export function startSampler(opts: SamplerOptions, onSample: (s: NativeSample) => void): Sampler {
  const native = opts.impl === 'ts' ? null : loadNative();
  if (opts.impl === 'native' && !native) throw Object.assign(new Error('native sampler requested but the native core is not loaded'), { code: 'ENONATIVE' });
  if (native) {
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r));
    const maxSamples = opts.maxSamples ?? 0;
    const h = native.startSampler(
      {
        sysfsRoot: opts.sysfsRoot,
        debugfsRoot: opts.debugfsRoot,
        intervalNs: opts.intervalNs,
        debugfsEvery: opts.debugfsEvery,
        maxSamples,
        pids: null,
        maxQueued: 64,
      },
      (s) => {
        try {
          onSample(s);
        } finally {
          // seq counts dropped samples too; the thread never drops the last one
          if (maxSamples > 0 && s.seq >= maxSamples - 1) void h.stop().then(finish);
        }
      },
    );
    let stopping: Promise<void> | null = null;
    return {
      kind: 'native-thread',
      originNs: BigInt(h.originNs),
      stop: () => (stopping ??= h.stop().then(finish)),
      done,
    };
  }
  return startTsSampler(opts, onSample);
}

function readDebugfs(root: string, name: string): Buffer | NativeReadError {
  const path = underRoot(root, `kfd/${name}`);
  try {
    return fs.readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    return { code, message: `cannot read ${path} (${code})` };
  }
}

const isError = (x: Buffer | NativeReadError): x is NativeReadError => !Buffer.isBuffer(x);

function startTsSampler(opts: SamplerOptions, onSample: (s: NativeSample) => void): Sampler {
  const origin = process.hrtime.bigint();
  const interval = BigInt(opts.intervalNs);
  const maxSamples = opts.maxSamples ?? 0;
  let k = 0n; // index of the next deadline
  let seq = 0;
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));

  const take = (): void => {
    timer = null;
    if (stopped) return;
    const now = process.hrtime.bigint();
    // timers work in whole ms against a cached loop clock: never sample before the deadline
    if (now < origin + k * interval) {
      arm();
      return;
    }
    // late by whole intervals: skip those deadlines, report them
    const behind = (now - origin - k * interval) / interval;
    const missed = behind > 0n ? Number(behind) : 0;
    k += BigInt(missed);
    const intended = k * interval;
    const t0 = process.hrtime.bigint();
    const procs = readKfdProcsTs(opts.sysfsRoot);
    const withDebugfs = opts.debugfsEvery > 0 && seq % opts.debugfsEvery === 0;
    const bufs = withDebugfs ? (['mqds', 'hqds', 'rls'] as const).map((n) => readDebugfs(opts.debugfsRoot, n)) : [];
    const t1 = process.hrtime.bigint();
    const sample: NativeSample = {
      seq,
      intendedNs: Number(intended),
      actualNs: Number(t0 - origin),
      readNs: Number(t1 - t0),
      parseNs: 0,
      missed,
      dropped: 0,
      procs,
    };
    if (withDebugfs) {
      const [m, h, r] = bufs;
      sample.mqds = isError(m) ? m : parseMqdsTs(m);
      sample.hqds = isError(h) ? h : parseHqdsTs(h);
      sample.rls = isError(r) ? r : parseRlsTs(r);
      sample.parseNs = Number(process.hrtime.bigint() - t1);
    }
    seq++;
    k++;
    try {
      onSample(sample);
    } finally {
      if (maxSamples > 0 && seq >= maxSamples) {
        stopped = true;
        finish();
      } else if (!stopped) arm();
    }
  };
  const arm = (): void => {
    const wait = origin + k * interval - process.hrtime.bigint();
    timer = setTimeout(take, wait > 0n ? Number((wait + 999_999n) / 1_000_000n) : 0);
  };
  arm();
  return {
    kind: 'ts-timer',
    originNs: origin,
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      finish();
    },
    done,
  };
}
