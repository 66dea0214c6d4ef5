/** doctorVerdict (src/doctor.ts): the verdict line alone, and doctor() on the recorded example tree. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { doctor, doctorVerdict } from '../src/doctor.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const EXAMPLE = path.join(ROOT, 'examples/kfd-mi300x');
const gpu = { node: 2, gpuId: 1, gpuIdHex: '1', name: 'g', gfxTarget: 'gfx942', numXcc: 1, computeUnits: 1 };
const live = { sysfs: false, debugfs: false };

describe('doctorVerdict', () => {
  it('live host: full introspection with debugfs, sysfs only without, none without a GPU node', () => {
    expect(doctorVerdict({ ok: true, gpus: [gpu] }, true, live, '/sys')).toBe('verdict: full KFD queue introspection available (gpucolo queues)');
    expect(doctorVerdict({ ok: true, gpus: [gpu] }, false, live, '/sys')).toMatch(/through sysfs \(ids, types, GPUs\); run as root/);
    expect(doctorVerdict({ ok: true, gpus: [] }, true, live, '/sys')).toMatch(/^verdict: no AMD KFD GPU here/);
  });

  it('recorded tree: says whose debugfs files were read, or why it has no GPU node', () => {
    expect(doctorVerdict({ ok: true, gpus: [gpu] }, true, { sysfs: true, debugfs: true }, '/r')).toMatch(/recorded tree holds full KFD queue state/);
    expect(doctorVerdict({ ok: true, gpus: [gpu] }, false, { sysfs: true, debugfs: false }, '/r')).toMatch(/this host's, not the recording's$/);
    expect(doctorVerdict({ ok: false, gpus: [], error: 'gone' }, false, { sysfs: true, debugfs: false }, '/r')).toBe('verdict: the recorded tree /r has no KFD GPU node (gone)');
  });

  it('doctor() on the example tree ends its summary with the verdict', () => {
    const r = doctor({ sysfsRoot: path.join(EXAMPLE, 'sys'), debugfsRoot: path.join(EXAMPLE, 'sys/kernel/debug'), kfdDevice: '/nonexistent/kfd' });
    expect(r.kfd.sysfs.gpus.map((g) => g.gfxTarget)).toEqual(['gfx942']);
    expect(r.summary.at(-1)).toBe('verdict: the recorded tree holds full KFD queue state (gpucolo queues --root DIR, or --sysfs-root/--debugfs-root)');
  });
});
