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

/** What one stage's bar shows, counted from the events. */
export interface StageCounts {
  name: string;
  cells: Map<string, Cell>;
  failed: number;
  msSum: number;
  msN: number;
  category: string;
}

const fmtMs = (ms: number): string => (ms < 100 ? ms.toFixed(1) : ms.toFixed(0));

/** A stage's bar position: done (and skipped) over done plus left, never below done. */
export function stageBarValue(st: StageCounts): { value: number; total: number } {
  let value = 0;
  let total = 0;
  for (const c of st.cells.values()) {
    value += c.done + c.skipped;
    total += c.base + c.rem;
  }
  return { value, total: Math.max(total, value) };
}

/** The text after a stage's bar: the current category, the mean item time, failures. */
export function stageBarInfo(st: StageCounts): string {
  const parts: string[] = [];
  if (st.category) parts.push(st.category);
  if (st.msN > 0) parts.push(`${fmtMs(st.msSum / st.msN)} ms/item`);
  if (st.failed > 0) parts.push(`${st.failed} failed`);
  return parts.length ? ` ${parts.join(' ')}` : '';
}

/** The counts behind the bars, from the run's events; draws nothing. */
export class StagedTally {
  readonly stages = new Map<string, StageCounts>();

  /** `onNewStage` sees each stage once, when an event first names it (already in `stages`). */
  constructor(private readonly onNewStage: (st: StageCounts) => void = () => {}) {}

  stageOf(name: string): StageCounts {
    let st = this.stages.get(name);
    if (!st) {
      st = { name, cells: new Map(), failed: 0, msSum: 0, msN: 0, category: '' };
      this.stages.set(name, st);
      this.onNewStage(st);
    }
    return st;
  }

  private static cellOf(st: StageCounts, category: string): Cell {
    let c = st.cells.get(category);
    if (!c) {
      c = { done: 0, skipped: 0, base: 0, rem: 0 };
      st.cells.set(category, c);
    }
    return c;
  }

  /** Counts an event; returns the stages whose bars changed. */
  apply(e: StagedEvent): StageCounts[] {
    const cellOf = StagedTally.cellOf;
    switch (e.type) {
      case 'plan': {
        for (const st of this.stages.values())
          for (const c of st.cells.values()) {
            c.base = c.done;
            c.rem = 0;
          }
        for (const step of e.plan.steps) {
          if (step.kind !== 'process') continue;
          cellOf(this.stageOf(step.stage), step.category ?? '').rem += step.items ?? 0;
        }
        return [...this.stages.values()];
      }
      case 'stage-start': {
        const st = this.stageOf(e.stage);
        const c = cellOf(st, e.category);
        c.base = c.done;
        c.rem = e.todo;
        st.category = e.category;
        return [st];
      }
      case 'item': {
        const st = this.stageOf(e.stage);
        cellOf(st, e.category).done++;
        if (!e.ok) st.failed++;
        else if (typeof e.ms === 'number' && Number.isFinite(e.ms)) {
          st.msSum += e.ms;
          st.msN++;
        }
        st.category = e.category;
        return [st];
      }
      case 'stage-end': {
        const st = this.stageOf(e.stage);
        cellOf(st, e.category).skipped = e.skipped;
        st.category = e.category;
        return [st];
      }
      default:
        return [];
    }
  }
}

/** The plain display: one line per event that has one (not a TTY). */
function plainProgress(stream: StagedProgressStream): StagedProgress {
  const writeLine = (line: string): void => {
    stream.write(`${line}\n`);
  };
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

/** The TTY display: a cli-progress bar per stage, with the event lines logged above the bars. */
class StagedBars {
  private mb: MultiBar | null = null;
  private stopped = false;
  private width = 0;
  private readonly bars = new Map<string, SingleBar>();
  private readonly tally = new StagedTally((st) => this.addBar(st));
  private readonly onExit = (): void => this.stop();

  constructor(private readonly stream: StagedProgressStream) {}

  private writeLine(line: string): void {
    this.stream.write(`${line}\n`);
  }

  private multiBar(): MultiBar | null {
    if (this.stopped) return null;
    if (!this.mb) {
      this.mb = new MultiBar({
        stream: this.stream,
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
        noTTYOutput: this.stream.isTTY !== true,
        notTTYSchedule: 1000,
      });
      // second Ctrl-C exits from the CLI's handler: show the cursor again
      process.once('exit', this.onExit);
    }
    return this.mb;
  }

  private payload(st: StageCounts): { stage: string; info: string } {
    return { stage: st.name.padEnd(this.width), info: stageBarInfo(st) };
  }

  private addBar(st: StageCounts): void {
    const m = this.multiBar();
    if (!m) return;
    this.bars.set(st.name, m.create(0, 0, this.payload(st)));
    if (st.name.length > this.width) {
      this.width = st.name.length;
      for (const s of this.tally.stages.values()) this.refresh(s);
    }
  }

  private refresh(st: StageCounts): void {
    const bar = this.bars.get(st.name);
    if (!bar) return;
    const { value, total } = stageBarValue(st);
    bar.setTotal(total);
    bar.update(value, this.payload(st));
  }

  log(line: string): void {
    if (this.mb && !this.stopped) {
      this.mb.log(`${line}\n`);
      this.mb.update(); // now, not at the next tick
    } else this.writeLine(line);
  }

  handle(e: StagedEvent): void {
    if (this.stopped) {
      const line = stagedEventLine(e);
      if (line !== null) this.writeLine(line);
      return;
    }
    for (const st of this.tally.apply(e)) this.refresh(st);
    const line = stagedEventLine(e);
    if (line !== null) this.log(line);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    process.off('exit', this.onExit);
    if (this.mb) {
      this.mb.update(); // flush lines logged since the last tick
      this.mb.stop();
    }
  }
}

export function stagedProgress(stream: StagedProgressStream, opts: { tty?: boolean } = {}): StagedProgress {
  const tty = opts.tty ?? stream.isTTY === true;
  if (!tty) return plainProgress(stream);
  const bars = new StagedBars(stream);
  return {
    onEvent(e: StagedEvent): void {
      try {
        bars.handle(e);
      } catch {
        // a display problem never stops a run
      }
    },
    log(line: string): void {
      try {
        bars.log(line);
      } catch {
        // ignore
      }
    },
    stop: () => bars.stop(),
  };
}
