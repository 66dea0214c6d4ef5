/**
 * What this gpucolo CLI offers, read from its --help text (pure): the check adapts to options that
 * other work adds (an in-process torch form, --allow-debug-trap) instead of assuming them.
 */

/** The long option flags a commander help text lists ('--kfd-priority', '--no-kfd-check', ...). */
export function helpOptions(help: string): Map<string, { takesValue: boolean; line: string }> {
  const out = new Map<string, { takesValue: boolean; line: string }>();
  for (const line of help.split('\n')) {
    const m = /^\s{1,6}(?:-\w,\s*)?(--[a-z0-9][a-z0-9-]*)(\s+[<[])?/.exec(line);
    if (m) out.set(m[1], { takesValue: !!m[2], line: line.trim() });
  }
  return out;
}

/** The choices commander lists for an option (`(choices: "a", "b", default: "a")`), or null. */
export function optionChoices(help: string, flag: string): string[] | null {
  const flat = help.replace(/\s+/g, ' ');
  const at = flat.indexOf(`${flag} <`);
  if (at < 0) return null;
  const rest = flat.slice(at);
  // the choices of this option, before the next option starts
  const next = rest.slice(2).search(/ --?[a-z]/);
  const own = next >= 0 ? rest.slice(0, next + 2) : rest;
  const m = /\(choices: ([^)]*)\)/.exec(own);
  if (!m) return null;
  return [...m[1].matchAll(/"([^"]+)"/g)].map((x) => x[1]);
}

const IN_PROCESS = /in-?process|inproc|same-?process|shared-?process|one-?process|single-?process/i;

/**
 * How `gpucolo run` selects the in-process torch form (HP and LP models in one worker process),
 * or null when this CLI has none: a --form choice beyond auto/probe/torch that names it, else a
 * flag without a value (used with --form torch).
 */
export function inProcessFormArgs(runHelp: string): { args: string[]; how: string } | null {
  const choices = optionChoices(runHelp, '--form') ?? [];
  const extra = choices.filter((c) => !['auto', 'probe', 'torch'].includes(c));
  const named = extra.find((c) => IN_PROCESS.test(c)) ?? extra.find((c) => /torch/i.test(c) && /shared|single|one|proc/i.test(c));
  if (named) return { args: ['--form', named], how: `--form ${named}` };
  for (const [flag, o] of helpOptions(runHelp)) {
    if (!o.takesValue && IN_PROCESS.test(flag)) return { args: ['--form', 'torch', flag], how: flag };
  }
  // an option with a value whose choices name it, e.g. --torch-workers <mode> (choices: "per-model", "in-process")
  for (const [flag, o] of helpOptions(runHelp)) {
    if (!o.takesValue || flag === '--form') continue;
    // ... or --torch-process <form> (choices: "per-model", "single"): the form gpucolo run has today
    const c = (optionChoices(runHelp, flag) ?? []).find((x) => IN_PROCESS.test(x) || (/process/i.test(flag) && x === 'single'));
    if (c) return { args: ['--form', 'torch', flag, c], how: `${flag} ${c}` };
  }
  return null;
}
