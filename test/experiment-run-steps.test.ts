/** runErrorText (src/runners/experiment/runner.ts): the error message step of runOne, alone. */
import { describe, expect, it } from 'vitest';
import { runErrorText } from '../src/runners/experiment/runner.js';

describe('runErrorText', () => {
  it('interrupted beats the rest unless the run succeeded; gpucolo errors beat the attempt error', () => {
    expect(runErrorText({ interrupted: true, success: false, unexpected: 'x', finalError: 'y' })).toBe('interrupted');
    expect(runErrorText({ interrupted: true, success: true, unexpected: null, finalError: undefined })).toBeNull();
    expect(runErrorText({ interrupted: false, success: false, unexpected: 'cannot spawn', finalError: 'y' })).toBe('gpucolo error: cannot spawn');
    expect(runErrorText({ interrupted: false, success: false, unexpected: null, finalError: 'exit code 1' })).toBe('exit code 1');
    expect(runErrorText({ interrupted: false, success: false, unexpected: null, finalError: undefined })).toBe('failed');
    expect(runErrorText({ interrupted: false, success: true, unexpected: null, finalError: undefined })).toBeNull();
  });
});
