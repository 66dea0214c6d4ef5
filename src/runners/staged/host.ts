/**
 * Client for one model host process (workloads/model_host.py, or a stage's own `command` that
 * speaks the same JSON Lines protocol), started through the supervisor in its own process group.
 * One request at a time; each call has a timeout. Failures are one-line GpucoloErrors carrying the
 * tail of the host's stderr.
 */
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { GpucoloError } from '../../errors.js';
import type { Supervisor, SupervisedChild } from '../../supervisor/index.js';

export type HostMessage = { type: string; [k: string]: unknown };

/** A stdout line as a protocol message (a JSON object with a string `type`), or null. */
function messageOf(line: string): HostMessage | null {
  try {
    const msg = JSON.parse(line) as HostMessage;
    return msg && typeof msg === 'object' && !Array.isArray(msg) && typeof msg.type === 'string' ? msg : null;
  } catch {
    return null;
  }
}

const bytesOrNull = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : null);

/** workloads/model_host.py next to src/ or dist/ (both are two levels below runners/staged). */
export function defaultHostScript(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../workloads/model_host.py');
}

export const defaultStagedPython = (env: NodeJS.ProcessEnv = process.env): string => env.GPUCOLO_PYTHON || 'python3';

export interface ModelHostOptions {
  supervisor: Supervisor;
  /** stage name (names the child and appears in errors) */
  name: string;
  argv: string[];
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** per-call timeout, ms (default 120000) */
  timeoutMs?: number;
  /** start-up (hello) timeout, ms (default 30000) */
  startTimeoutMs?: number;
}

export class ModelHost {
  readonly name: string;
  private child: SupervisedChild;
  private queue: HostMessage[] = [];
  private waiter: ((m: HostMessage | null) => void) | null = null;
  private closed = false;
  private stderrTail: string[] = [];
  private readonly timeoutMs: number;
  private readonly startTimeoutMs: number;
  private busy = false;
  private readonly argv0: string;
  pid: number | undefined;

  private constructor(opts: ModelHostOptions) {
    this.name = opts.name;
    this.argv0 = opts.argv[0];
    this.timeoutMs = opts.timeoutMs ?? 120_000;
    this.startTimeoutMs = opts.startTimeoutMs ?? 30_000;
    this.child = opts.supervisor.start({
      argv: opts.argv,
      cwd: opts.cwd,
      env: { PYTHONUNBUFFERED: '1', ...opts.env },
      name: `staged:${opts.name}`,
      stdin: 'pipe',
      stdout: 'pipe',
      stderr: 'pipe',
    });
    this.pid = this.child.pid;
    if (this.child.stdout) {
      const rl = readline.createInterface({ input: this.child.stdout });
      rl.on('line', (line) => {
        if (!line.trim()) return;
        let msg = messageOf(line);
        if (!msg) {
          // the protocol is out of step: say so at once rather than waiting for the call timeout
          const shown = line.length > 80 ? `${line.slice(0, 80)}...` : line;
          const why = /\b(NaN|-?Infinity)\b/.test(line) ? ' (NaN and Infinity are not JSON)' : '';
          msg = { type: '__bad', message: `wrote a line on stdout that is not a protocol message${why}: ${JSON.stringify(shown)}` };
        }
        if (this.waiter) {
          const w = this.waiter;
          this.waiter = null;
          w(msg);
        } else this.queue.push(msg);
      });
      rl.on('close', () => this.onClose());
    } else this.onClose();
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (d: string) => {
      for (const l of d.split('\n')) if (l.trim()) this.stderrTail.push(l);
      if (this.stderrTail.length > 40) this.stderrTail.splice(0, this.stderrTail.length - 40);
    });
    this.child.stdin?.on('error', () => undefined); // EPIPE when the host died: reported by next()
  }

  private onClose(): void {
    this.closed = true;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w(null);
    }
  }

  /** Starts the host and waits for its hello. */
  static async start(opts: ModelHostOptions): Promise<ModelHost> {
    const h = new ModelHost(opts);
    try {
      const hello = await h.nextMessage(h.startTimeoutMs, 'start');
      if (hello.type === 'error') throw h.fail(String(hello.phase ?? 'start'), String(hello.message ?? 'error'), 'EMODEL');
      if (hello.type !== 'hello') throw h.fail('start', `expected hello, got ${hello.type}`);
    } catch (err) {
      await h.kill(); // a host that never said hello is stopped here: nobody else holds it
      throw err;
    }
    return h;
  }

  /** Last stderr lines (for messages). */
  tail(n = 3): string {
    return this.stderrTail
      .slice(-n)
      .map((l) => l.trim())
      .join(' | ');
  }

  private fail(phase: string, message: string, code = 'EHOST'): GpucoloError {
    const t = this.tail();
    return new GpucoloError(`stage "${this.name}" ${phase}: ${message}${t ? ` [stderr: ${t}]` : ''}`.replace(/\n/g, ' '), { code });
  }

  private async next(timeoutMs: number, phase: string): Promise<HostMessage> {
    if (this.queue.length) return this.queue.shift()!;
    if (this.closed) {
      const ex = await Promise.race([this.child.exited, new Promise<null>((r) => setTimeout(() => r(null), 2000))]);
      if (ex?.error) {
        const why = ex.errorCode === 'ENOENT' ? 'no such program' : ex.errorCode === 'EACCES' ? 'permission denied' : ex.error;
        throw this.fail(phase, `cannot start ${this.argv0}: ${why}`, ex.errorCode ?? 'ESPAWN');
      }
      const how = ex ? (ex.signal ? `signal ${ex.signal}` : `exit code ${ex.code}`) : 'closed its output';
      throw this.fail(phase, `model host ended (${how})`);
    }
    const msg = await new Promise<HostMessage | null>((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        resolve({ type: '__timeout' });
      }, timeoutMs);
      this.waiter = (m) => {
        clearTimeout(timer);
        resolve(m);
      };
    });
    if (msg === null) return this.next(timeoutMs, phase);
    if (msg.type === '__timeout') throw this.fail(phase, `no answer within ${Math.round(timeoutMs / 1000)} s`, 'ETIMEDOUT');
    return msg;
  }

  /** The next message; a line that was not a protocol message is an error (EPROTO). */
  private async nextMessage(timeoutMs: number, phase: string): Promise<HostMessage> {
    const msg = await this.next(timeoutMs, phase);
    if (msg.type === '__bad') throw this.fail(phase, String(msg.message), 'EPROTO');
    return msg;
  }

  /** Sends one command and returns the reply; an error record becomes a thrown GpucoloError unless `allowError`. */
  async call(cmd: HostMessage, expect: string, opts: { timeoutMs?: number; allowError?: boolean } = {}): Promise<HostMessage> {
    // a bug in the caller (one request at a time), not a host failure
    if (this.busy) throw new GpucoloError(`ModelHost ${this.name}: concurrent call`, { code: 'EINTERNAL' });
    this.busy = true;
    try {
      if (this.closed) return await this.nextMessage(0, cmd.type);
      this.child.stdin?.write(`${JSON.stringify(cmd)}\n`);
      const reply = await this.nextMessage(opts.timeoutMs ?? this.timeoutMs, cmd.type);
      if (reply.type === 'error') {
        if (opts.allowError) return reply;
        throw this.fail(String(reply.phase ?? cmd.type), String(reply.message ?? 'error'), 'EMODEL');
      }
      if (reply.type !== expect) throw this.fail(cmd.type, `expected "${expect}" reply, got "${reply.type}"`);
      return reply;
    } finally {
      this.busy = false;
    }
  }

  async init(classPath: string, params: Record<string, unknown>, paths: string[]): Promise<void> {
    await this.call({ type: 'init', class_path: classPath, params, paths }, 'ready');
  }
  /** memoryBytes: what the model reports after loading; null when it cannot tell (no memory(), no CUDA). */
  async load(): Promise<{ ms: number; memoryBytes: number | null }> {
    const r = await this.call({ type: 'load_to_gpu' }, 'loaded');
    return { ms: Number(r.ms ?? 0), memoryBytes: bytesOrNull(r.memory) };
  }
  async unload(): Promise<{ ms: number }> {
    const r = await this.call({ type: 'unload_from_gpu' }, 'unloaded');
    return { ms: Number(r.ms ?? 0) };
  }
  /**
   * Makes "process" call the model's own method (`call`) and sets where image inputs are read;
   * a method the model lacks (or arguments it does not take) is a GpucoloError with code EBADCALL.
   */
  async configure(cfg: { call?: unknown; imageInputs?: string; outputDir?: string }): Promise<void> {
    const r = await this.call({ type: 'configure', call: cfg.call ?? null, image_inputs: cfg.imageInputs ?? 'image', output_dir: cfg.outputDir ?? null }, 'configured', { allowError: true });
    if (r.type === 'error') {
      const msg = String(r.message ?? 'error').split('\n')[0];
      throw new GpucoloError(r.code === 'EBADCALL' ? msg : `stage "${this.name}" configure: ${msg}`, { code: r.code === 'EBADCALL' ? 'EBADCALL' : 'EMODEL' });
    }
  }
  /** `images`: where an image output is written (dir relative to outputDir, file name stem); hosts that do not know them ignore the fields. */
  async process(
    id: string,
    item: unknown,
    inputs: Record<string, unknown>,
    images?: { outputDir: string; dir: string; name: string },
  ): Promise<{ ok: true; outputs: Record<string, unknown>; ms: number } | { ok: false; message: string }> {
    const r = await this.call({ type: 'process', id, item, inputs, ...(images ? { output_dir: images.outputDir, images: { dir: images.dir, name: images.name } } : {}) }, 'result', { allowError: true });
    // an answer for another item means the host and gpucolo are out of step: stop, do not journal it
    if (r.id !== undefined && r.id !== null && r.id !== id) throw this.fail('process', `answered for item ${JSON.stringify(r.id)} while processing ${JSON.stringify(id)}`, 'EPROTO');
    if (r.type === 'error') return { ok: false, message: String(r.message ?? 'error').split('\n')[0] };
    const outputs = r.outputs ?? {};
    if (typeof outputs !== 'object' || Array.isArray(outputs)) return { ok: false, message: `the model host answered outputs that are not a JSON object (${Array.isArray(outputs) ? 'an array' : typeof outputs})` };
    return { ok: true, outputs: outputs as Record<string, unknown>, ms: Number(r.ms ?? 0) };
  }
  async memory(): Promise<number | null> {
    const r = await this.call({ type: 'memory' }, 'memory');
    return bytesOrNull(r.bytes);
  }
  /** Asks the host to exit, then stops its group (grace) if it lingers. */
  async stop(graceMs = 2000): Promise<void> {
    if (!this.closed) {
      try {
        this.child.stdin?.write(`${JSON.stringify({ type: 'stop' })}\n`);
        this.child.stdin?.end();
      } catch {
        // already gone
      }
    }
    const done = await Promise.race([this.child.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), graceMs))]);
    if (!done || this.child.groupAlive()) await this.child.stop({ graceMs: 1000 });
  }
  /** Stops the group now (interrupt). */
  async kill(): Promise<void> {
    await this.child.stop({ graceMs: 500 });
  }
}
