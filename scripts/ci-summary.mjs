#!/usr/bin/env node
// Adds up vitest JSON reports, the C++ test log, python unittest logs (*.unittest.log) and the
// consumer test's log into the one line CI reads:
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
  } else if (file.endsWith('.unittest.log')) {
    // python unittest: "Ran N tests in ...", then "OK" or "FAILED (failures=a, errors=b, skipped=c)"
    const ran = /^Ran (\d+) tests? in /m.exec(text);
    if (!ran) {
      console.log(`ci-summary: no unittest tally in ${file}`);
      failed += 1;
      continue;
    }
    const count = (key) => Number(new RegExp(`${key}=(\\d+)`).exec(text)?.[1] ?? 0);
    const bad = count('failures') + count('errors');
    const skip = count('skipped');
    // a class skipped in setUpClass counts as skipped without being among the tests run
    const ok = Math.max(0, Number(ran[1]) - bad - skip);
    passed += ok;
    failed += bad;
    skipped += skip;
    console.log(`ci-summary: ${file}: ${ok} passed, ${bad} failed, ${skip} skipped`);
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
