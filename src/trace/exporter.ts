/**
 * `gpucolo trace --serve HOST:PORT`: the current queue picture as Prometheus metrics (prom-client),
 * for long watches. Gauges reflect the latest sample; counters count events and samples.
 */
import http from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { TraceEvent, TraceSample } from './schema.js';
import { GpucoloError, outOfRange } from '../errors.js';

export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:(\[[0-9a-fA-F:]+\]|[^:]+):)?(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw outOfRange(`not a listen address: "${text}" (use 127.0.0.1:9464 or 9464)`, 'ERR_INVALID_ARG_VALUE');
  return { host: (m[1] ?? '127.0.0.1').replace(/^\[|\]$/g, ''), port };
}

/** The path of a request target ("/metrics?x=1" -> "/metrics"); '' when there is none. */
export function requestPath(url: string | undefined): string {
  if (!url) return '';
  const q = url.search(/[?#]/);
  return q < 0 ? url : url.slice(0, q);
}

/** http://host:port with an IPv6 address in brackets (http://[::1]:9464). */
export function httpUrl(host: string, port: number, pathName = ''): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}${pathName}`;
}

/**
 * --serve could not listen: a busy port, a privileged one, or an address this host does not have.
 * A usage error (the CLI's exit 2, like a busy port in `distributed`), one line; `code` is the errno.
 */
export class ListenError extends GpucoloError {
  constructor(message: string, code: string) {
    super(message, { code, syscall: 'listen' });
    this.name = 'ListenError';
  }
}

function listenError(address: string, host: string, port: number, err: unknown): Error {
  const code = (err as NodeJS.ErrnoException)?.code ?? 'EIO';
  const where = httpUrl(host, port);
  const why: Record<string, string> = {
    EADDRINUSE: `port ${port} is already in use on ${host} (another gpucolo trace --serve, or an exporter?): pick another port`,
    EACCES: `no permission to listen on port ${port} (ports below 1024 need root): pick another port`,
    EADDRNOTAVAIL: `${host} is not an address of this host: use 127.0.0.1, 0.0.0.0 or one of its addresses`,
    ENOTFOUND: `host name ${host} does not resolve: use an IP address`,
    EAI_AGAIN: `host name ${host} does not resolve: use an IP address`,
  };
  const text = why[code];
  if (text) return new ListenError(`--serve ${address}: ${text}`, code);
  // not a ListenError: an unforeseen failure stays exit 1 in the CLI, not a usage error
  return new GpucoloError(`--serve ${address}: cannot listen on ${where}: ${(err as Error)?.message ?? String(err)}`, { code, syscall: 'listen' });
}

export class TraceExporter {
  readonly registry = new Registry();
  private server: http.Server | null = null;
  private readonly processes = new Gauge({ name: 'gpucolo_kfd_processes', help: 'traced KFD processes in the latest sample', registers: [this.registry] });
  private readonly queues = new Gauge({
    name: 'gpucolo_kfd_queues',
    help: 'KFD queues in the latest sample',
    labelNames: ['pid', 'gpu', 'type'] as const,
    registers: [this.registry],
  });
  private readonly activeHqds = new Gauge({
    name: 'gpucolo_kfd_active_hqds',
    help: 'active compute HQD slots held by traced queues (latest debugfs sample)',
    labelNames: ['pid', 'gpu', 'inst'] as const,
    registers: [this.registry],
  });
  private readonly samples = new Counter({ name: 'gpucolo_trace_samples_total', help: 'samples taken', registers: [this.registry] });
  private readonly missed = new Counter({ name: 'gpucolo_trace_missed_intervals_total', help: 'sampling deadlines skipped', registers: [this.registry] });
  private readonly events = new Counter({ name: 'gpucolo_trace_events_total', help: 'derived lifecycle events', labelNames: ['event'] as const, registers: [this.registry] });
  private readonly jitter = new Histogram({
    name: 'gpucolo_trace_sample_lateness_seconds',
    help: 'actual minus intended sample time',
    buckets: [1e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 1],
    registers: [this.registry],
  });

  async listen(address: string): Promise<{ host: string; port: number }> {
    const { host, port } = parseListen(address);
    this.server = http.createServer((req, res) => {
      // only reads: anything else is 405 with the methods there are (HEAD: the headers of GET)
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end(`gpucolo: ${req.method} not allowed: GET or HEAD /metrics\n`);
        return;
      }
      // a query string (?name[]=..., cache busters) does not change the path
      if (requestPath(req.url) !== '/metrics') {
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('gpucolo: metrics are at /metrics\n');
        return;
      }
      this.registry
        .metrics()
        .then((body) => res.writeHead(200, { 'Content-Type': this.registry.contentType }).end(body))
        .catch((err: Error) => res.writeHead(500).end(`${err.message}\n`));
    });
    const server = this.server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port, host, exclusive: true }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      this.server = null;
      server.close();
      throw listenError(address, host, port, err);
    }
    const a = server.address();
    return { host, port: typeof a === 'object' && a ? a.port : port };
  }

  update(s: TraceSample, events: TraceEvent[]): void {
    this.samples.inc();
    if (s.missed) this.missed.inc(s.missed);
    this.jitter.observe(Math.max(0, s.t_ns - s.intended_ns) / 1e9);
    for (const e of events) this.events.inc({ event: e.event });
    this.processes.set(s.processes.length);
    this.queues.reset();
    for (const p of s.processes) {
      const counts = new Map<string, number>();
      for (const q of p.queues) {
        const k = `${q.gpuId ?? '?'}|${q.type}`;
        counts.set(k, (counts.get(k) ?? 0) + 1);
      }
      for (const [k, n] of counts) {
        const [gpu, type] = k.split('|');
        this.queues.set({ pid: String(p.pid), gpu, type }, n);
      }
    }
    if (s.debugfs) {
      this.activeHqds.reset();
      for (const p of s.processes) {
        const per = new Map<string, number>();
        for (const q of p.queues) {
          for (const h of q.hqds ?? []) {
            if (h[3] !== 1) continue;
            const k = `${q.gpuId ?? '?'}|${h[0]}`;
            per.set(k, (per.get(k) ?? 0) + 1);
          }
        }
        for (const [k, n] of per) {
          const [gpu, inst] = k.split('|');
          this.activeHqds.set({ pid: String(p.pid), gpu, inst }, n);
        }
      }
    }
  }

  async close(): Promise<void> {
    if (!this.server) return;
    const s = this.server;
    this.server = null;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}
