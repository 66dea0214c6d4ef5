/**
 * Ordering a staged pipeline so that models are swapped as rarely as possible.
 *
 * When every needed model fits the GPU budget together, each is loaded once and categories are
 * processed with all models resident ('all-resident'). Otherwise categories are processed one
 * after the other, stage by stage ('stage-by-stage'): inside a category each needed model is
 * loaded once; across a category boundary the models already resident are kept and the next
 * category's stages are ordered (topologically, respecting inputs) to start with them when the
 * dependencies allow. When a model must be loaded and does not fit beside the resident ones, the
 * resident model needed farthest in the future is unloaded first (Belady), so several models stay
 * resident when they fit together.
 *
 * naiveLoads is what the per-item order (each item through all of its stages, LRU residency with
 * the same budget) would cost; it is computed per category by cycle detection, not by
 * simulating every item.
 */
import { invalidArg } from '../../errors.js';

export interface PlanStageInput {
  name: string;
  memoryMB: number;
  /** Names of stages whose outputs this stage reads (earlier stages). */
  inputs: string[];
}

export interface PlanCategoryInput {
  name: string;
  items: number;
  /** Items not yet done per stage (by stage name); default: all items for every stage. */
  remaining?: Record<string, number>;
}

export interface PlanInput {
  stages: PlanStageInput[];
  categories: PlanCategoryInput[];
  gpuMemoryMB: number;
  /** Models (stage names) loaded on the GPU now. */
  resident?: string[];
}

export interface PlanStep {
  kind: 'load' | 'unload' | 'process';
  stage: string;
  category?: string;
  items?: number;
  /** per-item plans: the one item (id) this step processes */
  item?: string;
}

export interface Plan {
  mode: 'all-resident' | 'stage-by-stage' | 'per-item';
  steps: PlanStep[];
  loads: number;
  unloads: number;
  naiveLoads: number;
  order: { category: string; stages: string[] }[];
  notes: string[];
}

/** What planPipeline's steps share: the checked input, the work left, residency and the plan so far. */
interface PlanState {
  input: PlanInput;
  /** number of stages */
  S: number;
  budget: number;
  /** stage name -> index */
  idx: Map<string, number>;
  /** memory per stage (0 when not a positive finite number) */
  mem: number[];
  /** deps[s]: indexes of the stages s reads */
  deps: number[][];
  /** rem[c][s]: items of category c still to run through stage s */
  rem: number[][];
  /** needed[s]: some category has work left for stage s */
  needed: boolean[];
  notes: string[];
  /** stages loaded now, in load order */
  resident: number[];
  steps: PlanStep[];
  loads: number;
  unloads: number;
  order: Plan['order'];
}

/** Step 1: checks stage names and inputs, computes memory, dependencies and the work left. */
function checkStages(input: PlanInput): PlanState {
  const S = input.stages.length;
  const idx = new Map<string, number>();
  input.stages.forEach((s, i) => {
    // a pipeline file is checked before this (schema.ts says which line): here it is the caller's mistake
    if (idx.has(s.name)) throw invalidArg(`planPipeline: duplicate stage name "${s.name}"`);
    idx.set(s.name, i);
  });
  const mem = input.stages.map((s) => (Number.isFinite(s.memoryMB) && s.memoryMB > 0 ? s.memoryMB : 0));
  const deps = input.stages.map((s, i) =>
    s.inputs.map((n) => {
      const j = idx.get(n);
      if (j === undefined || j >= i) throw invalidArg(`planPipeline: stage "${s.name}" input "${n}" is not an earlier stage`);
      return j;
    }),
  );
  // Work left: rem[c][s] items of category c still to run through stage s.
  const rem: number[][] = input.categories.map((c) =>
    input.stages.map((s) => {
      const r = c.remaining?.[s.name];
      const v = r === undefined ? c.items : r;
      return Math.max(0, Math.floor(v));
    }),
  );
  const needed = new Array<boolean>(S).fill(false);
  for (const r of rem) for (let s = 0; s < S; s++) if (r[s] > 0) needed[s] = true;
  return { input, S, budget: input.gpuMemoryMB, idx, mem, deps, rem, needed, notes: [], resident: [], steps: [], loads: 0, unloads: 0, order: [] };
}

/** Step 2: notes on stages over the budget and on categories with nothing left to do. */
function noteWork(st: PlanState): void {
  const { input, S, mem, budget, rem, notes } = st;
  for (let s = 0; s < S; s++) {
    if (mem[s] > budget) notes.push(`stage ${input.stages[s].name} needs ${mem[s]} MB, more than the GPU budget of ${budget} MB: it runs alone`);
  }
  const skippedCats = input.categories.filter((_, c) => !rem[c].some((v) => v > 0)).map((c) => c.name);
  if (skippedCats.length) notes.push(`nothing left to do for ${skippedCats.length} categor${skippedCats.length === 1 ? 'y' : 'ies'}: ${skippedCats.slice(0, 5).join(', ')}${skippedCats.length > 5 ? ', ...' : ''}`);
}

/** Step 3: takes over the resident models that are stages; the others are noted and unloaded. */
function adoptResident(st: PlanState): void {
  const { input, idx, notes, resident } = st;
  for (const n of input.resident ?? []) {
    const i = idx.get(n);
    if (i === undefined) notes.push(`resident model ${n} is not a stage of this pipeline: it is unloaded`);
    else if (!resident.includes(i)) resident.push(i);
  }
  for (const n of input.resident ?? []) if (!idx.has(n)) {
    st.steps.push({ kind: 'unload', stage: n });
    st.unloads++;
  }
}

/** Unloads resident stage s (one unload step). */
function unloadStage(st: PlanState, s: number): void {
  st.resident.splice(st.resident.indexOf(s), 1);
  st.steps.push({ kind: 'unload', stage: st.input.stages[s].name });
  st.unloads++;
}

/** Loads stage s (one load step). */
function loadStage(st: PlanState, s: number): void {
  st.resident.push(s);
  st.steps.push({ kind: 'load', stage: st.input.stages[s].name });
  st.loads++;
}

/** Topological order of one category's stages with work left; ready stages that are resident go first. */
function categoryOrder(st: PlanState, r: number[], preferResident: boolean): number[] {
  const { S, deps, resident } = st;
  const out: number[] = [];
  const placed = new Array<boolean>(S).fill(false);
  const todo: number[] = [];
  for (let s = 0; s < S; s++) if (r[s] > 0) todo.push(s);
  while (out.length < todo.length) {
    let pick = -1;
    for (const s of todo) {
      if (placed[s]) continue;
      if (!deps[s].every((d) => r[d] === 0 || placed[d])) continue;
      if (pick < 0) pick = s;
      if (!preferResident || resident.includes(s)) {
        pick = s;
        break;
      }
    }
    placed[pick] = true;
    out.push(pick);
  }
  return out;
}

/** Step 4a ('all-resident'): frees room, loads every needed model once, processes categories in turn. */
function planAllResident(st: PlanState, neededMem: number): void {
  const { input, S, budget, mem, needed, resident, rem, steps, order } = st;
  // Unload resident models no category needs while they keep the needed ones from fitting.
  let after = neededMem + resident.reduce((a, s) => a + (needed[s] ? 0 : mem[s]), 0);
  for (const s of [...resident]) {
    if (after <= budget) break;
    if (!needed[s]) {
      unloadStage(st, s);
      after -= mem[s];
    }
  }
  for (let s = 0; s < S; s++) if (needed[s] && !resident.includes(s)) loadStage(st, s);
  input.categories.forEach((c, ci) => {
    const o = categoryOrder(st, rem[ci], false);
    if (!o.length) return;
    order.push({ category: c.name, stages: o.map((s) => input.stages[s].name) });
    for (const s of o) steps.push({ kind: 'process', stage: input.stages[s].name, category: c.name, items: rem[ci][s] });
  });
}

/** nextCat[c * S + s]: first category after c with work for stage s (categories.length when none). */
function nextCategoryTable(st: PlanState): Int32Array {
  const { S, rem } = st;
  const C = st.input.categories.length;
  const nextCat = new Int32Array((C + 1) * S).fill(C);
  for (let c = C - 1; c >= 0; c--) {
    for (let s = 0; s < S; s++) nextCat[c * S + s] = rem[c + 1]?.[s] > 0 ? c + 1 : nextCat[(c + 1) * S + s];
  }
  return nextCat;
}

/** Unloads (Belady) the resident models needed farthest away until stage s (at pos of category ci's order o) fits. */
function makeRoomFor(st: PlanState, s: number, ci: number, o: number[], pos: number, nextCat: Int32Array): void {
  const { S, budget, mem, resident } = st;
  const C = st.input.categories.length;
  let used = resident.reduce((a, x) => a + mem[x], 0);
  while (resident.length && used + mem[s] > budget) {
    // Evict the resident model whose next use is farthest away.
    let victim = -1;
    let far = -1;
    for (const r of resident) {
      const inCat = o.indexOf(r, pos + 1);
      const nc = nextCat[ci * S + r];
      const dist = inCat >= 0 ? inCat : nc < C ? (nc - ci) * (S + 1) + r : Infinity;
      if (dist > far || (dist === far && mem[r] > mem[victim])) {
        far = dist;
        victim = r;
      }
    }
    unloadStage(st, victim);
    used -= mem[victim];
  }
}

/** Step 4b ('stage-by-stage'): categories in turn, each needed model loaded once, evicting by Belady. */
function planStageByStage(st: PlanState): void {
  const { input, rem, resident, steps, order } = st;
  const nextCat = nextCategoryTable(st);
  input.categories.forEach((c, ci) => {
    const o = categoryOrder(st, rem[ci], true);
    if (!o.length) return;
    order.push({ category: c.name, stages: o.map((s) => input.stages[s].name) });
    o.forEach((s, pos) => {
      if (!resident.includes(s)) {
        makeRoomFor(st, s, ci, o, pos, nextCat);
        loadStage(st, s);
      }
      steps.push({ kind: 'process', stage: input.stages[s].name, category: c.name, items: rem[ci][s] });
    });
  });
}

/** The staged plan (see the file comment): check, note, adopt the resident models, then plan by mode. */
export function planPipeline(input: PlanInput): Plan {
  const st = checkStages(input);
  noteWork(st);
  adoptResident(st);
  let neededMem = 0;
  for (let s = 0; s < st.S; s++) if (st.needed[s]) neededMem += st.mem[s];
  const mode: Plan['mode'] = neededMem <= st.budget ? 'all-resident' : 'stage-by-stage';
  if (mode === 'all-resident') planAllResident(st, neededMem);
  else planStageByStage(st);
  const { steps, loads, unloads, order, notes } = st;
  return { mode, steps, loads, unloads, naiveLoads: naiveLoads(input, st.rem, st.mem, st.budget), order, notes };
}

/**
 * Loads of the per-item order: every item of a category through its stages (stage order), LRU
 * residency within the budget, starting from the given resident models. Item i of a category
 * needs stage s when i < remaining[s]. Items of one segment (same set of stages) repeat the same
 * access sequence, so the residency state after each item cycles: detect the cycle, extrapolate.
 */
function naiveLoads(input: PlanInput, rem: number[][], mem: number[], budget: number): number {
  const S = input.stages.length;
  const names = new Map(input.stages.map((s, i) => [s.name, i]));
  const lru: number[] = (input.resident ?? []).map((n) => names.get(n)).filter((i): i is number => i !== undefined);
  let total = 0;
  const runItem = (seq: number[]): number => {
    let n = 0;
    for (const s of seq) {
      const at = lru.indexOf(s);
      if (at >= 0) {
        lru.splice(at, 1);
        lru.push(s);
        continue;
      }
      let used = 0;
      for (const x of lru) used += mem[x];
      while (lru.length && used + mem[s] > budget) used -= mem[lru.shift()!];
      lru.push(s);
      n++;
    }
    return n;
  };
  for (const r of rem) {
    const thresholds = [...new Set(r.filter((v) => v > 0))].sort((a, b) => a - b);
    let lo = 0;
    for (const hi of thresholds) {
      const seq: number[] = [];
      for (let s = 0; s < S; s++) if (r[s] >= hi) seq.push(s);
      const count = hi - lo;
      lo = hi;
      const seen = new Map<string, { item: number; loads: number }>();
      let done = 0;
      let acc = 0;
      while (done < count) {
        const key = lru.join(',');
        const prev = seen.get(key);
        if (prev) {
          const period = done - prev.item;
          const perPeriod = acc - prev.loads;
          const cycles = Math.floor((count - done) / period);
          acc += cycles * perPeriod;
          done += cycles * period;
          while (done < count) {
            acc += runItem(seq);
            done++;
          }
          break;
        }
        seen.set(key, { item: done, loads: acc });
        acc += runItem(seq);
        done++;
      }
      total += acc;
    }
  }
  return total;
}

/**
 * Swaps in the design notes' sense: model switches, i.e. loads that come after a model was
 * unloaded (the first loads onto an empty GPU are not switches). The notes' per-item order of
 * two models costs two switches per pair; the staged order 2 x categories - 1.
 */
export function countSwaps(steps: PlanStep[]): number {
  let unloaded = false;
  let n = 0;
  for (const s of steps) {
    if (s.kind === 'unload') unloaded = true;
    else if (s.kind === 'load' && unloaded) n++;
  }
  return n;
}

export interface PerItemCategory {
  name: string;
  /** items in order, each with the stages (names) it still needs */
  items: { id: string; stages: string[] }[];
}

/**
 * The per-item order (the notes' single-stage processing): every item through all of its stages
 * before the next item, LRU residency within the GPU budget. Each process step is one item.
 */
export function planPerItem(input: { stages: PlanStageInput[]; categories: PerItemCategory[]; gpuMemoryMB: number; resident?: string[]; processSteps?: boolean }): Plan {
  const withProcess = input.processSteps !== false; // false: loads and unloads only (to count and price them)
  const budget = input.gpuMemoryMB;
  const memOf = new Map(input.stages.map((s) => [s.name, Number.isFinite(s.memoryMB) && s.memoryMB > 0 ? s.memoryMB : 0]));
  const order = input.stages.map((s) => s.name);
  const notes: string[] = [];
  for (const s of input.stages) if ((memOf.get(s.name) ?? 0) > budget) notes.push(`stage ${s.name} needs ${s.memoryMB} MB, more than the GPU budget of ${budget} MB: it runs alone`);
  const steps: PlanStep[] = [];
  let loads = 0;
  let unloads = 0;
  const lru: string[] = [];
  for (const n of input.resident ?? []) {
    if (!memOf.has(n)) {
      notes.push(`resident model ${n} is not a stage of this pipeline: it is unloaded`);
      steps.push({ kind: 'unload', stage: n });
      unloads++;
    } else if (!lru.includes(n)) lru.push(n);
  }
  const catOrder: Plan['order'] = [];
  for (const c of input.categories) {
    const used = new Set<string>();
    for (const it of c.items) {
      for (const st of order.filter((n) => it.stages.includes(n))) {
        used.add(st);
        const at = lru.indexOf(st);
        if (at >= 0) {
          lru.splice(at, 1);
          lru.push(st);
        } else {
          let inUse = lru.reduce((a, x) => a + memOf.get(x)!, 0);
          while (lru.length && inUse + memOf.get(st)! > budget) {
            const v = lru.shift()!;
            inUse -= memOf.get(v)!;
            steps.push({ kind: 'unload', stage: v });
            unloads++;
          }
          lru.push(st);
          steps.push({ kind: 'load', stage: st });
          loads++;
        }
        if (withProcess) steps.push({ kind: 'process', stage: st, category: c.name, items: 1, item: it.id });
      }
    }
    if (used.size) catOrder.push({ category: c.name, stages: order.filter((n) => used.has(n)) });
  }
  return { mode: 'per-item', steps, loads, unloads, naiveLoads: loads, order: catOrder, notes };
}
