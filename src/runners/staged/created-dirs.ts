/**
 * Undoing the directories a command created when it then failed before doing any work, so that a
 * typo or a broken model leaves no empty output directory behind. (Generic; it would sit well in
 * src/fs-dirs.ts next to makeDirs.)
 */
import fs from 'node:fs';
import path from 'node:path';

/** The directories makeDirs(dir) is about to create, outermost first ([] when dir exists). */
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
