/**
 * Loading a scenario: a file (YAML or JSON) or the name of a canned scenario shipped in
 * examples/scenarios/. Every problem is one GpucoloError (code EBADSCENARIO, or the file's errno)
 * whose message names the file and, for schema problems, each path: "tasks.1.arrival.rate: Too
 * small: expected number to be >0".
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfigText, readConfigText, zodIssuesText } from '../config-text.js';
import { GpucoloError, errnoCode } from '../errors.js';
import { scenarioSchema, type Scenario } from './schema.js';

/** examples/scenarios of the package (src/scenario and dist/scenario are both two levels down). */
export const CANNED_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples/scenarios');

export function cannedScenarios(): string[] {
  try {
    return fs
      .readdirSync(CANNED_DIR)
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => f.slice(0, -5))
      .sort();
  } catch {
    return [];
  }
}

/** Parses and validates scenario text; `file` names it in errors. */
export function parseScenario(text: string, file: string): Scenario {
  const data = parseConfigText(text, file, { code: 'EBADSCENARIO', shape: 'a scenario is a mapping with name and tasks' });
  const parsed = scenarioSchema.safeParse(data);
  if (!parsed.success) throw new GpucoloError(`${file}: invalid scenario: ${zodIssuesText(parsed.error)}`, { code: 'EBADSCENARIO', path: file });
  return parsed.data;
}

/**
 * A scenario by file path or canned name; returns it with where it came from. Only a path that
 * does not exist falls back to the canned scenarios: a directory, a FIFO, a device, a symlink loop
 * or a file over 4 MiB is an error naming the file (InputFileError, code EISDIR, ENOTREG, ELOOP,
 * EFBIG ...), not "no scenario named".
 */
export function loadScenario(ref: string): { scenario: Scenario; source: string } {
  let file = ref;
  let missing = false;
  try {
    fs.statSync(ref);
  } catch (err) {
    const code = errnoCode(err);
    missing = code === 'ENOENT' || code === 'ENOTDIR';
  }
  if (missing) {
    const canned = path.join(CANNED_DIR, `${ref}.yaml`);
    if (/^[A-Za-z0-9_.-]+$/.test(ref) && fs.existsSync(canned)) file = canned;
    else {
      const names = cannedScenarios();
      throw new GpucoloError(`no scenario file or canned scenario named "${ref}"${names.length ? ` (canned: ${names.join(', ')})` : ''}`, { code: 'ENOENT', path: ref });
    }
  }
  return { scenario: parseScenario(readConfigText(file, 'scenario file'), file), source: file };
}
