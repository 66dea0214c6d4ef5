/**
 * The plain C++ programs of native/tests that benches run beside gpucolo (floors), built into
 * build-cc with cmake when missing or older than their source.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** build-cc/<target>, built from native/tests/<source> first when it is missing or stale. */
export function ensureBuildCc(target: string, source: string): string {
  const bin = path.join(ROOT, 'build-cc', target);
  const src = path.join(ROOT, 'native', 'tests', source);
  if (fs.existsSync(bin) && fs.statSync(bin).mtimeMs >= fs.statSync(src).mtimeMs) return bin;
  if (!fs.existsSync(path.join(ROOT, 'build-cc', 'CMakeCache.txt'))) {
    execFileSync('cmake', ['-S', ROOT, '-B', path.join(ROOT, 'build-cc'), '-DCMAKE_BUILD_TYPE=Release'], { stdio: 'ignore' });
  }
  execFileSync('cmake', ['--build', path.join(ROOT, 'build-cc'), '-j2', '--target', target], { stdio: 'ignore' });
  return bin;
}
