/**
 * The terminal side of `gpucolo top`: an ink (React for terminals) app that draws the frame lines
 * of src/top/frame.ts, turns key presses into TopKey actions for the reducer of src/top/keys.ts,
 * follows terminal resizes and drives replay playback.
 *
 * Why ink: it is the most used and actively released terminal UI library for Node (React
 * reconciler, Yoga layout, input parsing, resize handling, diffed redraws), and 6.x runs on
 * Node >= 20 as ESM, which this package is (ink 7+ needs Node 22). blessed and its forks are
 * unmaintained or little used. Written with React.createElement rather than JSX so the
 * TypeScript build (tsconfig.json, *.ts only) needs no JSX settings. The alternate screen (so
 * the shell's scrollback is left as it was) comes from ansi-escapes, ink's own dependency.
 */
import ansiEscapes from 'ansi-escapes';
import { Box, Text, render, useApp, useInput, useStdout, type Key } from 'ink';
import React, { useEffect, useReducer, useRef, useState } from 'react';
import { buildFrame, layoutFrame } from './frame.js';
import { reduceTop, type TopKey, type TopView } from './keys.js';
import type { LiveSource } from './live.js';
import type { ReplaySource } from './replay.js';
import type { TopSnapshot } from './state.js';
import type { FrameLine, Tone } from './text.js';

const h = React.createElement;

/** How a tone looks on a colour terminal. */
const TONE_STYLE: Record<Tone, { color?: string; bold?: boolean; dimColor?: boolean }> = {
  title: { bold: true },
  dim: { dimColor: true },
  high: { color: 'red', bold: true },
  normal: { color: 'yellow' },
  low: { color: 'cyan' },
  unknown: { color: 'magenta' },
  warn: { color: 'yellow', bold: true },
  key: { color: 'green', bold: true },
};

/** ink's key report as a TopKey (many terminals send DEL for backspace, which ink calls delete). */
export function toTopKey(input: string, key: Key): TopKey {
  if (key.leftArrow) return { input: '', name: 'left' };
  if (key.rightArrow) return { input: '', name: 'right' };
  if (key.upArrow) return { input: '', name: 'up' };
  if (key.downArrow) return { input: '', name: 'down' };
  if (key.return) return { input: '', name: 'return' };
  if (key.escape) return { input: '', name: 'escape' };
  if (key.backspace || key.delete) return { input: '', name: 'backspace' };
  return { input };
}

/**
 * Adjacent segments of one tone as one, and blanks joined to the segment before them (no tone
 * here has a background, so a styled blank looks like a plain one): a grid line has ~20 segments,
 * and every ink element costs layout time on each refresh (bench/top.ts).
 */
export function mergeSegments(line: FrameLine): FrameLine {
  const out: FrameLine = [];
  for (const s of line) {
    const last = out[out.length - 1];
    if (last && (last.tone === s.tone || s.text.trim() === '')) out[out.length - 1] = { ...last, text: last.text + s.text };
    else out.push(s);
  }
  return out;
}

/** One frame line as ink elements: a Text of Texts, cut rather than wrapped. */
export function lineElement(line: FrameLine, i: number): React.ReactElement {
  const parts = mergeSegments(line).map((s, j) => (s.tone ? h(Text, { key: j, ...TONE_STYLE[s.tone] }, s.text) : s.text));
  return h(Text, { key: i, wrap: 'truncate' }, ...parts);
}

/** The frame lines as one ink tree (also what bench/top.ts renders to a string). */
export function frameElement(lines: FrameLine[]): React.ReactElement {
  return h(Box, { flexDirection: 'column' }, ...lines.map(lineElement));
}

export interface TopAppProps {
  live: LiveSource | null;
  replay: ReplaySource | null;
  initial: TopView;
  /** replay playback step, ms (the --interval) */
  tickMs: number;
  /** ink's draw time of the last frame, ms (set by render's onRender) */
  drawMs: { value: number | null };
}

/** The live snapshot as it arrives; frozen while paused. */
function useLiveSnapshot(live: LiveSource | null, paused: boolean): TopSnapshot | null {
  const [snap, setSnap] = useState<TopSnapshot | null>(live ? live.current() : null);
  const pausedRef = useRef(paused);
  pausedRef.current = paused;
  useEffect(() => {
    if (!live) return;
    live.start((s) => {
      if (!pausedRef.current) setSnap(s);
    });
    return () => void live.stop();
  }, [live]);
  useEffect(() => {
    if (live && !paused) setSnap(live.current());
  }, [live, paused]);
  return snap;
}

function useTerminal(dispatch: React.Dispatch<Parameters<typeof reduceTop>[1]>): void {
  const { stdout } = useStdout();
  useEffect(() => {
    const onResize = (): void => dispatch({ type: 'resize', columns: stdout.columns, rows: stdout.rows - 1 });
    stdout.on('resize', onResize);
    return () => void stdout.off('resize', onResize);
  }, [stdout, dispatch]);
}

function usePlayback(replay: ReplaySource | null, tickMs: number, dispatch: React.Dispatch<Parameters<typeof reduceTop>[1]>): void {
  useEffect(() => {
    if (!replay) return;
    let last = process.hrtime.bigint();
    const t = setInterval(() => {
      const now = process.hrtime.bigint();
      dispatch({ type: 'tick', elapsedNs: Number(now - last) });
      last = now;
    }, tickMs);
    return () => clearInterval(t);
  }, [replay, tickMs, dispatch]);
}

export function TopApp(p: TopAppProps): React.ReactElement {
  const [view, dispatch] = useReducer(reduceTop, p.initial);
  const { exit } = useApp();
  const liveSnap = useLiveSnapshot(p.live, view.paused);
  const snap = p.replay ? p.replay.snapshotAt(view.replay!.positionNs) : liveSnap!;
  const buildNs = useRef<number | null>(null);
  useTerminal(dispatch);
  usePlayback(p.replay, p.tickMs, dispatch);
  useInput((input, key) => dispatch({ type: 'key', key: toTopKey(input, key), gpuCount: snap.gpus.length }));
  useEffect(() => {
    if (view.quit) exit();
  }, [view.quit, exit]);
  const t0 = process.hrtime.bigint();
  const frameNs = buildNs.current === null ? null : buildNs.current + (p.drawMs.value ?? 0) * 1e6;
  const lines = layoutFrame(buildFrame(snap, view, { interactive: true, frameNs }), view.columns, view.rows);
  buildNs.current = Number(process.hrtime.bigint() - t0);
  return frameElement(lines);
}

/**
 * Runs the full-screen view until q, Ctrl-C or SIGTERM. Needs a terminal on stdin and stdout
 * (the CLI checks). The alternate screen keeps the shell's scrollback as it was.
 */
export async function runTopApp(o: Omit<TopAppProps, 'drawMs' | 'initial'> & { initial: (columns: number, rows: number) => TopView }): Promise<void> {
  const out = process.stdout;
  const drawMs: { value: number | null } = { value: null };
  out.write(ansiEscapes.enterAlternativeScreen);
  // one row short of the terminal: ink clears the whole screen on every frame as tall as it
  const initial = o.initial(out.columns || 80, (out.rows || 24) - 1);
  const app = render(h(TopApp, { ...o, initial, drawMs }), { exitOnCtrlC: true, patchConsole: true, onRender: (m) => (drawMs.value = m.renderTime) });
  const onTerm = (): void => app.unmount();
  process.once('SIGTERM', onTerm);
  try {
    await app.waitUntilExit();
  } finally {
    process.off('SIGTERM', onTerm);
    await o.live?.stop();
    out.write(ansiEscapes.exitAlternativeScreen);
  }
}
