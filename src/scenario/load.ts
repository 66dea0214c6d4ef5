/**
 * Loading a scenario: a file (YAML or JSON) or the name of a canned scenario shipped in
 * examples/scenarios/. Every problem is one GpucoloError (code EBADSCENARIO, or the file's errno)
 * whose message names the file and, for schema problems, each path: "tasks.1.arrival.rate: Too
 * small: expected number to be >0".
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { z } from 'zod';
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

function issuesText(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`).join('; ');
}

/** Parses and validates scenario text; `file` names it in errors. */
export function parseScenario(text: string, file: string): Scenario {
  let data: unknown;
  if (/\.json$/i.test(file)) {
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw new GpucoloError(`${file}: not valid JSON: ${(err as Error).message}`, { code: 'EBADSCENARIO', path: file });
    }
  } else {
    const doc = YAML.parseDocument(text, { prettyErrors: true });
    if (doc.errors.length) {
      const e = doc.errors[0];
      const at = e.linePos?.[0] ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
      throw new GpucoloError(`${file}: not valid YAML${at}: ${e.message.split('\n')[0]}`, { code: 'EBADSCENARIO', path: file });
    }
    data = doc.toJS();
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new GpucoloError(`${file}: a scenario is a mapping with name and tasks`, { code: 'EBADSCENARIO', path: file });
  }
  const parsed = scenarioSchema.safeParse(data);
  if (!parsed.success) throw new GpucoloError(`${file}: invalid scenario: ${issuesText(parsed.error)}`, { code: 'EBADSCENARIO', path: file });
  return parsed.data;
}

/** A scenario by file path or canned name; returns it with where it came from. */
export function loadScenario(ref: string): { scenario: Scenario; source: string } {
  let file = ref;
  if (!fs.existsSync(ref)) {
    const canned = path.join(CANNED_DIR, `${ref}.yaml`);
    if (/^[A-Za-z0-9_.-]+$/.test(ref) && fs.existsSync(canned)) file = canned;
    else {
      const names = cannedScenarios();
      throw new GpucoloError(`no scenario file or canned scenario named "${ref}"${names.length ? ` (canned: ${names.join(', ')})` : ''}`, { code: 'ENOENT', path: ref });
    }
  }
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = errnoCode(err) ?? 'EIO';
    throw new GpucoloError(`cannot read scenario ${file}: ${code}${code === 'EISDIR' ? ' (a directory, not a scenario file)' : ''}`, { code, path: file });
  }
  return { scenario: parseScenario(text, file), source: file };
}
