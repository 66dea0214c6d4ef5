/** Plain-text tables: left-aligned columns separated by two spaces, no colour (pipes stay clean). */
export function table(header: string[], rows: string[][], indent = ''): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]): string =>
    (indent + r.map((c, i) => (i === r.length - 1 ? c : (c ?? '').padEnd(widths[i]))).join('  ')).trimEnd();
  return [fmt(header), ...rows.map(fmt)];
}
