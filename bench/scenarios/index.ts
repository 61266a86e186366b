/** Every scenario, in the order `npm run bench` runs them. */
import type { Scenario } from '../lib/types.js';
import { agentLoopScenario } from './agentLoop.js';
import { concurrencyScenario } from './concurrency.js';
import { decodeScenario } from './decode.js';
import { diskCacheScenario } from './diskCache.js';
import { idleSessionsScenario } from './idleSessions.js';
import { longContextScenario } from './longContext.js';
import { predictedOutputScenario } from './predictedOutput.js';
import { promptCacheScenario } from './promptCache.js';
import { sessionsScenario } from './sessions.js';
import { ttftScenario } from './ttft.js';

export const scenarios: readonly Scenario[] = [
  decodeScenario,
  ttftScenario,
  agentLoopScenario,
  longContextScenario,
  concurrencyScenario,
  promptCacheScenario,
  diskCacheScenario,
  idleSessionsScenario,
  sessionsScenario,
  predictedOutputScenario,
];
