/**
 * Which launcher starts the ranks, and the argv each one gets.
 *
 * `torchrun` = `python -m torch.distributed.run` (the module, so that the configured interpreter
 * is the one used; /usr/bin/torchrun hard-codes its own). Flags use the underscore spellings,
 * which torch 1.13 requires and torch 2.x still accepts.
 *
 * Debian's torch 1.13 on Python 3.11 crashes in torchrun before any worker starts: Std is an
 * IntFlag, 3.11 no longer yields its zero or multi-bit members, so Std.from_str("0") (the default
 * of --redirects and --tee) and Std.from_str("3") return None (docs/supervisor.md#launching-distributed-ranks). Single-bit
 * values work, so gpucolo always passes `--redirects 2 --tee 1`: tee implies redirect, so both
 * streams of every rank land in torchrun's per-rank files (stdout.log, stderr.log) and stdout is
 * also copied, prefixed, to the launcher's own log. `auto` probes Std.from_str('0') once per
 * interpreter: where it fails, a single-node job is launched directly by gpucolo (the real rank
 * pids, no launcher process, no 5 s monitor poll); a multi-node job still needs torchrun's
 * rendezvous and uses it with those flags.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export type LauncherName = 'torchrun' | 'direct';
export type LauncherRequest = 'auto' | LauncherName;
export const LAUNCHERS: readonly LauncherRequest[] = ['auto', 'torchrun', 'direct'];

/** What the probe found about torchrun with one interpreter. */
export interface TorchrunProbe {
  /** torch.distributed imports and Std.from_str('0') works: torchrun runs with its defaults */
  usable: boolean;
  /** torch.distributed could be imported at all */
  torch: boolean;
  /** one line: what was found */
  reason: string;
}

export interface LauncherChoice {
  launcher: LauncherName;
  /** one line: why this launcher */
  why: string;
  /** the probe's finding, when one was run */
  probe?: TorchrunProbe;
}

export interface ChooseLauncherOptions {
  /** default 'auto' */
  launcher?: LauncherRequest;
  /** default 1 */
  nnodes?: number;
  /** interpreter to probe (default $GPUCOLO_PYTHON or /usr/bin/python3) */
  python?: string;
  /** a finding to use instead of running the probe (tests, callers that probed already) */
  probe?: TorchrunProbe;
}

export const DEFAULT_PYTHON = '/usr/bin/python3';
export const defaultPython = (env: NodeJS.ProcessEnv = process.env): string => env.GPUCOLO_PYTHON || DEFAULT_PYTHON;

/** workloads/dist_train.py next to src/ or dist/ (both are two levels below runners/distributed). */
export function defaultScriptPath(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../workloads/dist_train.py');
}

/** The probe, as given in the brief: exit 0 = Std.from_str('0') works, 1 = it returns None. */
export const PROBE_CODE = "from torch.distributed.elastic.multiprocessing.api import Std; import sys; sys.exit(0 if Std.from_str('0') is not None else 1)";
export const TORCHRUN_BROKEN = "Debian torch 1.13 on Python 3.11: Std.from_str('0') is None";

const probes = new Map<string, Promise<TorchrunProbe>>();

/** Runs the probe once per interpreter (cached for the process). Never rejects. */
export function probeTorchrun(python: string = defaultPython(), opts: { timeoutMs?: number; fresh?: boolean } = {}): Promise<TorchrunProbe> {
  if (!opts.fresh) {
    const cached = probes.get(python);
    if (cached) return cached;
  }
  const p = (async (): Promise<TorchrunProbe> => {
    const r = await execa(python, ['-c', PROBE_CODE], {
      reject: false,
      timeout: opts.timeoutMs ?? 60_000,
      stdin: 'ignore',
      env: { OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? '1' },
      // the probe must not look like a rank to a --python wrapper
      extendEnv: true,
    });
    if (r.exitCode === 0) return { usable: true, torch: true, reason: "torchrun works here (Std.from_str('0') is a Std)" };
    if (r.exitCode === 1 && !/Traceback|Error/.test(String(r.stderr))) return { usable: false, torch: true, reason: TORCHRUN_BROKEN };
    const last = String(r.stderr ?? '').trim().split('\n').filter(Boolean).pop();
    const why = r.timedOut ? 'timed out' : r.failed && r.exitCode === undefined ? (r.shortMessage ?? 'could not run').split('\n')[0] : (last ?? `exit code ${r.exitCode}`);
    return { usable: false, torch: false, reason: `${python} cannot import torch.distributed: ${why}` };
  })();
  probes.set(python, p);
  return p;
}

/**
 * Picks the launcher. `direct` is single-node only. `auto`: torchrun where it works with its
 * defaults; else direct for one node, torchrun with the --redirects/--tee workaround for several.
 */
export async function chooseLauncher(opts: ChooseLauncherOptions = {}): Promise<LauncherChoice> {
  const requested = opts.launcher ?? 'auto';
  const nnodes = opts.nnodes ?? 1;
  if (requested === 'direct') {
    return { launcher: 'direct', why: nnodes > 1 ? 'requested (single node only)' : 'requested with --launcher direct' };
  }
  if (requested === 'torchrun') {
    return { launcher: 'torchrun', why: 'requested with --launcher torchrun (run with --redirects 2 --tee 1, which also works where the default crashes)' };
  }
  const probe = opts.probe ?? (await probeTorchrun(opts.python ?? defaultPython()));
  if (probe.usable) return { launcher: 'torchrun', why: probe.reason, probe };
  if (nnodes > 1) {
    return {
      launcher: 'torchrun',
      why: `${probe.reason}; a multi-node job needs torchrun's rendezvous: launching it with --redirects 2 --tee 1, which avoids the crash`,
      probe,
    };
  }
  if (!probe.torch) return { launcher: 'direct', why: `${probe.reason}; launching ranks directly`, probe };
  return { launcher: 'direct', why: `torchrun unusable here (${probe.reason}); launching ranks directly`, probe };
}

export interface TorchrunArgvOptions {
  python: string;
  script: string;
  scriptArgs: string[];
  nprocPerNode: number;
  nnodes: number;
  nodeRank: number;
  /** HOST:PORT; none: --standalone (single node only) */
  rdzvEndpoint?: string;
  /** torchrun's own per-rank log directory */
  logDir: string;
  /** default 0.2 s (torch 1.13 polls every 5 s otherwise, rounding every run up; docs/supervisor.md#launching-distributed-ranks) */
  monitorInterval?: number;
  /** rendezvous id for multi-node jobs (all nodes must agree) */
  rdzvId?: string;
}

export function torchrunArgv(o: TorchrunArgvOptions): string[] {
  const argv = [o.python, '-m', 'torch.distributed.run', '--nproc_per_node', String(o.nprocPerNode), '--nnodes', String(o.nnodes)];
  if (o.rdzvEndpoint) {
    argv.push('--node_rank', String(o.nodeRank), '--rdzv_backend', 'c10d', '--rdzv_endpoint', o.rdzvEndpoint, '--rdzv_id', o.rdzvId ?? 'gpucolo');
  } else {
    argv.push('--standalone');
  }
  argv.push('--max_restarts', '0', '--monitor_interval', String(o.monitorInterval ?? 0.2), '--redirects', '2', '--tee', '1', '--log_dir', o.logDir, o.script, ...o.scriptArgs);
  return argv;
}

/** Environment torchrun would give local rank `rank` of a single-node job. */
export function directRankEnv(rank: number, world: number, masterPort: number): Record<string, string> {
  const env: Record<string, string> = {
    RANK: String(rank),
    LOCAL_RANK: String(rank),
    WORLD_SIZE: String(world),
    LOCAL_WORLD_SIZE: String(world),
    GROUP_RANK: '0',
    ROLE_RANK: String(rank),
    ROLE_WORLD_SIZE: String(world),
    MASTER_ADDR: '127.0.0.1',
    MASTER_PORT: String(masterPort),
    PYTHONUNBUFFERED: '1',
  };
  // OMP_NUM_THREADS / OPENBLAS_NUM_THREADS: dist_train.py defaults both to its --threads
  return env;
}

/** A free TCP port on this host (bind port 0, read it, close). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ port: 0, host, exclusive: true }, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** null when `port` can be bound here (all interfaces), else the errno code (EADDRINUSE, EACCES). */
export function portBusy(port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'EADDRINUSE'));
    srv.listen({ port, exclusive: true }, () => srv.close(() => resolve(null)));
  });
}

/** HOST:PORT (also [v6]:PORT) -> parts; null when malformed. */
export function parseEndpoint(ep: string): { host: string; port: number } | null {
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(ep.trim());
  if (!m) return null;
  const port = Number(m[3]);
  if (!(port >= 1 && port <= 65535)) return null;
  return { host: m[1] ?? m[2], port };
}

/** Is `host` this machine (loopback, its hostname, one of its interface addresses)? */
export function isLocalHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h === '::1' || h.startsWith('127.') || h === '0.0.0.0' || h === os.hostname().toLowerCase()) return true;
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) if (a.address.toLowerCase() === h) return true;
  return false;
}

/** An interpreter given as a path must exist and be executable; a bare name is looked up in PATH. */
export function resolveProgram(program: string): string | null {
  const executable = (f: string): boolean => {
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return fs.statSync(f).isFile();
    } catch {
      return false;
    }
  };
  if (program.includes('/')) return executable(program) ? path.resolve(program) : null;
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && executable(path.join(dir, program))) return path.join(dir, program);
  return null;
}
