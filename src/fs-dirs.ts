/**
 * `mkdir -p` that always ends. Node 20's fs.mkdirSync(dir, { recursive: true }) spins forever at
 * 100% CPU (deaf to signals, since the loop is synchronous) when mkdir(2) answers ENOENT although
 * the parent exists, as it does under /proc and /sys: an output directory given as /proc/x hung
 * `gpucolo staged run`. Here each level is tried once, and a failure is one GpucoloError with
 * the errno as `.code`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { GpucoloError, errnoCode, errnoText } from './errors.js';


function fail(dir: string, code: string): GpucoloError {
  return new GpucoloError(`cannot create directory ${dir}: ${code === 'ENOENT' ? 'no such file or directory (and it cannot be created there)' : errnoText(code)}`, { code, path: dir });
}

/** Creates `dir` and its missing parents (existing directories are fine). */
export function makeDirs(dir: string, mode?: number): void {
  const abs = path.resolve(dir);
  const once = (): string | null => {
    try {
      fs.mkdirSync(abs, mode === undefined ? undefined : { mode });
      return null;
    } catch (err) {
      const code = errnoCode(err) ?? 'EIO';
      if (code === 'EEXIST') {
        let isDir = false;
        try {
          isDir = fs.statSync(abs).isDirectory();
        } catch {
          // a dangling link: not a directory
        }
        return isDir ? null : 'ENOTDIR';
      }
      return code;
    }
  };
  const first = once();
  if (first === null) return;
  const parent = path.dirname(abs);
  if (first !== 'ENOENT' || parent === abs) throw fail(abs, first);
  makeDirs(parent, mode);
  const second = once();
  if (second !== null) throw fail(abs, second);
}

/**
 * The directories makeDirs(dir) is about to create, outermost first ([] when dir exists). A
 * command that then fails before doing any work hands them to removeEmptyDirs, so a typo or a
 * broken model leaves no empty output directory behind.
 */
export function missingDirs(dir: string): string[] {
  const out: string[] = [];
  for (let d = path.resolve(dir); !fs.existsSync(d); d = path.dirname(d)) {
    out.unshift(d);
    if (path.dirname(d) === d) break;
  }
  return out;
}

/** Removes `dirs` innermost first while they are empty; one with anything in it stays (and its parents). */
export function removeEmptyDirs(dirs: readonly string[]): void {
  for (const d of [...dirs].reverse()) {
    try {
      fs.rmdirSync(d);
    } catch {
      return;
    }
  }
}

/**
 * An output directory created on first use (`ensure`), remembering which levels it created so
 * that a run failing before its first result can take them away again (`removeIfEmpty`).
 */
export function lazyDir(dir: string): { ensure(): void; removeIfEmpty(): void } {
  let created: string[] | null = null;
  return {
    ensure() {
      if (created) return;
      const missing = missingDirs(dir);
      makeDirs(dir);
      created = missing;
    },
    removeIfEmpty() {
      removeEmptyDirs(created ?? []);
      created = null;
    },
  };
}
