/** Fields never shown in a human line (request ids and pino's own bookkeeping stay in JSON logs). */
const hiddenKeys = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'reqId', 'req', 'res', 'responseTime', 'v']);

type LogRecord = Record<string, unknown>;

/**
 * The message part of a human log line (pino-pretty's `messageFormat`): the start-up summary as a
 * short block, one compact line per finished request, and `msg key=value ...` for the rest.
 * Pure, so the wording is tested without a terminal.
 */
export function formatLogLine(log: LogRecord): string {
  switch (log.msg) {
    case 'listening':
      return formatListening(log);
    case 'request finished':
      return formatRequest(log);
    case 'effective configuration':
      return 'configuration loaded (every key: --log-format json)';
    default:
      return formatGeneric(log);
  }
}

function formatListening(log: LogRecord): string {
  const lines = [`Flint listening on ${log.url}`];
  if (log.model !== undefined) {
    const file = log.modelFile ? `  ${log.modelFile}` : '';
    lines.push(`  model    ${log.model}${log.architecture ? ` (${log.architecture})` : ''}${file}`);
  }
  if (log.contextSize !== undefined) {
    const trained = log.trainContextSize ? `, trained for ${log.trainContextSize}` : '';
    lines.push(`  context  ${log.contextSize} tokens per slot${trained}`);
  }
  if (log.workers !== undefined) {
    lines.push(`  engine   ${log.workers} worker${log.workers === 1 ? '' : 's'} x ${log.slots} slot${log.slots === 1 ? '' : 's'}, threads ${log.threads} decode / ${log.batchThreads} prompt, gpu ${log.gpu}${log.backend === 'llama-server' ? ', llama-server' : ''}`);
  }
  if (log.metricsUrl !== undefined) lines.push(`  metrics  ${log.metricsUrl}${log.metricsToken ? ' (bearer token required)' : ''}`);
  if (log.url !== undefined) lines.push(`  clients  OpenAI base URL ${log.url}/v1, Anthropic ${log.url}, Ollama ${log.url}, WebSocket ${String(log.url).replace(/^http/, 'ws')}/v1/responses`);
  return lines.join('\n');
}

function formatRequest(log: LogRecord): string {
  const parts = [`${log.route ?? log.api} ${log.status ?? ''}`.trim()];
  if (log.outcome && log.outcome !== 'ok') parts[0] += ` ${log.outcome}`;
  if (log.promptTokens !== undefined) {
    const cached = typeof log.cachedTokens === 'number' && log.cachedTokens > 0 ? ` (${log.cachedTokens} cached)` : '';
    parts.push(`${log.promptTokens} prompt${cached} -> ${log.completionTokens ?? 0} tokens`);
  }
  const times: string[] = [];
  if (typeof log.ttftMs === 'number') times.push(`first token ${formatMs(log.ttftMs)}`);
  if (typeof log.durationMs === 'number') times.push(`total ${formatMs(log.durationMs)}`);
  if (times.length > 0) parts.push(times.join(', '));
  if (log.finishReason && log.finishReason !== 'stop') parts.push(String(log.finishReason));
  if (log.errorCode) parts.push(String(log.errorCode));
  return parts.join('  ');
}

function formatGeneric(log: LogRecord): string {
  const extras: string[] = [];
  for (const [key, value] of Object.entries(log)) {
    if (hiddenKeys.has(key) || value === undefined || value === null) continue;
    if (key === 'err' && typeof value === 'object') {
      const err = value as { message?: unknown; stack?: unknown };
      extras.push(typeof log.level === 'number' && log.level >= 50 && typeof err.stack === 'string' ? `\n${err.stack}` : `err=${JSON.stringify(String(err.message ?? ''))}`);
      continue;
    }
    if (typeof value === 'object') continue;
    extras.push(`${key}=${typeof value === 'string' && /\s/.test(value) ? JSON.stringify(value) : String(value)}`);
  }
  return [String(log.msg ?? ''), ...extras].join(' ');
}

function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}
