import type { Scenario, ScenarioResult } from './types.js';

/** A scenario's result: `partial` (with the reason) when it stopped at its time limit, else `ok`. */
export function finished(scenario: Pick<Scenario, 'name' | 'title'>, stoppedEarly: boolean, fields: Omit<ScenarioResult, 'name' | 'title' | 'status' | 'note'>): ScenarioResult {
  return {
    name: scenario.name,
    title: scenario.title,
    status: stoppedEarly ? 'partial' : 'ok',
    note: stoppedEarly ? 'stopped at the time limit' : undefined,
    ...fields,
  };
}
