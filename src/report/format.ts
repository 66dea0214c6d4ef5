/**
 * Number formatting shared by the Markdown report and `compare`: about three significant digits,
 * so a table reads at a glance (0.412, 12.3, 145) without pretending to more precision than a
 * latency sample has.
 */

/** 0.41234 -> "0.412", 12.345 -> "12.3", 145.2 -> "145", 12345 -> "12345"; null/NaN -> "-". */
export function fmtNum(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '-';
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 100) return String(Math.round(v));
  return String(+v.toPrecision(3));
}

/** 0.953 -> "95.3%"; null -> "-". */
export function fmtPct(share: number | null | undefined): string {
  if (share === null || share === undefined || !Number.isFinite(share)) return '-';
  return `${fmtNum(share * 100)}%`;
}

/** 2.04 -> "2.04x", 1 -> "1.00x" (a ratio keeps its digits: 1.00x says "unchanged to 1%"); null -> "-". */
export function fmtRatio(r: number | null | undefined): string {
  if (r === null || r === undefined || !Number.isFinite(r)) return '-';
  return `${Math.abs(r) >= 1000 || r === 0 ? fmtNum(r) : r.toPrecision(3)}x`;
}

/** true/false/null -> PASS/FAIL/n.a. */
export function fmtPass(pass: boolean | null | undefined): string {
  return pass === true ? 'PASS' : pass === false ? 'FAIL' : 'n.a.';
}

