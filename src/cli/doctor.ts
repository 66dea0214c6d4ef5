import { Command } from 'commander';
import { doctor, doctorMeasure } from '../doctor.js';
import { checkGivenRoots } from './options.js';

export function doctorCommand(): Command {
  return new Command('doctor')
    .description(
      'explain this host: native core, /dev/kfd, KFD sysfs/debugfs, GPU plugins, dispatch backends and engines (exits 0; 2 for a --sysfs-root/--debugfs-root given that does not exist). Launches nothing on a GPU unless --measure is given',
    )
    .option('--json', 'print the report as JSON')
    .option('--sysfs-root <dir>', 'sysfs root (another than /sys is a recorded tree)', '/sys')
    .option('--debugfs-root <dir>', 'debugfs root (another than /sys/kernel/debug is a recorded tree)', '/sys/kernel/debug')
    .option('--kfd-device <path>', 'KFD device node', '/dev/kfd')
    .option('--measure', 'also run a short series of empty kernels (~0.3 s) on every device of every available backend: launch round trip, timer resolution, device clock drift')
    .action(async (o: { json?: boolean; sysfsRoot: string; debugfsRoot: string; kfdDevice: string; measure?: boolean }, cmd: Command) => {
      checkGivenRoots(cmd);
      // only roots given on the command line are recorded trees (the defaults are the live ones)
      const given = (name: string): boolean => cmd.getOptionValueSource(name) === 'cli';
      let r = doctor({ sysfsRoot: given('sysfsRoot') ? o.sysfsRoot : undefined, debugfsRoot: given('debugfsRoot') ? o.debugfsRoot : undefined, kfdDevice: o.kfdDevice });
      if (o.measure) r = await doctorMeasure(r);
      if (o.json) {
        process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        return;
      }
      process.stdout.write(`gpucolo ${r.gpucoloVersion} on ${r.host.hostname} (${r.host.platform}-${r.host.arch}, Linux ${r.host.kernel}, Node ${r.host.node})\n`);
      for (const line of r.summary) process.stdout.write(`${line}\n`);
    });
}
