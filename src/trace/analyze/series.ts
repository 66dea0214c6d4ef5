/**
 * Generic helpers over ordered series and lists (run-length encoding, most common value,
 * grouping, capping long lists). Nothing here knows about traces, so every part of the analysis
 * can share them.
 */

/** Run-length encoding of a series: consecutive equal values become one run. */
export interface Run<T> {
  value: T;
  fromNs: number;
  /** time of the last sample of the run */
  toNs: number;
  samples: number;
}

export function runs<T>(points: readonly { t: number; value: T }[], same: (a: T, b: T) => boolean = (a, b) => a === b): Run<T>[] {
  const out: Run<T>[] = [];
  for (const p of points) {
    const last = out[out.length - 1];
    if (last && same(last.value, p.value)) {
      last.toNs = p.t;
      last.samples++;
    } else out.push({ value: p.value, fromNs: p.t, toNs: p.t, samples: 1 });
  }
  return out;
}

/** The most frequent value and how often it occurs (ties: the one seen first). */
export function mode<T>(values: readonly T[], id: (v: T) => string = String): { value: T; count: number } | null {
  const counts = new Map<string, { value: T; count: number }>();
  for (const v of values) {
    const k = id(v);
    const c = counts.get(k);
    if (c) c.count++;
    else counts.set(k, { value: v, count: 1 });
  }
  let best: { value: T; count: number } | null = null;
  for (const c of counts.values()) if (!best || c.count > best.count) best = c;
  return best;
}

/** Groups items by key, in order; items whose key is undefined are left out. */
export function groupBy<T, K>(items: readonly T[], key: (t: T) => K | undefined): Map<K, T[]> {
  const out = new Map<K, T[]>();
  for (const it of items) {
    const k = key(it);
    if (k === undefined) continue;
    let l = out.get(k);
    if (!l) out.set(k, (l = []));
    l.push(it);
  }
  return out;
}

/** Keeps at most `max` items and counts the rest. */
export function capped<T>(items: T[], max: number): [T[], number] {
  return items.length > max ? [items.slice(0, max), items.length - max] : [items, 0];
}
