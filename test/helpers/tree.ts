import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Writes {relative path: content} under a fresh temp dir; returns the dir. */
export function makeTree(files: Record<string, string>, prefix = 'gpucolo-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  for (const [rel, content] of Object.entries(files)) {
    const full = path.join(dir, rel);
    fs.mkdirSync(path.dirname(full), { recursive: true });
    fs.writeFileSync(full, content);
  }
  return dir;
}

/** Copies a directory tree into a fresh temp dir. */
export function copyTree(src: string, prefix = 'gpucolo-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.cpSync(src, dir, { recursive: true });
  return dir;
}

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
