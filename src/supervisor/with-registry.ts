/**
 * A supervisor with a run registry file, as every runner wants one: the given file, or one in the
 * per-user default directory (which `gpucolo cleanup` scans). With the default location the file
 * is removed by dispose() once nothing recorded in it is alive; an explicit file is kept, and
 * refused (RegistryFormatError, EREGISTRYFORMAT) when it exists and is not a run registry.
 */
import fs from 'node:fs';
import path from 'node:path';
import { checkRegistryTarget, defaultRegistryFile } from './cleanup.js';
import { Supervisor } from './supervisor.js';
import { makeDirs } from '../fs-dirs.js';

export interface RegisteredSupervisor {
  supervisor: Supervisor;
  registryFile: string;
  dispose(): void;
}

export function supervisorWithRegistry(opts: { runId: string; registryFile?: string; graceMs: number }): RegisteredSupervisor {
  const explicit = opts.registryFile !== undefined;
  let registryFile: string;
  if (explicit) {
    registryFile = path.resolve(opts.registryFile!);
    // an existing file that is not a run registry is somebody's data: never overwrite it
    checkRegistryTarget(registryFile);
    makeDirs(path.dirname(registryFile));
  } else {
    registryFile = defaultRegistryFile(opts.runId);
  }
  const supervisor = new Supervisor({ graceMs: opts.graceMs, registryFile, runId: opts.runId });
  return {
    supervisor,
    registryFile,
    dispose(): void {
      if (!explicit && supervisor.live().length === 0) fs.rmSync(registryFile, { force: true });
    },
  };
}
