import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeDirs } from '../src/fs-dirs.js';
import { GpucoloError } from '../src/errors.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'gpucolo-dirs-'));

describe('makeDirs', () => {
  it('creates missing parents, accepts an existing directory, applies the mode', () => {
    const d = tmp();
    const deep = path.join(d, 'a', 'b', 'c');
    makeDirs(deep);
    expect(fs.statSync(deep).isDirectory()).toBe(true);
    makeDirs(deep);
    makeDirs(path.join(d, 'private'), 0o700);
    expect(fs.statSync(path.join(d, 'private')).mode & 0o777).toBe(0o700);
    fs.rmSync(d, { recursive: true });
  });

  it('a file in the way is ENOTDIR, named in one line', () => {
    const d = tmp();
    fs.writeFileSync(path.join(d, 'f'), 'x');
    for (const target of [path.join(d, 'f'), path.join(d, 'f', 'sub')]) {
      let err: unknown;
      try {
        makeDirs(target);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(GpucoloError);
      expect((err as GpucoloError).message).toMatch(/^cannot create directory .*\/f(\/sub)?: /);
    }
    fs.rmSync(d, { recursive: true });
  });

  // Node 20's mkdirSync(recursive) never returns here (it spins on ENOENT from /proc)
  it.skipIf(!fs.existsSync('/proc/self'))('ends with ENOENT under /proc instead of spinning', () => {
    expect(() => makeDirs('/proc/gpucolo-no-such-dir/x')).toThrow(/cannot create directory \/proc\/gpucolo-no-such-dir: no such file or directory \(and it cannot be created there\)/);
    try {
      makeDirs('/proc/gpucolo-no-such-dir');
    } catch (e) {
      expect((e as GpucoloError).code).toBe('ENOENT');
    }
  });
});
