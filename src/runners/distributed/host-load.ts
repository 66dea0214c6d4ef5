/**
 * Host load around one distributed run: ranks start after the window opens and have been reaped
 * before it closes, so their CPU time is counted as own through our cutime/cstime
 * (hostLoadWindow's reapedChildren option, src/stats/host-load.ts).
 */
import { hostLoadWindow, type HostLoad, type HostLoadOptions } from '../../stats/index.js';

export { reapedChildrenTicks, withReapedChildren } from '../../stats/index.js';

/** hostLoadWindow whose own share includes the children reaped inside the window. */
export function runHostLoadWindow(o: HostLoadOptions = {}): { stop(): HostLoad } {
  return hostLoadWindow({ ...o, reapedChildren: true });
}
