/**
 * NVIDIA MPS (Multi-Process Service) detection. Why it matters: a CUDA stream priority orders work
 * only among the streams of one context. Separate processes have separate contexts, which the GPU
 * time-slices, so the priority of a stream in one process is never compared with a stream in
 * another: `stream-priority` across worker processes is `none` in disguise. Under MPS the clients'
 * work is funnelled through one MPS server per GPU and runs on the GPU at the same time, so the
 * processes' priority streams meet in one scheduler. A CUDA client uses MPS when the control
 * daemon (nvidia-cuda-mps-control -d) listens on its pipe directory: $CUDA_MPS_PIPE_DIRECTORY, else
 * /tmp/nvidia-mps, holding the `control` FIFO.
 *
 * AMD has no such limit: every HIP stream is a KFD user-mode queue with its own priority, and the
 * GPU's hardware scheduler orders the queues of all processes.
 */
import fs from 'node:fs';
import path from 'node:path';

export const MPS_DEFAULT_PIPE_DIR = '/tmp/nvidia-mps';

export interface MpsStatus {
  /** where CUDA clients look for the control daemon: $CUDA_MPS_PIPE_DIRECTORY or /tmp/nvidia-mps */
  pipeDir: string;
  /** the control FIFO (<pipeDir>/control) exists: CUDA clients started now connect to MPS */
  running: boolean;
  /** nvidia-cuda-mps-control found on PATH (installed), else null */
  control: string | null;
  /** MPS daemon/server processes visible in /proc (pid, name); null when /proc could not be read */
  processes: { pid: number; name: string }[] | null;
  /** one line for people */
  line: string;
}

export interface MpsDetectOptions {
  env?: NodeJS.ProcessEnv;
  /** default /proc */
  procRoot?: string;
}

function onPath(name: string, env: NodeJS.ProcessEnv): string | null {
  for (const dir of (env.PATH ?? '').split(':')) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

function mpsProcesses(procRoot: string): { pid: number; name: string }[] | null {
  let entries: string[];
  try {
    entries = fs.readdirSync(procRoot);
  } catch {
    return null;
  }
  const out: { pid: number; name: string }[] = [];
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const name = fs.readFileSync(path.join(procRoot, e, 'comm'), 'utf8').trim();
      // comm is cut to 15 characters: nvidia-cuda-mps-control -> "nvidia-cuda-mps"
      if (name.startsWith('nvidia-cuda-mps')) out.push({ pid: Number(e), name });
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

function isFifo(p: string): boolean {
  try {
    return fs.statSync(p).isFIFO();
  } catch {
    return false;
  }
}

export function detectMps(o: MpsDetectOptions = {}): MpsStatus {
  const env = o.env ?? process.env;
  const pipeDir = env.CUDA_MPS_PIPE_DIRECTORY || MPS_DEFAULT_PIPE_DIR;
  const running = isFifo(path.join(pipeDir, 'control'));
  const control = onPath('nvidia-cuda-mps-control', env);
  const processes = mpsProcesses(o.procRoot ?? '/proc');
  const seen = processes && processes.length ? ` (${processes.map((p) => `${p.name} ${p.pid}`).join(', ')})` : '';
  const line = running
    ? `MPS: running: control pipe ${pipeDir}/control${seen || (processes ? ' (no MPS process visible here: the daemon may run outside this container)' : '')}`
    : `MPS: not running (no control pipe in ${pipeDir}${env.CUDA_MPS_PIPE_DIRECTORY ? ', from CUDA_MPS_PIPE_DIRECTORY' : ''}${control ? `; ${control} is installed: nvidia-cuda-mps-control -d starts it` : ''})${seen ? `; MPS processes seen${seen}, their pipe directory differs` : ''}`;
  return { pipeDir, running, control, processes, line };
}
