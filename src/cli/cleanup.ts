/**
 * gpucolo cleanup: stops the process groups a killed gpucolo left running, from its run registry
 * (default: every registry in the per-user directory; --registry FILE: that one). A group is
 * stopped only while it is still the one recorded (leader start time checked against /proc), and
 * never while the gpucolo that owns it still runs (--force overrides that).
 *
 * A registry file with nothing left running is removed (the default directory's, and --registry's).
 *
 * Exit codes: 0 done (or nothing to do); 1 something could not be stopped or a registry could not
 * be read; 2 usage (an explicit registry file that does not exist, is not a registry, or names a
 * pid, pgid or group <= 1: such a file is refused as a whole, nothing in it is signaled, and the
 * reason is the one line printed).
 */
import fs from 'node:fs';
import { Command } from 'commander';
import { defaultRegistryDir, listRegistryFiles, reapRegistries, type ReapReport } from '../supervisor/index.js';
import { CliError } from './errors.js';
import { secondsOption } from './options.js';

/** Lines for a person: one per child that was alive (or skipped), then a total. */
export function cleanupText(r: ReapReport, where: string, dryRun = false): string {
  const out: string[] = [];
  for (const a of r.actions) {
    if (a.outcome === 'gone') continue;
    out.push(`${a.outcome}: ${a.name} (pid ${a.pid ?? '-'}, pgid ${a.pgid ?? '-'}, run ${a.runId}): ${a.detail}`);
  }
  for (const e of r.errors) out.push(`error: ${e}`);
  const count = (o: string): number => r.actions.filter((a) => a.outcome === o).length;
  const stopped = count('stopped') + count('killed');
  if (dryRun) out.push(`${count('alive')} process group(s) would be stopped (${r.files.length} registry file(s) in ${where})`);
  else if (stopped === 0 && count('failed') === 0 && count('skipped') === 0) out.push(`nothing to clean up (${r.files.length} registry file(s) in ${where})`);
  else out.push(`stopped ${stopped} child(ren)'s process groups (${count('killed')} needed SIGKILL), ${count('skipped')} skipped, ${count('failed')} failed`);
  if (r.removed.length) out.push(`removed ${r.removed.length} finished registry file(s)`);
  return `${out.join('\n')}\n`;
}

export function cleanupCommand(): Command {
  return new Command('cleanup')
    .description('stop process groups left running by a gpucolo that was killed (from its run registry)')
    .option('--registry <file>', 'one run registry file (default: every registry in the per-user directory)')
    .addOption(secondsOption('--grace <s>', 'seconds between SIGTERM and SIGKILL', 10))
    .option('--force', "also stop groups of a gpucolo that is still running")
    .option('--dry-run', 'only report what is still running')
    .option('--json', 'print the report as JSON')
    .action(async (o: { registry?: string; grace: number; force?: boolean; dryRun?: boolean; json?: boolean }) => {
      let files: string[];
      let where: string;
      if (o.registry) {
        if (!fs.existsSync(o.registry)) throw new CliError(`registry file not found: ${o.registry}`, 2);
        files = [o.registry];
        where = o.registry;
      } else {
        where = defaultRegistryDir();
        files = listRegistryFiles(where);
      }
      const report = await reapRegistries(files, { graceMs: o.grace * 1000, force: o.force, dryRun: o.dryRun, removeDone: true });
      // a --registry that is not a usable registry: its reason, one line, and nothing else
      if (o.registry && report.files.length === 0) throw new CliError(report.errors[0] ?? `${o.registry}: not read`, 2);
      process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : cleanupText(report, where, o.dryRun));
      if (report.errors.length || report.actions.some((a) => a.outcome === 'failed')) throw new CliError('some process groups could not be stopped or registries not read (see above)', 1, true);
    });
}
