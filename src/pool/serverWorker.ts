import type { Logger } from '../core/Logger.js';
import type { ServerEndpoint, WorkerSettings } from '../ipc/messages.js';
import { WorkerClient } from './WorkerClient.js';

/** How to start the Flint worker process that renders for an engine server (its settings get the server's address). */
export interface ServerWorkerModule {
  readonly modulePath: string;
  readonly execArgv: readonly string[];
  readonly settings: WorkerSettings;
  readonly heartbeatIntervalMs: number;
  readonly heartbeatTimeoutMs: number;
}

/**
 * Starts a worker that drives `server` (vocabulary only, ServerSlot): a local llama-server of the
 * llama-server backend, or a member with `render: front`. Its slots are the server's.
 */
export function startServerWorker(
  module: ServerWorkerModule,
  options: { index: number; server: ServerEndpoint; contextSize: number; slots: number; startTimeoutMs: number; logger: Logger; routingName?: string },
): Promise<WorkerClient> {
  return WorkerClient.start({
    modulePath: module.modulePath,
    execArgv: module.execArgv,
    settings: { ...module.settings, contextSize: options.contextSize, slots: options.slots, server: options.server },
    index: options.index,
    startTimeoutMs: options.startTimeoutMs,
    heartbeatIntervalMs: module.heartbeatIntervalMs,
    heartbeatTimeoutMs: module.heartbeatTimeoutMs,
    logger: options.logger,
    routingName: options.routingName,
  });
}
