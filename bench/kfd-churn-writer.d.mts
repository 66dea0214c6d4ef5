// Types of bench/kfd-churn-writer.mjs (plain JavaScript: the writer runs as a bare node process).
export function replaceFile(file: string, bytes: string | Uint8Array): void;
export function applySysfs(
  procDir: string,
  gpuId: string,
  queues: Record<number | string, { qid: number; type: number }[]>,
  cuOccupancy: Record<number | string, number>,
): void;
