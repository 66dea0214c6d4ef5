/**
 * The source text of the engine and compute-unit workers. A Worker cannot load a .ts file under
 * plain Node 20, and the package runs both from src/*.ts (vitest, tsx) and from dist/*.js, so the
 * workers are `new Worker(source, { eval: true })` with source built from the self-contained
 * functions' own text (Function.prototype.toString): the same code runs whichever way the package
 * was loaded, and it is still type-checked as ordinary TypeScript.
 *
 * The rules those functions follow: no imports and no module-level names inside them (anything
 * they need comes as an argument or through workerData); Node's own modules come from
 * process.getBuiltinModule (Node >= 20.16), since an eval worker is a CommonJS script or an ES
 * module depending on the parent's --input-type, so neither `require` nor `import` is certain.
 * tsx/esbuild with keepNames wraps nested functions in `__name(fn, "name")`, a helper defined at
 * the top of the transpiled module, not inside the function: the prelude defines it.
 */
import { createDevice } from './device.js';
import { createSchedule } from './schedule.js';
import { cuMain } from './cu-worker.js';
import { engineMain } from './engine.js';

const PRELUDE = '"use strict";\nvar __name = function (target) { return target; };\n';

let engineSrc: string | undefined;
let cuSrc: string | undefined;

export function engineSource(): string {
  engineSrc ??= `${PRELUDE}(${engineMain.toString()})(${createDevice.toString()}, ${createSchedule.toString()});\n`;
  return engineSrc;
}

export function computeUnitSource(): string {
  cuSrc ??= `${PRELUDE}(${cuMain.toString()})(${createDevice.toString()});\n`;
  return cuSrc;
}
