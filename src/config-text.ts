/**
 * Config files as users write them (scenarios, experiments, models, pipelines): JSON for .json
 * files, YAML (which reads JSON too) for everything else, and zod issues as one path-qualified
 * line. Every loader reports the same way: "file: not valid YAML at line 3, column 7: ...",
 * "file: invalid scenario: tasks.0.arrival.rate: ...".
 *
 * Reading: only a regular file of at most 4 MiB (input-file.ts); a FIFO, a device, a directory,
 * a symlink loop or a larger file is one error naming the file, with the errno name (or ENOTREG /
 * EFBIG) as its code. YAML aliases are expanded at most MAX_YAML_ALIASES times over (a "billion
 * laughs" file is refused, not expanded).
 */
import YAML from 'yaml';
import type { z } from 'zod';
import { GpucoloError } from './errors.js';
import { InputFileError, readInputText } from './input-file.js';

/**
 * The yaml library's budget for alias expansion (its maxAliasCount; 100 is its default too): an
 * alias counts the nodes it expands to, so a few plain aliases pass and a file whose aliases
 * multiply (each level nine times the one before) is refused at the first level that exceeds it.
 */
export const MAX_YAML_ALIASES = 100;

/** "path.to.field: message; other.path: message" */
export function zodIssuesText(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`).join('; ');
}

/**
 * The text of a config file: `what` names it in errors ("cannot read scenario X: ENOTREG (a
 * FIFO, not a regular file)"). Throws InputFileError with the errno name, ENOTREG or EFBIG as code.
 */
export function readConfigText(file: string, what: string): string {
  try {
    return readInputText(file, { kind: 'config' });
  } catch (err) {
    if (!(err instanceof InputFileError)) throw err;
    const reason = err.code === 'EISDIR' ? `a directory, not ${/^[aeiou]/i.test(what) ? 'an' : 'a'} ${what}` : err.reason;
    throw new InputFileError(`cannot read ${what} ${file}: ${err.code} (${reason})`, { code: err.code, path: file, reason });
  }
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
      throw new GpucoloError(`${file}: not valid JSON: ${(err as Error).message.split('\n')[0]}`, { code: opts.code, path: file });
    }
  } else {
    let doc: YAML.Document.Parsed;
    try {
      doc = YAML.parseDocument(text, { prettyErrors: true });
    } catch (err) {
      // the parser's own limits (a stack overflow on absurd nesting): still a bad file
      throw new GpucoloError(`${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`, { code: opts.code, path: file });
    }
    if (doc.errors.length) {
      const e = doc.errors[0];
      const at = e.linePos?.[0] ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
      throw new GpucoloError(`${file}: not valid YAML${at}: ${e.message.split('\n')[0]}`, { code: opts.code, path: file });
    }
    try {
      data = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
    } catch (err) {
      const msg = (err as Error).message;
      if (/alias/i.test(msg)) {
        throw new GpucoloError(`${file}: YAML aliases expand to too much data (more than ${MAX_YAML_ALIASES} alias expansions): refused as a possible "billion laughs" file`, { code: opts.code, path: file });
      }
      throw new GpucoloError(`${file}: not valid YAML: ${msg.split('\n')[0]}`, { code: opts.code, path: file });
    }
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new GpucoloError(`${file}: ${opts.shape}`, { code: opts.code, path: file });
  }
  return data as Record<string, unknown>;
}
