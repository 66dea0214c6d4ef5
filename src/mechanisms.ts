/**
 * The priority mechanisms, in one place: every list of mechanism names (the scenario schema's
 * enum, the dispatch spec's enum, the CLI choices, the tunable knobs, the probe form's engine
 * mechanisms) derives from MECHANISM_REGISTRY. Adding a mechanism starts here; the type checker
 * then points at each switch that has to learn it.
 *
 * Per entry:
 *  - name: as written in scenarios, on the command line and in results.
 *  - description: one line, for help and docs.
 *  - support: the backends each form runs it on, as the code decides today before anything starts
 *    (probe form: src/dispatch/fill.ts mechanismProblem with the device flags each backend
 *    reports — cpu: CU masks emulated, no SM partitions; cuda: SM partitions with green contexts,
 *    no CU masks; hip: CU masks, no SM partitions; gate and xsched are torch-form only:
 *    src/scenario/probe-driver.ts probeMechanismProblem. Torch form: src/scenario/torch-driver.ts
 *    runTorchPhase — sm-partition and throttle skipped, stream-priority skipped on cpu workers,
 *    cu-mask needs ROCm torch). A backend listed can still be refused by its device (a CUDA driver
 *    without green contexts, a reserve that leaves a side empty).
 *  - twoSided: whether it splits the tasks into a high-priority side (the highest priority) and
 *    a low-priority side (all the others together). Not so: none (does nothing), stream-priority
 *    (the probe form gives each priority its own stream-priority level; the torch form has two,
 *    high and low), xsched (every task's own priority goes to XSched).
 *  - knob: the scenario field `gpucolo tune` turns (src/tune/knobs.ts), or null.
 *  - engineId: the dispatch engine's value of the mechanism (native/dispatch/engine.h
 *    `enum class Mechanism`, in declaration order), or null when the engine does not run it. The
 *    engine is handed the name (binding.cc ParseMechanism); the ids are checked against the header
 *    by test/mechanisms.test.ts.
 *  - deviceFlag: the flag of doctor's backend device (src/native.ts NativeBackendDevice) that says
 *    whether the device runs it in the probe form, or null when every device of a supporting
 *    backend does (src/dispatch/fill.ts mechanismProblem refuses it when the flag is false; the
 *    GPU check skips it as not applicable then).
 *  - gpuCheck: the expectation `npm run gpu-check` holds its `probe priority` co-run to on a
 *    filled GPU (src/gpu-check/expectations.ts, README "npm run gpu-check"), or null when the probe
 *    form does not run it on a GPU (the GPU check runs those only inside the torch-form run of
 *    inference-service, when the scenario lists them). contention: the LP load raises HP P99 (the
 *    baseline: the device is filled); wait: the HP work waits about one LP block; bound: HP waits
 *    at most K LP kernels; spatial: HP P99 near standalone and LP keeps its share of the device.
 *
 * This module imports nothing, so any module may import it.
 */

export const BACKENDS = ['cpu', 'cuda', 'hip'] as const;
export type Backend = (typeof BACKENDS)[number];

export const FORMS = ['probe', 'torch'] as const;
export type MechanismForm = (typeof FORMS)[number];

export type KnobName = 'reserve' | 'throttleK';

/** Device flags of doctor's backend devices (NativeBackendDevice in src/native.ts) a mechanism may need. */
export type DeviceFlag = 'supportsCuMask' | 'supportsSmPartition';

/** The expectations of the GPU check's priority probe (see gpuCheck above). */
export const GPU_CHECK_EXPECTATIONS = ['contention', 'wait', 'bound', 'spatial'] as const;
export type GpuCheckExpectation = (typeof GPU_CHECK_EXPECTATIONS)[number];

export interface MechanismInfo {
  readonly name: string;
  readonly description: string;
  readonly support: { readonly probe: readonly Backend[]; readonly torch: readonly Backend[] };
  readonly twoSided: boolean;
  readonly knob: KnobName | null;
  readonly engineId: number | null;
  readonly deviceFlag: DeviceFlag | null;
  readonly gpuCheck: GpuCheckExpectation | null;
}

/** Every mechanism. The engine's ones come first, in the engine's order (their ids are their indices). */
export const MECHANISM_REGISTRY = [
  {
    name: 'none',
    description: 'no mechanism: the tasks share the device as they come (the co-run baseline)',
    support: { probe: ['cpu', 'cuda', 'hip'], torch: ['cpu', 'cuda', 'hip'] },
    twoSided: false,
    knob: null,
    engineId: 0,
    deviceFlag: null,
    gpuCheck: 'contention',
  },
  {
    name: 'stream-priority',
    description: 'stream priorities by task priority: the highest at the runtime\'s greatest stream priority, the lowest at its least',
    support: { probe: ['cpu', 'cuda', 'hip'], torch: ['cuda', 'hip'] },
    twoSided: false,
    knob: null,
    engineId: 1,
    deviceFlag: null,
    gpuCheck: 'wait',
  },
  {
    name: 'cu-mask',
    description: 'a share of the compute units (reserve) kept for the high-priority side by CU masks',
    support: { probe: ['cpu', 'hip'], torch: ['hip'] },
    twoSided: true,
    knob: 'reserve',
    engineId: 2,
    deviceFlag: 'supportsCuMask',
    gpuCheck: 'spatial',
  },
  {
    name: 'sm-partition',
    description: 'a share of the SMs (reserve) kept for the high-priority side by green-context partitions',
    support: { probe: ['cuda'], torch: [] },
    twoSided: true,
    knob: 'reserve',
    engineId: 3,
    deviceFlag: 'supportsSmPartition',
    gpuCheck: 'spatial',
  },
  {
    name: 'throttle',
    description: 'at most throttleK low-priority kernels in flight',
    support: { probe: ['cpu', 'cuda', 'hip'], torch: [] },
    twoSided: true,
    knob: 'throttleK',
    engineId: 4,
    deviceFlag: null,
    gpuCheck: 'bound',
  },
  {
    name: 'gate',
    description: 'low-priority workers pause between layers while a high-priority request is in flight',
    support: { probe: [], torch: ['cpu', 'cuda', 'hip'] },
    twoSided: true,
    knob: null,
    engineId: null,
    deviceFlag: null,
    gpuCheck: null,
  },
  {
    name: 'xsched',
    description: 'XSched preloaded into every worker (LD_PRELOAD), each task at its own priority',
    support: { probe: [], torch: ['cpu', 'cuda', 'hip'] },
    twoSided: false,
    knob: null,
    engineId: null,
    deviceFlag: null,
    gpuCheck: null,
  },
] as const satisfies readonly MechanismInfo[];

type Registry = typeof MECHANISM_REGISTRY;
type Entry = Registry[number];

/** A mechanism's name. */
export type Mechanism = Entry['name'];
/** The mechanisms the dispatch engine runs (native/dispatch/engine.h). */
export type EngineMechanism = Extract<Entry, { engineId: number }>['name'];
/** The mechanisms with a knob. */
export type TunableMechanism = Extract<Entry, { knob: KnobName }>['name'];
/** The mechanisms the GPU check's priority probe runs and judges. */
export type GpuCheckMechanism = Extract<Entry, { gpuCheck: GpuCheckExpectation }>['name'];

type NamesOf<T extends readonly { name: string }[]> = { readonly [K in keyof T]: T[K]['name'] };

/** Every mechanism's name, in registry order (a tuple: z.enum(MECHANISMS)). */
export const MECHANISMS = MECHANISM_REGISTRY.map((m) => m.name) as unknown as NamesOf<Registry>;

/** The engine's mechanisms, in the engine's order. */
export const ENGINE_MECHANISMS = MECHANISM_REGISTRY.filter((m) => m.engineId !== null).map((m) => m.name) as unknown as readonly [EngineMechanism, ...EngineMechanism[]];

/** The mechanisms with a knob, and which. */
export const MECHANISM_KNOBS = Object.fromEntries(MECHANISM_REGISTRY.flatMap((m) => (m.knob ? [[m.name, m.knob]] : []))) as Readonly<Record<TunableMechanism, KnobName>>;

/** The mechanisms the GPU check's priority probe runs (src/gpu-check/expectations.ts), in registry order. */
export const GPU_CHECK_MECHANISMS = MECHANISM_REGISTRY.filter((m) => m.gpuCheck !== null).map((m) => m.name) as unknown as readonly [GpuCheckMechanism, ...GpuCheckMechanism[]];

/** Those mechanisms, and the expectation the GPU check holds each to. */
export const GPU_CHECK_EXPECTATION = Object.fromEntries(MECHANISM_REGISTRY.flatMap((m) => (m.gpuCheck ? [[m.name, m.gpuCheck]] : []))) as Readonly<Record<GpuCheckMechanism, GpuCheckExpectation>>;

const BY_NAME: ReadonlyMap<string, MechanismInfo> = new Map(MECHANISM_REGISTRY.map((m) => [m.name, m]));

/** The registry entry of a name, or undefined when no mechanism has it. */
export function mechanismInfo(name: string): MechanismInfo | undefined {
  return BY_NAME.get(name);
}

export function isMechanism(name: string): name is Mechanism {
  return BY_NAME.has(name);
}

export function isEngineMechanism(name: string): name is EngineMechanism {
  return BY_NAME.get(name)?.engineId != null;
}

/** Whether the form runs the mechanism on the backend (the device may still refuse it). */
export function mechanismSupports(name: string, form: MechanismForm, backend: Backend): boolean {
  return (BY_NAME.get(name)?.support[form] as readonly Backend[] | undefined)?.includes(backend) ?? false;
}

/** The mechanisms a form runs on some backend. */
export function mechanismsOfForm(form: MechanismForm): Mechanism[] {
  return MECHANISM_REGISTRY.filter((m) => m.support[form].length > 0).map((m) => m.name);
}
