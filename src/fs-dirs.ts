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
