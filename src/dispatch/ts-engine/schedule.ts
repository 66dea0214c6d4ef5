/**
 * Intended arrival times of an open-loop stream, relative to the run origin, computed from the
 * schedule alone (never from completions), as the native engine's Schedule does
 * (native/dispatch/engine.cc):
 *  - fixed-rate: launch i at round(i * 1e9 / rate);
 *  - poisson: exponential gaps drawn the way libstdc++ draws them, from std::mt19937_64 seeded
 *    with the stream's seed: u = double(x) / 2^64 (std::generate_canonical), gap = -log(1 - u) /
 *    rate s, times accumulated in ns and rounded. The same seed therefore gives the native
 *    engine's schedule (to the last-bit differences between V8's and glibc's log, a few ns at
 *    most), which is what "two paths, one answer" asks of a seeded schedule;
 *  - list: the given times (truncated to whole ns, as the native cast to uint64 does).
 *
 * createSchedule is SELF-CONTAINED (no imports, no module-level names): its source text is also
 * eval'd inside the engine worker (worker-source.ts).
 */
export interface Schedule {
  /** the next intended time in ns after the origin, or -1 when the schedule has no more requests */
  next(): number;
}

export function createSchedule(arrival: string, rateHz: number, seed: number, timesNs: readonly number[]): Schedule {
  if (arrival === 'fixed-rate') {
    let i = 0;
    return { next: () => Math.round((i++ * 1e9) / rateHz) };
  }
  if (arrival === 'list') {
    let i = 0;
    return { next: () => (i < timesNs.length ? Math.trunc(timesNs[i++]) : -1) };
  }
  if (arrival !== 'poisson') return { next: () => -1 };

  // std::mt19937_64 in 32-bit halves (BigInt only for the seeding, 312 steps once)
  const N = 312;
  const M = 156;
  const hi = new Uint32Array(N);
  const lo = new Uint32Array(N);
  const mask64 = (1n << 64n) - 1n;
  let x = BigInt.asUintN(64, BigInt(Math.trunc(seed)));
  hi[0] = Number(x >> 32n);
  lo[0] = Number(x & 0xffffffffn);
  for (let i = 1; i < N; i++) {
    x = (6364136223846793005n * (x ^ (x >> 62n)) + BigInt(i)) & mask64;
    hi[i] = Number(x >> 32n);
    lo[i] = Number(x & 0xffffffffn);
  }
  let idx = N;
  const twist = (): void => {
    for (let i = 0; i < N; i++) {
      const j = (i + 1) % N;
      // upper 33 bits of mt[i], lower 31 of mt[i+1]
      const xh = hi[i];
      const xl = ((lo[i] & 0x80000000) | (lo[j] & 0x7fffffff)) >>> 0;
      let nh = xh >>> 1;
      let nl = ((xl >>> 1) | ((xh & 1) << 31)) >>> 0;
      if (xl & 1) {
        nh = (nh ^ 0xb5026f5a) >>> 0;
        nl = (nl ^ 0xa96619e9) >>> 0;
      }
      const k = (i + M) % N;
      hi[i] = (hi[k] ^ nh) >>> 0;
      lo[i] = (lo[k] ^ nl) >>> 0;
    }
    idx = 0;
  };
  /** the next 64-bit output as the nearest double (one rounding, like C++'s uint64 -> double) */
  const draw = (): number => {
    if (idx >= N) twist();
    let yh = hi[idx];
    let yl = lo[idx];
    idx++;
    // y ^= (y >> 29) & 0x5555555555555555
    let th = yh >>> 29;
    let tl = ((yl >>> 29) | (yh << 3)) >>> 0;
    yh = (yh ^ (th & 0x55555555)) >>> 0;
    yl = (yl ^ (tl & 0x55555555)) >>> 0;
    // y ^= (y << 17) & 0x71D67FFFEDA60000
    th = ((yh << 17) | (yl >>> 15)) >>> 0;
    tl = (yl << 17) >>> 0;
    yh = (yh ^ (th & 0x71d67fff)) >>> 0;
    yl = (yl ^ (tl & 0xeda60000)) >>> 0;
    // y ^= (y << 37) & 0xFFF7EEE000000000
    th = (yl << 5) >>> 0;
    yh = (yh ^ (th & 0xfff7eee0)) >>> 0;
    // y ^= y >> 43
    yl = (yl ^ (yh >>> 11)) >>> 0;
    return yh * 4294967296 + yl;
  };
  const TWO64 = 18446744073709551616;
  const BELOW_ONE = 1 - 2 ** -53; // std::nextafter(1.0, 0.0)
  let t = 0;
  return {
    next: () => {
      let u = draw() / TWO64;
      if (u >= 1) u = BELOW_ONE;
      t += (-Math.log(1 - u) / rateHz) * 1e9;
      return Math.round(t);
    },
  };
}
