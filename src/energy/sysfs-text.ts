/** Small helpers of the sysfs energy readers (amdgpu-sysfs.ts, rapl.ts). */
import fs from 'node:fs';
import { GpucoloError, errnoCode } from '../errors.js';
import { readInputFile } from '../input-file.js';

/** root + '/' + rel (root '/' gives '/rel'). */
export function underRoot(root: string, rel: string): string {
  let r = root;
  while (r.length > 1 && r.endsWith('/')) r = r.slice(0, -1);
  return r === '/' ? `/${rel}` : `${r}/${rel}`;
}

/**
 * A pseudo-file's text: only a regular file of at most 1 MiB (input-file.ts; sysfs files are a
 * page). Throws Node's fs errors, or InputFileError with code ENOTREG / EFBIG.
 */
export function readText(path: string): string {
  return readInputFile(path, { kind: 'sysfs' }).toString('latin1');
}

/** CLOCK_MONOTONIC ns (libuv's hrtime is CLOCK_MONOTONIC on Linux, like the native core). */
export function monotonicNs(): number {
  return Number(process.hrtime.bigint());
}

/** "cannot read <path> (CODE)" plus what to do, when there is something to say. */
export function cannotRead(path: string, err: unknown, hint?: (code: string) => string | undefined): string {
  const code = errnoCode(err) ?? 'EIO';
  const h = hint?.(code);
  return `cannot read ${path} (${code})${h ? `: ${h}` : ''}`;
}

const RE_UNSIGNED = /^\d{1,20}$/;

/**
 * One unsigned decimal integer, one optional trailing newline: the whole grammar of the numeric
 * pseudo-files read here. Bad text throws {code: 'EBADTEXT', path} naming file and line.
 */
export function parseUnsignedFile(text: string, path: string, what: string): number {
  const t = text.endsWith('\n') ? text.slice(0, -1) : text;
  if (RE_UNSIGNED.test(t)) {
    const v = Number(t);
    if (Number.isSafeInteger(v)) return v;
  }
  throw badText(path, what, t);
}

const RE_SIGNED = /^-?\d{1,20}$/;

/** Like parseUnsignedFile, with an optional leading minus (hwmon temperatures may be below zero). */
export function parseSignedFile(text: string, path: string, what: string): number {
  const t = text.endsWith('\n') ? text.slice(0, -1) : text;
  if (RE_SIGNED.test(t)) {
    const v = Number(t);
    if (Number.isSafeInteger(v)) return v === 0 ? 0 : v; // no -0
  }
  throw badText(path, what, t);
}

/** {code: 'EBADTEXT', path}: "<path>:1: expected <what>, got "<text>"" */
export function badText(path: string, what: string, text: string): GpucoloError {
  const shown = text.length > 40 ? `${text.slice(0, 40)}...` : text;
  return new GpucoloError(`${path}:1: expected ${what}, got "${shown.replace(/[^\x20-\x7e]/g, '?')}"`, { code: 'EBADTEXT', path });
}

/** A one-line text file (name, product_name): the line without its newline. */
export function parseLineFile(text: string): string {
  const nl = text.indexOf('\n');
  return (nl >= 0 ? text.slice(0, nl) : text).trim();
}

/** Entry names of a directory, or the error code. */
export function listDir(path: string): { names: string[] } | { code: string; err: unknown } {
  try {
    return { names: fs.readdirSync(path) };
  } catch (err) {
    return { code: errnoCode(err) ?? 'EIO', err };
  }
}

/** Sorts names like "card10" after "card2", "intel-rapl:0:10" after "intel-rapl:0:2". */
export function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}
