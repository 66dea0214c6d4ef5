/** A scratch debugfs root with writable copies of the fixture's kfd/{mqds,hqds,rls}. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEBUGFS } from './impls.js';

export const debugfsFile = (name: string): Buffer => fs.readFileSync(path.join(DEBUGFS, 'kfd', name));

export interface ScratchDebugfs {
  root: string;
  file(name: string): string;
  /** write a temp file + rename: the file changes at once under a reading thread */
  replace(name: string, bytes: string | Buffer): void;
}

/** Made under a fresh temp dir; the dirs list lets the caller remove them after each test. */
export function scratchDebugfs(dirs: string[], prefix = 'gpucolo-same-'): ScratchDebugfs {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(root);
  fs.mkdirSync(path.join(root, 'kfd'));
  const file = (name: string): string => path.join(root, 'kfd', name);
  const replace = (name: string, bytes: string | Buffer): void => {
    fs.writeFileSync(`${file(name)}.tmp`, bytes);
    fs.renameSync(`${file(name)}.tmp`, file(name));
  };
  for (const n of ['mqds', 'hqds', 'rls']) replace(n, debugfsFile(n));
  return { root, file, replace };
}
