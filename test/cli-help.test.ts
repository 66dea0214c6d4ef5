/**
 * `--help` of every command shows defaults as people write them ("2s", "10%", "100ms"), never
 * the nanosecond count or 0..1 share the option holds; the values themselves are unchanged.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/impls.js';
import { probeCommand } from '../src/cli/probe.js';
import { traceCommand } from '../src/cli/trace.js';

const CLI = path.join(ROOT, 'dist/cli/cli.js');

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Subcommand names listed under "Commands:" in a help text (without commander's own "help"). */
function subcommands(help: string): string[] {
  const at = help.indexOf('\nCommands:\n');
  if (at < 0) return [];
  return help
    .slice(at)
    .split('\n')
    .slice(2)
    .map((l) => /^ {2}(\S+)/.exec(l)?.[1])
    .filter((n): n is string => n !== undefined && n !== 'help');
}

/** Every command path with its help text, walking the tree from `gpucolo --help`. */
function allHelp(): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (cmd: string[]): void => {
    const r = cli([...cmd, '--help']);
    expect(r.code, `${cmd.join(' ')} --help: ${r.stderr}`).toBe(0);
    out.set(cmd.join(' '), r.stdout);
    for (const sub of subcommands(r.stdout)) walk([...cmd, sub]);
  };
  walk([]);
  return out;
}

/** Each "default: X" commander printed, help text unwrapped first (X ends at ")" or ", "). */
function defaults(help: string): string[] {
  const flat = help.replace(/\s+/g, ' ');
  return [...flat.matchAll(/default: ([^)]*?)(?:\)|, (?=[a-z]+:))/g)].map((m) => m[1].trim());
}

describe('--help defaults in human units', () => {
  const helps = allHelp();

  it('walks every command', () => {
    for (const c of ['trace', 'study queue-usage', 'probe latency', 'probe priority', 'run', 'experiment', 'cleanup', 'distributed run', 'distributed compare', 'staged run']) expect([...helps.keys()]).toContain(c);
  });

  it('no default is a raw count of ns/ms, a 0..1 share or a JSON list', () => {
    const bad: string[] = [];
    for (const [cmd, help] of helps) {
      for (const d of defaults(help)) {
        // a big bare number is a duration in ns (or ms); a bare fraction is a share meant as %
        if (/^\d{4,}$/.test(d) || /^0?\.\d+$/.test(d) || d.startsWith('[')) bad.push(`${cmd || 'gpucolo'}: default: ${d}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('durations, the share and the rate read as typed', () => {
    const flat = (c: string): string => helps.get(c)!.replace(/\s+/g, ' ');
    expect(flat('trace')).toMatch(/--interval <duration> sampling interval, 10ms\.\.60s .*?\(default: 100ms\)/);
    expect(flat('trace')).toMatch(/--baseline <duration> .*?\(default: 2s\)/);
    expect(flat('trace')).toMatch(/--tail <duration> .*?\(default: 5s\)/);
    expect(flat('trace')).toMatch(/--grace <duration> .*?\(default: 5s\)/);
    expect(flat('trace')).toMatch(/--sources <list> .*?\(default: sysfs,debugfs\)/);
    expect(flat('study queue-usage')).toMatch(/--interval <duration> .*?\(default: 100ms\)/);
    expect(flat('probe latency')).toMatch(/--duration <duration> measurement time \(default: 2s\)/);
    const p = flat('probe priority');
    expect(p).toMatch(/--lp-kernel <duration> low-priority kernel length \(default: 2ms\)/);
    expect(p).toMatch(/--hp-kernel <duration> high-priority kernel length \(default: 100us\)/);
    expect(p).toMatch(/--hp-rate <per-second> .*?\(default: 200\/s\)/);
    expect(p).toMatch(/--reserve <share> .*?\(default: 10%\)/);
    expect(p).toMatch(/--mechanism <list> .*?\(default: none,stream-priority,throttle\)/);
    expect(p).toMatch(/--duration <duration> time per run \(default: 10s\)/);
    expect(flat('cleanup')).toMatch(/--grace <s> .*?\(default: 10s\)/);
    expect(flat('experiment')).toMatch(/--grace <s> .*?\(default: 10s\)/);
    expect(flat('distributed run')).toMatch(/--grace <s> .*?\(default: 5s\)/);
    expect(flat('distributed compare')).toMatch(/--methods <list> .*?\(default: ddp,allreduce,ps\)/);
  });

  it('the values behind the shown defaults are unchanged (ns, shares, lists)', () => {
    const opt = (cmd: ReturnType<typeof traceCommand>, long: string): unknown => cmd.options.find((o) => o.long === long)!.defaultValue;
    const trace = traceCommand();
    expect([opt(trace, '--interval'), opt(trace, '--baseline'), opt(trace, '--tail'), opt(trace, '--grace')]).toEqual([100e6, 2e9, 5e9, 5e9]);
    expect(opt(trace, '--sources')).toEqual(['sysfs', 'debugfs']);
    const prio = probeCommand().commands.find((c) => c.name() === 'priority')!;
    expect([opt(prio, '--lp-kernel'), opt(prio, '--hp-kernel'), opt(prio, '--duration'), opt(prio, '--reserve'), opt(prio, '--hp-rate')]).toEqual([2e6, 100e3, 10e9, 0.1, 200]);
  });

  it('a seconds option still takes a bare number, and now units too; a bad one is one usage line', () => {
    const env = { XDG_RUNTIME_DIR: os.tmpdir() + '/gpucolo-help-no-registries' };
    expect(cli(['cleanup', '--dry-run', '--grace', '1'], env).code).toBe(0);
    expect(cli(['cleanup', '--dry-run', '--grace', '500ms'], env).code).toBe(0);
    const bad = cli(['cleanup', '--dry-run', '--grace', 'soon'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^gpucolo: option '--grace <s>' argument 'soon' is invalid\. not a duration: "soon" .*\n$/);
  });
});
