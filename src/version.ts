import fs from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from './native.js';

/** gpucolo's version, from package.json (read once). */
export const VERSION: string = (() => {
  try {
    return (JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0-unknown';
  }
})();
