import { Command } from 'commander';
import { doctor } from '../doctor.js';
import { checkGivenRoots } from './options.js';

export function doctorCommand(): Command {
  return new Command('doctor')
    .description('explain this host: native core, /dev/kfd, KFD sysfs/debugfs, GPU plugins, dispatch backends and engines (exits 0; 2 for a --sysfs-root/--debugfs-root given that does not exist)')
    .option('--json', 'print the report as JSON')
    .option('--sysfs-root <dir>', 'sysfs root', '/sys')
    .option('--debugfs-root <dir>', 'debugfs root', '/sys/kernel/debug')
    .option('--kfd-device <path>', 'KFD device node', '/dev/kfd')
    .action((o: { json?: boolean; sysfsRoot: string; debugfsRoot: string; kfdDevice: string }, cmd: Command) => {
      checkGivenRoots(cmd);
      const r = doctor({ sysfsRoot: o.sysfsRoot, debugfsRoot: o.debugfsRoot, kfdDevice: o.kfdDevice });
      if (o.json) {
        process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        return;
      }
      process.stdout.write(`gpucolo ${r.gpucoloVersion} on ${r.host.hostname} (${r.host.platform}-${r.host.arch}, Linux ${r.host.kernel}, Node ${r.host.node})\n`);
      for (const line of r.summary) process.stdout.write(`${line}\n`);
    });
}
