/**
 * Which dispatch engine runs a measurement, and why (said on screen, in results.json, by doctor):
 *  - GPU backends (cuda, hip) are plugins of the native core: always the native engine;
 *  - the cpu backend: the native engine when the native core is loaded, else the pure-TS engine
 *    (src/dispatch/ts-engine). An explicit choice wins: runDispatch's `engine` option, else
 *    GPUCOLO_DISPATCH_ENGINE=native|ts (auto or unset: the default). Asking for the native engine
 *    without the native core is an error, not a silent fallback.
 */
import { loadNative, nativeReport, type DispatchEngine, type NativeBackendInfo } from '../native.js';
import { GpucoloError } from '../errors.js';

export const DISPATCH_ENGINE_ENV = 'GPUCOLO_DISPATCH_ENGINE';

export interface EngineChoice {
  engine: DispatchEngine;
  /** one line: "native core loaded", "GPUCOLO_DISPATCH_ENGINE=ts", "native core not loaded: ..." */
  why: string;
}

/** The engine GPUCOLO_DISPATCH_ENGINE asks for; undefined = auto. */
export function envEngine(): DispatchEngine | undefined {
  const v = process.env[DISPATCH_ENGINE_ENV]?.trim();
  if (v === undefined || v === '' || v === 'auto') return undefined;
  if (v === 'native' || v === 'ts') return v;
  throw new GpucoloError(`${DISPATCH_ENGINE_ENV}=${v}: not an engine (native, ts or auto)`, { code: 'EBADENV' });
}

function notLoadedWhy(): string {
  const r = nativeReport();
  return r.disabled ? 'GPUCOLO_NATIVE=0' : r.errors.map((e) => e.message).join('; ') || 'unknown reason';
}

export function chooseEngine(backend: 'cpu' | 'cuda' | 'hip', requested?: DispatchEngine): EngineChoice {
  if (backend !== 'cpu') {
    if (requested === 'ts') throw new GpucoloError(`the pure-TS dispatch engine drives only the cpu backend; ${backend} needs the native core`, { code: 'ENOBACKEND' });
    return { engine: 'native', why: `${backend} is a plugin of the native core` };
  }
  const asked = requested ?? envEngine();
  const source = requested ? `engine '${requested}' as asked` : `${DISPATCH_ENGINE_ENV}=${asked}`;
  if (asked === 'ts') return { engine: 'ts', why: source };
  if (asked === 'native') {
    if (!loadNative()) {
      throw new GpucoloError(`${source}, but the native core is not loaded: ${notLoadedWhy()}`, {
        code: 'ENONATIVE',
        hint: 'build it with npm run build:native; gpucolo doctor says why it did not load',
      });
    }
    return { engine: 'native', why: source };
  }
  return loadNative() ? { engine: 'native', why: 'native core loaded' } : { engine: 'ts', why: `native core not loaded: ${notLoadedWhy()}` };
}

/** How an engine is named to people. */
export function engineLabel(engine: DispatchEngine): string {
  return engine === 'ts' ? 'pure-TS engine' : 'native engine';
}

export interface ProbeChoice {
  backend: 'cpu' | 'cuda' | 'hip';
  /** why this backend */
  why: string;
  engine: DispatchEngine;
  engineWhy: string;
}

/**
 * The backend and engine a scenario's probe form runs on: the one asked for, or auto = cuda, then
 * hip (a plugin with a device), then cpu. `list` is listBackends() (passed in: this module sits
 * below run.ts). Throws what chooseEngine throws (a bad GPUCOLO_DISPATCH_ENGINE, native asked
 * for without the native core).
 */
export function probeChoice(asked: 'auto' | 'cpu' | 'cuda' | 'hip', list: readonly NativeBackendInfo[]): ProbeChoice {
  const withEngine = (backend: ProbeChoice['backend'], why: string): ProbeChoice => {
    const e = chooseEngine(backend);
    return { backend, why, engine: e.engine, engineWhy: e.why };
  };
  if (asked !== 'auto') return withEngine(asked, `backend ${asked} as asked`);
  for (const name of ['cuda', 'hip'] as const) {
    const x = list.find((y) => y.name === name);
    if (x?.available && x.devices.length) return withEngine(name, `auto: ${name} is available (${x.devices[0].name})`);
  }
  const why = list
    .filter((x) => x.name !== 'cpu')
    .map((x) => `${x.name}: ${x.available ? 'no device' : (x.reason ?? 'unavailable')}`)
    .join('; ');
  return withEngine('cpu', `cpu backend (${why})`);
}
