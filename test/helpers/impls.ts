import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadNative, nativeReport, type Impl } from '../../src/native.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const FIXTURES = path.join(ROOT, 'test/fixtures/kfd');
export const SYSFS = path.join(FIXTURES, 'sysfs');
export const DEBUGFS = path.join(FIXTURES, 'debugfs');

/**
 * Parser implementations to test in this run. With GPUCOLO_NATIVE=0 only 'ts'. Otherwise both;
 * if the addon did not load, native is skipped — unless GPUCOLO_REQUIRE_NATIVE=1 (CI), where a
 * missing addon must fail the run instead of hiding behind skips.
 */
export const nativeLoaded = loadNative() !== null;
if (!nativeLoaded && process.env.GPUCOLO_NATIVE !== '0' && process.env.GPUCOLO_REQUIRE_NATIVE === '1') {
  throw new Error(`GPUCOLO_REQUIRE_NATIVE=1 but the native core did not load: ${JSON.stringify(nativeReport().errors)}`);
}
export const IMPLS: Impl[] = nativeLoaded ? ['native', 'ts'] : ['ts'];
