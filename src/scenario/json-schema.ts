/** The JSON Schema of scenario files (what a user writes: the zod input side), for editors. */
import { z } from 'zod';
import { scenarioSchema, SCENARIO_SCHEMA } from './schema.js';

export function scenarioJsonSchema(): Record<string, unknown> {
  const js = z.toJSONSchema(scenarioSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return {
    ...js,
    $id: 'https://github.com/gpucolo/gpucolo/schema/scenario.schema.json',
    title: `gpucolo scenario (${SCENARIO_SCHEMA})`,
    description: 'A co-location scenario for `gpucolo run`: tasks with priority, arrival, SLO and a probe and/or torch workload. Durations are strings with units ("20ms", "2s") or numbers of milliseconds; shares are "30%" or 0.3.',
  };
}
