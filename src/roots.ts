/**
 * Paths under a root given as a parameter (/sys, /proc, or a recorded host tree): every reader
 * takes its root this way, so tests and `--root` point it at a copy.
 */

/** root + '/' + rel, without normalising anything else (the native reader builds the same: native/kfd/sysfs_reader.cc UnderRoot). */
export function underRoot(root: string, rel: string): string {
  let r = root;
  while (r.length > 1 && r.endsWith('/')) r = r.slice(0, -1);
  return r === '/' ? `/${rel}` : `${r}/${rel}`;
}
