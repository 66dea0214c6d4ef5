/**
 * `gpucolo trace --serve`: only GET and HEAD (405 with Allow otherwise), query strings ignored,
 * IPv6 addresses printed in brackets, a port that cannot be had is a one-line usage error (exit 2).
 */
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ListenError, TraceExporter, httpUrl, parseListen, requestPath } from '../src/trace/exporter.js';
import { ROOT } from './helpers/impls.js';
import { KfdTree } from './helpers/kfd-tree.js';

const CLI = path.join(ROOT, 'dist/cli/cli.js');
const exporters: TraceExporter[] = [];
const trees: KfdTree[] = [];
afterEach(async () => {
  while (exporters.length) await exporters.pop()!.close();
  while (trees.length) trees.pop()!.dispose();
});

async function serve(address = '127.0.0.1:0'): Promise<{ host: string; port: number }> {
  const e = new TraceExporter();
  exporters.push(e);
  return e.listen(address);
}

/** One request; the body as text (empty for HEAD). */
function request(host: string, port: number, method: string, target: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path: target, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const ipv6 = await new Promise<boolean>((resolve) => {
  const s = net.createServer();
  s.once('error', () => resolve(false));
  s.listen(0, '::1', () => s.close(() => resolve(true)));
});

describe('trace --serve: HTTP', () => {
  it('GET and HEAD /metrics; other methods are 405 with an Allow header', async () => {
    const { host, port } = await serve();
    const get = await request(host, port, 'GET', '/metrics');
    expect(get.status).toBe(200);
    expect(get.body).toMatch(/^gpucolo_kfd_processes /m);
    const head = await request(host, port, 'HEAD', '/metrics');
    expect(head.status).toBe(200);
    expect(head.headers['content-type']).toBe(get.headers['content-type']);
    expect(head.body).toBe('');
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const r = await request(host, port, method, '/metrics');
      expect([method, r.status]).toEqual([method, 405]);
      expect(r.headers.allow).toBe('GET, HEAD');
    }
    // 405 comes before the path: a POST anywhere is refused the same way
    expect((await request(host, port, 'POST', '/other')).status).toBe(405);
  });

  it('a query string does not change the path; other paths are 404', async () => {
    const { host, port } = await serve();
    expect((await request(host, port, 'GET', '/metrics?name[]=gpucolo_kfd_queues')).status).toBe(200);
    expect((await request(host, port, 'GET', '/metrics?')).status).toBe(200);
    expect((await request(host, port, 'HEAD', '/metrics?x=1')).status).toBe(200);
    expect((await request(host, port, 'GET', '/metricsx')).status).toBe(404);
    expect((await request(host, port, 'GET', '/?/metrics')).status).toBe(404);
    expect(requestPath('/metrics?a=1#b')).toBe('/metrics');
    expect(requestPath(undefined)).toBe('');
  });

  it('IPv6 addresses are printed in brackets', async () => {
    expect(httpUrl('::1', 9464, '/metrics')).toBe('http://[::1]:9464/metrics');
    expect(httpUrl('127.0.0.1', 9464, '/metrics')).toBe('http://127.0.0.1:9464/metrics');
    expect(parseListen('[::1]:9464')).toEqual({ host: '::1', port: 9464 });
    if (!ipv6) return;
    const { host, port } = await serve('[::1]:0');
    expect(host).toBe('::1');
    expect((await request('::1', port, 'GET', '/metrics')).status).toBe(200);
  });

  it('a busy port is a ListenError naming the address, with the errno as code', async () => {
    const { port } = await serve();
    const e = new TraceExporter();
    exporters.push(e);
    const err = await e.listen(`127.0.0.1:${port}`).then(
      () => null,
      (x: unknown) => x,
    );
    expect(err).toBeInstanceOf(ListenError);
    expect(err).toMatchObject({ code: 'EADDRINUSE' });
    expect((err as Error).message).toBe(`--serve 127.0.0.1:${port}: port ${port} is already in use on 127.0.0.1 (another gpucolo trace --serve, or an exporter?): pick another port`);
  });
});

describe('trace --serve: CLI', () => {
  const run = (args: string[]) => spawnSync(process.execPath, [CLI, 'trace', ...args], { encoding: 'utf8', timeout: 30_000 });

  it('a busy port: exit 2, one line, nothing recorded', async () => {
    const t = new KfdTree();
    trees.push(t);
    const { port } = await serve();
    const r = run(['--root', t.root, '--duration', '1s', '--out', '-', '--serve', `127.0.0.1:${port}`]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^gpucolo: --serve 127\.0\.0\.1:\d+: port \d+ is already in use/);
    expect(r.stdout).toBe('');
  });

  it('an IPv6 address is printed with brackets', () => {
    if (!ipv6) return;
    const t = new KfdTree();
    trees.push(t);
    const r = run(['--root', t.root, '--interval', '20ms', '--duration', '100ms', '--out', '-', '--serve', '[::1]:0']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/metrics on http:\/\/\[::1\]:\d+\/metrics/);
    expect(r.stderr).toMatch(/metrics were served on http:\/\/\[::1\]:\d+\/metrics/);
  });
});
