/** The SCENARIO argument of `gpucolo run` and `gpucolo tune`: a canned name or a scenario file. */
import { errnoCode, type GpucoloError } from '../errors.js';
import { isBadInput } from '../input-file.js';
import { loadScenario } from '../scenario/load.js';
import { CliError } from './errors.js';

/** The loaded scenario; a bad name or file is a usage error (exit 2), anything else exit 1. */
export function scenarioArg(ref: string): ReturnType<typeof loadScenario> {
  try {
    return loadScenario(ref);
  } catch (err) {
    const e = err as GpucoloError;
    throw new CliError(e.message, e.code === 'EBADSCENARIO' || isBadInput(e) ? 2 : 1, false, errnoCode(e));
  }
}
