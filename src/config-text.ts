/**
 * Config files as users write them (scenarios, experiments, models, pipelines): JSON for .json
 * files, YAML (which reads JSON too) for everything else, and zod issues as one path-qualified
 * line. Every loader reports the same way: "file: not valid YAML at line 3, column 7: ...",
 * "file: invalid scenario: tasks.0.arrival.rate: ...".
 */
import YAML from 'yaml';
import type { z } from 'zod';
import { GpucoloError } from './errors.js';

/** "path.to.field: message; other.path: message" */
export function zodIssuesText(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`).join('; ');
}

/**
 * The data of a config file's text: a mapping, or a GpucoloError with `code` whose message names
 * the file (and for YAML the line and column). `shape` says what the mapping should hold, for the
 * error when the top level is something else.
 */
export function parseConfigText(text: string, file: string, opts: { code: string; shape: string }): Record<string, unknown> {
  let data: unknown;
  if (/\.json$/i.test(file)) {
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw new GpucoloError(`${file}: not valid JSON: ${(err as Error).message}`, { code: opts.code, path: file });
    }
  } else {
    const doc = YAML.parseDocument(text, { prettyErrors: true });
    if (doc.errors.length) {
      const e = doc.errors[0];
      const at = e.linePos?.[0] ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
      throw new GpucoloError(`${file}: not valid YAML${at}: ${e.message.split('\n')[0]}`, { code: opts.code, path: file });
    }
    data = doc.toJS();
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new GpucoloError(`${file}: ${opts.shape}`, { code: opts.code, path: file });
  }
  return data as Record<string, unknown>;
}
