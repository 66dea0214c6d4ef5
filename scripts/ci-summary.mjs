#!/usr/bin/env node
// Adds up vitest JSON reports, the C++ test log and the consumer test's log into the one line CI reads:
// "N passed, N failed" (last line). A missing report counts as a failure.
import fs from 'node:fs';

let passed = 0;
let failed = 0;
let skipped = 0;
for (const file of process.argv.slice(2)) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    console.log(`ci-summary: missing ${file}`);
    failed += 1;
    continue;
  }
  if (file.endsWith('.json')) {
    try {
      const r = JSON.parse(text);
      // a test file that failed to load has no test results of its own: count it once
      const broken = (r.testResults ?? []).filter((t) => t.status === 'failed' && (t.assertionResults ?? []).length === 0).length;
      passed += r.numPassedTests;
      failed += r.numFailedTests + broken;
      skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
      console.log(`ci-summary: ${file}: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${broken} test file(s) failed to load`);
    } catch {
      console.log(`ci-summary: unreadable ${file}`);
      failed += 1;
    }
  } else {
    // the C++ harness prints "native tests: N passed, M failed", scripts/consumer-test.mjs
    // "consumer tests: N passed, M failed"
    const m = /(?:native|consumer) tests: (\d+) passed, (\d+) failed(?:, (\d+) skipped)?/.exec(text);
    if (!m) {
      console.log(`ci-summary: no test tally in ${file}`);
      failed += 1;
    } else {
      passed += Number(m[1]);
      failed += Number(m[2]);
      skipped += Number(m[3] ?? 0);
      console.log(`ci-summary: ${file}: ${m[1]} passed, ${m[2]} failed`);
    }
  }
}
console.log(`(${skipped} skipped)`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
