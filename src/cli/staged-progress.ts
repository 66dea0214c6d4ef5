/**
 * Progress display for `gpucolo staged run`: on a TTY one cli-progress bar per stage (done/total
 * over all categories, the current category, the mean item time, failures) with the plan, load,
 * unload, stage-end and warning lines logged above the bars; elsewhere one plain line per such
 * event (items print nothing).
 *
 * A stage's total is what is done so far plus what the latest plan (or the latest stage-start of
 * a category) says is left, recomputed on every plan event, so a re-plan replaces the remaining
 * work instead of adding to it. Skipped pairs (failed inputs) are not journaled, so a later plan
 * counts them as left again: a category's skipped count is replaced at each stage-end, not added.
 */
import { MultiBar, type SingleBar } from 'cli-progress';
import type { StagedEvent } from '../runners/staged/runner.js';

export interface StagedProgress {
  onEvent(e: StagedEvent): void;
  /** Print a line (newline added) above the bars, or plainly when there are none. */
  log(line: string): void;
  /** Stop the bars (they stay on screen, final state); idempotent. */
  stop(): void;
}

export type StagedProgressStream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

/** The plain line for an event (no newline), or null for events that print nothing (items, stage-start). */
export function stagedEventLine(e: StagedEvent): string | null {
  switch (e.type) {
    case 'warning':
      return `gpucolo: warning: ${e.message}`;
    case 'plan':
      return `${e.replanned ? 're-planned' : 'plan'}: ${e.plan.mode}, ${e.plan.loads} loads (per-item: ${e.plan.naiveLoads})`;
    case 'load':
      return `load ${e.stage}: ${e.ms.toFixed(1)} ms, ${typeof e.memoryMB === 'number' ? `${e.memoryMB.toFixed(0)} MB` : 'memory not reported'}`;
    case 'unload':
      return `unload ${e.stage}: ${e.ms.toFixed(1)} ms`;
    case 'stage-end':
      return `${e.category} / ${e.stage}: ${e.processed} done, ${e.failed} failed, ${e.skipped} skipped`;
    default:
      return null;
  }
}

/** One category's work for one stage. */
interface Cell {
  /** item events seen (ok or failed: both are journaled, so no later plan counts them) */
  done: number;
  /** skipped at the latest stage-end (not journaled: a later plan counts them as left again) */
  skipped: number;
  /** done when `rem` was set */
  base: number;
  /** left, per the latest plan or stage-start */
  rem: number;
}

interface StageState {
  name: string;
  cells: Map<string, Cell>;
  failed: number;
  msSum: number;
  msN: number;
  category: string;
  bar: SingleBar | null;
}

const fmtMs = (ms: number): string => (ms < 100 ? ms.toFixed(1) : ms.toFixed(0));

export function stagedProgress(stream: StagedProgressStream, opts: { tty?: boolean } = {}): StagedProgress {
  const tty = opts.tty ?? stream.isTTY === true;
  const writeLine = (line: string): void => {
    stream.write(`${line}\n`);
  };

  if (!tty) {
    return {
      onEvent(e: StagedEvent): void {
        try {
          const line = stagedEventLine(e);
          if (line !== null) writeLine(line);
        } catch {
          // a display problem never stops a run
        }
      },
      log: writeLine,
      stop(): void {},
    };
  }

  const stages = new Map<string, StageState>();
  let mb: MultiBar | null = null;
  let stopped = false;
  let width = 0;
  const onExit = (): void => stop();

  const multiBar = (): MultiBar | null => {
    if (stopped) return null;
    if (!mb) {
      mb = new MultiBar({
        stream,
        format: '{stage} |{bar}| {value}/{total}{info}',
        barCompleteChar: '\u2588',
        barIncompleteChar: '\u2591',
        barsize: 20,
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        // bars move down when lines are logged above them: redraw all, not only changed ones
        forceRedraw: true,
        fps: 10,
        emptyOnZero: true,
        // forced TTY mode on a stream that is not a TTY: still draw (one block per refresh)
        noTTYOutput: stream.isTTY !== true,
        notTTYSchedule: 1000,
      });
      // second Ctrl-C exits from the CLI's handler: show the cursor again
      process.once('exit', onExit);
    }
    return mb;
  };

  const cellOf = (st: StageState, category: string): Cell => {
    let c = st.cells.get(category);
    if (!c) {
      c = { done: 0, skipped: 0, base: 0, rem: 0 };
      st.cells.set(category, c);
    }
    return c;
  };

  const payload = (st: StageState): { stage: string; info: string } => {
    const parts: string[] = [];
    if (st.category) parts.push(st.category);
    if (st.msN > 0) parts.push(`${fmtMs(st.msSum / st.msN)} ms/item`);
    if (st.failed > 0) parts.push(`${st.failed} failed`);
    return { stage: st.name.padEnd(width), info: parts.length ? ` ${parts.join(' ')}` : '' };
  };

  const refresh = (st: StageState): void => {
    if (!st.bar) return;
    let value = 0;
    let total = 0;
    for (const c of st.cells.values()) {
      value += c.done + c.skipped;
      total += c.base + c.rem;
    }
    st.bar.setTotal(Math.max(total, value));
    st.bar.update(value, payload(st));
  };

  const stageOf = (name: string): StageState => {
    let st = stages.get(name);
    if (!st) {
      st = { name, cells: new Map(), failed: 0, msSum: 0, msN: 0, category: '', bar: null };
      stages.set(name, st);
      const m = multiBar();
      if (m) {
        st.bar = m.create(0, 0, payload(st));
        if (name.length > width) {
          width = name.length;
          for (const s of stages.values()) refresh(s);
        }
      }
    }
    return st;
  };

  const log = (line: string): void => {
    if (mb && !stopped) {
      mb.log(`${line}\n`);
      mb.update(); // now, not at the next tick
    } else writeLine(line);
  };

  const handle = (e: StagedEvent): void => {
    if (stopped) {
      const line = stagedEventLine(e);
      if (line !== null) writeLine(line);
      return;
    }
    switch (e.type) {
      case 'plan': {
        for (const st of stages.values())
          for (const c of st.cells.values()) {
            c.base = c.done;
            c.rem = 0;
          }
        for (const step of e.plan.steps) {
          if (step.kind !== 'process') continue;
          cellOf(stageOf(step.stage), step.category ?? '').rem += step.items ?? 0;
        }
        for (const st of stages.values()) refresh(st);
        break;
      }
      case 'stage-start': {
        const st = stageOf(e.stage);
        const c = cellOf(st, e.category);
        c.base = c.done;
        c.rem = e.todo;
        st.category = e.category;
        refresh(st);
        break;
      }
      case 'item': {
        const st = stageOf(e.stage);
        cellOf(st, e.category).done++;
        if (!e.ok) st.failed++;
        else if (typeof e.ms === 'number' && Number.isFinite(e.ms)) {
          st.msSum += e.ms;
          st.msN++;
        }
        st.category = e.category;
        refresh(st);
        break;
      }
      case 'stage-end': {
        const st = stageOf(e.stage);
        cellOf(st, e.category).skipped = e.skipped;
        st.category = e.category;
        refresh(st);
        break;
      }
      default:
        break;
    }
    const line = stagedEventLine(e);
    if (line !== null) log(line);
  };

  function stop(): void {
    if (stopped) return;
    stopped = true;
    process.off('exit', onExit);
    if (mb) {
      mb.update(); // flush lines logged since the last tick
      mb.stop();
    }
  }

  return {
    onEvent(e: StagedEvent): void {
      try {
        handle(e);
      } catch {
        // a display problem never stops a run
      }
    },
    log(line: string): void {
      try {
        log(line);
      } catch {
        // ignore
      }
    },
    stop,
  };
}
