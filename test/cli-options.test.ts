/**
 * The shared parsers of option values (src/cli/options.ts): what each accepts, its bounds, and the
 * one-line message a bad value gets (commander prints it after the option's name; exit 2).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { describe, expect, it } from 'vitest';
import {
  argFrom,
  choiceArg,
  collectPids,
  duration,
  durationArg,
  durationOption,
  integerArg,
  listArg,
  listDefault,
  numberArg,
  secondsOption,
  shareArg,
} from '../src/cli/options.js';

/** the message a parser throws for `v`, checking that it is a one-line InvalidArgumentError */
function refusal(parse: (v: string) => unknown, v: string): string {
  let caught: unknown;
  try {
    parse(v);
  } catch (err) {
    caught = err;
  }
  expect(caught, `"${v}" should be refused`).toBeInstanceOf(InvalidArgumentError);
  const message = (caught as Error).message;
  expect(message).not.toMatch(/\n/);
  return message;
}

describe('integerArg', () => {
  it('accepts whole numbers from min to max', () => {
    const p = integerArg({ min: 1, max: 10 });
    expect(p('1')).toBe(1);
    expect(p('10')).toBe(10);
    expect(p(' 7 ')).toBe(7);
    expect(integerArg()('0')).toBe(0);
    expect(integerArg({ min: 0 })('123456789')).toBe(123456789);
  });

  it('refuses values out of bounds, signs, fractions, exponents and words', () => {
    const p = integerArg({ min: 1, max: 10 });
    for (const v of ['0', '11', '-1', '+1', '1.5', '1e1', '0x5', '', ' ', 'abc', '5x']) expect(refusal(p, v)).toBe(`not an integer from 1 to 10: "${v}"`);
  });

  it('says "an integer >= min" without a max, and refuses integers beyond 2^53', () => {
    const p = integerArg({ min: 2 });
    expect(refusal(p, '1')).toBe('not an integer >= 2: "1"');
    expect(p(String(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER);
    expect(refusal(p, '99999999999999999999')).toBe('not an integer >= 2: "99999999999999999999"');
  });

  it('names the value with what, and adds the hint', () => {
    expect(refusal(integerArg({ min: 1, max: 9999, what: 'a number of runs' }), '0')).toBe('not a number of runs: "0"');
    const prio = integerArg({ max: 15, what: 'a KFD queue priority', hint: '0..15' });
    expect(prio('15')).toBe(15);
    expect(refusal(prio, '16')).toBe('not a KFD queue priority: "16" (0..15)');
  });
});

describe('numberArg', () => {
  it('accepts finite numbers within the bounds', () => {
    const p = numberArg({ min: 0 });
    expect(p('0')).toBe(0);
    expect(p('0.5')).toBe(0.5);
    expect(p('1e3')).toBe(1000);
    expect(numberArg()('-2.5')).toBe(-2.5);
    const r = numberArg({ min: 0.5, max: 4 });
    expect(r('0.5')).toBe(0.5);
    expect(r('4')).toBe(4);
  });

  it('exclusive refuses min itself', () => {
    const p = numberArg({ min: 0, exclusive: true });
    expect(p('0.001')).toBe(0.001);
    expect(refusal(p, '0')).toBe('not a number > 0: "0"');
    expect(refusal(numberArg({ min: 0 }), '-1')).toBe('not a number >= 0: "-1"');
  });

  it('refuses empty values, words, infinities and values beyond max', () => {
    const p = numberArg({ min: 0.5, max: 4 });
    for (const v of ['', ' ', 'abc', 'Infinity', 'NaN', '0.4', '4.1']) expect(refusal(p, v)).toBe(`not a number from 0.5 to 4: "${v}"`);
    // an empty value is not 0
    expect(refusal(numberArg({ min: 0 }), '')).toBe('not a number >= 0: ""');
    expect(refusal(numberArg({ max: 1 }), '2')).toBe('not a number <= 1: "2"');
  });

  it('names the value with what', () => {
    expect(refusal(numberArg({ min: 0, exclusive: true, what: 'a positive number' }), '-3')).toBe('not a positive number: "-3"');
  });
});

describe('shareArg', () => {
  const p = shareArg();
  it('accepts percentages and fractions strictly between 0 and 1', () => {
    expect(p('10%')).toBeCloseTo(0.1);
    expect(p('12.5%')).toBeCloseTo(0.125);
    expect(p('0.25')).toBe(0.25);
    expect(p(' 50% ')).toBeCloseTo(0.5);
  });
  it('refuses 0, 1, more, and words', () => {
    for (const v of ['0', '0%', '1', '100%', '150%', '-10%', '', 'ten']) expect(refusal(p, v)).toBe(`not a share: "${v}" (e.g. 10%)`);
  });
});

describe('choiceArg', () => {
  const p = choiceArg('layout', ['gpucolo', 'notes'] as const);
  it('accepts the names given', () => {
    expect(p('notes')).toBe('notes');
    expect(p('gpucolo')).toBe('gpucolo');
  });
  it('refuses others, listing the names', () => {
    expect(refusal(p, 'python')).toBe('unknown layout "python" (gpucolo, notes)');
    expect(refusal(p, '')).toBe('unknown layout "" (gpucolo, notes)');
  });
});

describe('listArg', () => {
  const ALLOWED = ['none', 'throttle', 'cu-mask'] as const;
  it('accepts comma lists of known names, ignoring spaces and empty items', () => {
    const p = listArg('mechanism', ALLOWED);
    expect(p('none')).toEqual(['none']);
    expect(p('none, throttle,cu-mask')).toEqual(['none', 'throttle', 'cu-mask']);
    expect(p('throttle,,none,')).toEqual(['throttle', 'none']);
  });
  it('refuses an unknown name, listing the known ones', () => {
    expect(refusal(listArg('mechanism', ALLOWED), 'none,bogus')).toBe('unknown mechanism "bogus" (none, throttle, cu-mask)');
    expect(refusal(listArg('source', ['sysfs', 'debugfs']), 'nvml')).toBe('unknown source "nvml" (sysfs, debugfs)');
  });
  it('refuses an empty list unless allowEmpty', () => {
    for (const v of ['', ',', ' , ']) expect(refusal(listArg('method', ALLOWED), v)).toBe('name at least one method');
    expect(listArg('energy source', ALLOWED, { allowEmpty: true })('')).toEqual([]);
  });
  it('check refuses known names that cannot be used here, in list order', () => {
    const p = listArg('mechanism', ALLOWED, { check: (m) => (m === 'none' ? 'none has no knob' : null) });
    expect(p('throttle,cu-mask')).toEqual(['throttle', 'cu-mask']);
    expect(refusal(p, 'throttle,none')).toBe('none has no knob');
    expect(refusal(p, 'bogus,none')).toBe('unknown mechanism "bogus" (none, throttle, cu-mask)');
  });
});

describe('durations', () => {
  it('duration: units or bare seconds, in ns', () => {
    expect(duration('100ms')).toBe(100e6);
    expect(duration('2')).toBe(2e9);
    expect(duration('0')).toBe(0);
    expect(refusal(duration, 'soon')).toMatch(/soon/);
  });
  it('durationArg: unit, positive, maxNs', () => {
    expect(durationArg({ unit: 'ms' })('1.5s')).toBe(1500);
    expect(durationArg({ unit: 's' })('500ms')).toBe(0.5);
    const pos = durationArg({ positive: true });
    expect(pos('1ms')).toBe(1e6);
    expect(refusal(pos, '0s')).toBe('must be longer than 0');
    const capped = durationArg({ maxNs: 60e9 });
    expect(capped('60s')).toBe(60e9);
    expect(refusal(capped, '61s')).toBe('at most 1m, got "61s"');
  });
});

describe('argFrom', () => {
  it('turns a thrown error into a usage error with the same message', () => {
    const p = argFrom((v: string) => {
      if (v !== 'ok') throw new Error(`bad value "${v}"`);
      return 1;
    });
    expect(p('ok')).toBe(1);
    expect(refusal(p, 'no')).toBe('bad value "no"');
  });
});

describe('collectPids', () => {
  it('collects repeated and comma-listed pids', () => {
    expect(collectPids('1,22', [7])).toEqual([7, 1, 22]);
    expect(collectPids(String(0x7fffffff))).toEqual([0x7fffffff]);
  });
  it('refuses 0, negatives, words and pids beyond the kernel maximum, naming the part', () => {
    for (const v of ['0', '-1', 'abc', String(0x7fffffff + 1)]) expect(refusal(collectPids, v)).toBe(`not a pid: "${v}"`);
    expect(refusal(collectPids, '12,x')).toBe('not a pid: "x"');
  });
});

describe('options built on the parsers', () => {
  const parse = (o: Option, args: string[]): Record<string, unknown> => {
    const cmd = new Command().exitOverride().configureOutput({ writeErr: () => undefined }).addOption(o);
    cmd.parse(args, { from: 'user' });
    return cmd.opts();
  };

  it('durationOption and secondsOption show their defaults as written', () => {
    expect(durationOption('--interval <d>', 'x', 1e9).defaultValueDescription).toBe('1s');
    expect(secondsOption('--grace <s>', 'x', 10).defaultValueDescription).toBe('10s');
    expect(parse(durationOption('--interval <d>', 'x', 1e9), ['--interval', '250ms'])).toEqual({ interval: 250e6 });
    expect(parse(secondsOption('--grace <s>', 'x', 10), ['--grace', '1.5'])).toEqual({ grace: 1.5 });
  });

  it('a value over durationOption\'s maximum is a usage error naming the option', () => {
    expect(() => parse(durationOption('--kernel <d>', 'x', undefined, 1e9), ['--kernel', '2s'])).toThrow(/--kernel <d>.*at most 1s, got "2s"/);
  });

  it('listDefault shows a list default as typed', () => {
    const o = listDefault(new Option('--sources <list>', 'x').argParser(listArg('source', ['sysfs', 'debugfs'])), ['sysfs', 'debugfs']);
    expect(o.defaultValueDescription).toBe('sysfs,debugfs');
    expect(parse(o, [])).toEqual({ sources: ['sysfs', 'debugfs'] });
    expect(parse(o, ['--sources', 'debugfs'])).toEqual({ sources: ['debugfs'] });
  });
});
