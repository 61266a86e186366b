/**
 * What an answer on the Anthropic, Ollama and /infill routes must look like, whatever was asked
 * (test/e2e/faults.test.ts): no 5xx but a documented overload (503, or Anthropic's 529, with
 * Retry-After); errors in the route's own envelope; a 200 shaped as its protocol's reply, and a
 * stream that ends with its protocol's terminal event and holds no server error.
 */

import type { IncomingHttpHeaders } from 'node:http';
import { errorCodes } from '../../src/errors/codes.js';
import type { Protocol, ProtocolCase } from './fuzzProtocols.js';

/** An HTTP answer as the test received it. */
export interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const keysOf = (v: Obj) => Object.keys(v).sort().join(',');

/** Anthropic's error type for an HTTP status (its errors page: other 4xx are invalid_request_error). */
export function anthropicErrorType(status: number): string {
  const known: Record<number, string> = { 400: 'invalid_request_error', 401: 'authentication_error', 403: 'permission_error', 404: 'not_found_error', 413: 'request_too_large', 429: 'rate_limit_error', 529: 'overloaded_error' };
  return known[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
}

/** Messages of the server-side errors (5xx but overload), as patterns: an Ollama error line carries only the text. */
const serverErrorMessages = Object.values(errorCodes)
  .filter((row) => row.status >= 500 && row.code !== 'server_overloaded')
  .map((row) => new RegExp(`^${row.message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\\\{\w+\\\}/g, '.*')}$`, 's'));
const isServerErrorMessage = (message: string) => serverErrorMessages.some((re) => re.test(message));

/** Why an error body is not in `protocol`'s envelope for `status`, or undefined. */
export function envelopeProblem(protocol: Protocol, status: number, body: unknown): string | undefined {
  if (!isObject(body)) return 'the error body is not a JSON object';
  if (protocol === 'anthropic') {
    const error = body.error;
    if (keysOf(body) !== 'error,type' || body.type !== 'error' || !isObject(error) || keysOf(error) !== 'message,type' || typeof error.message !== 'string') return 'not Anthropic\'s {"type":"error","error":{"type","message"}}';
    if (error.type !== anthropicErrorType(status)) return `Anthropic error type ${String(error.type)} for status ${status} (expected ${anthropicErrorType(status)})`;
    return undefined;
  }
  if (protocol === 'ollama') return keysOf(body) === 'error' && typeof body.error === 'string' && body.error.length > 0 ? undefined : 'not Ollama\'s {"error":"..."}';
  const error = body.error;
  if (keysOf(body) !== 'error' || !isObject(error) || typeof error.message !== 'string' || typeof error.type !== 'string' || !('param' in error) || !('code' in error)) return 'not the {"error":{"message","type","param","code"}} envelope';
  return undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** The request body as the server read it (undefined when it is no JSON object). */
function requestBody(c: ProtocolCase): Obj | undefined {
  const body = c.body ? parseJson(c.body.toString('utf8')) : undefined;
  return isObject(body) ? body : undefined;
}

/** What is wrong with `res` as the answer to `c`, or undefined when nothing is. */
export function checkProtocolAnswer(c: ProtocolCase, res: Answer): string | undefined {
  const text = res.body.toString('utf8');
  const contentType = String(res.headers['content-type'] ?? '');
  const route = c.path.split('?')[0];
  if (res.status >= 500) {
    const overloaded = c.protocol === 'anthropic' ? res.status === 529 : res.status === 503 && (c.protocol === 'ollama' || /"server_overloaded"/.test(text));
    if (!overloaded || res.headers['retry-after'] === undefined) return `status ${res.status}`;
  }
  if (c.expectStatus !== undefined && res.status !== c.expectStatus) return `status ${res.status}, expected ${c.expectStatus}`;
  if (res.status >= 400) {
    if (!contentType.startsWith('application/json')) return `an error with content-type ${contentType}`;
    const problem = envelopeProblem(c.protocol, res.status, parseJson(text));
    if (problem) return problem;
    const isEmbed = c.method === 'POST' && (route === '/api/embed' || route === '/api/embeddings');
    return isEmbed && !/embeddings are not supported/.test((parseJson(text) as Obj).error as string) ? 'an embeddings request refused without saying they are not supported' : undefined;
  }
  if (res.status !== 200) return `status ${res.status}`;
  const body = requestBody(c);
  switch (c.protocol) {
    case 'anthropic':
      if (route === '/v1/messages/count_tokens') return isObject(parseJson(text)) && Number.isInteger((parseJson(text) as Obj).input_tokens) ? undefined : 'count_tokens answered without input_tokens';
      if (body?.stream === true) return contentType.startsWith('text/event-stream') ? anthropicStreamProblem(text) : `a stream asked, ${contentType} answered`;
      return anthropicMessageProblem(parseJson(text));
    case 'ollama':
      return ollamaProblem(route, body, contentType, text);
    case 'openai':
      return 'a route outside the protocols answered 200';
    default: {
      const fields = Array.isArray(body?.response_fields) && body.response_fields.length > 0;
      if (body?.stream === true) return contentType.startsWith('text/event-stream') ? infillStreamProblem(text, fields) : `a stream asked, ${contentType} answered`;
      const result = parseJson(text);
      if (!isObject(result) || 'error' in result) return 'the /infill result is not an object';
      return fields || (result.stop === true && typeof result.content === 'string') ? undefined : 'the /infill result lacks stop: true';
    }
  }
}

/** SSE frames as `[event, data]` (event undefined for data-only frames); undefined when the text does not end a frame. */
function sseFrames(text: string): Array<[string | undefined, unknown]> | undefined {
  if (!text.endsWith('\n\n')) return undefined;
  return text
    .slice(0, -2)
    .split('\n\n')
    .map((frame) => {
      let event: string | undefined;
      let data = '';
      for (const line of frame.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      return [event, parseJson(data)];
    });
}

/** The Messages event sequence: message_start, well-nested content blocks, message_delta, message_stop; or an error event. */
function anthropicStreamProblem(text: string): string | undefined {
  const frames = sseFrames(text);
  if (!frames || frames.length === 0) return `the stream does not end with a complete event: ${JSON.stringify(text.slice(-200))}`;
  let open: number | undefined;
  let next = 0;
  let phase: 'before' | 'blocks' | 'delta' | 'stopped' = 'before';
  for (const [i, [event, data]] of frames.entries()) {
    if (!isObject(data) || data.type !== event) return `event ${String(event)} with data ${JSON.stringify(data)?.slice(0, 200)}`;
    if (phase === 'stopped') return `event ${event} after the terminal event`;
    if (event === 'error') {
      const error = data.error;
      if (!isObject(error) || typeof error.type !== 'string' || typeof error.message !== 'string') return `a malformed error event: ${JSON.stringify(data).slice(0, 200)}`;
      if (error.type === 'api_error') return `a server error in the stream: ${JSON.stringify(data).slice(0, 300)}`;
      phase = 'stopped';
      continue;
    }
    if (event === 'ping') continue;
    if (phase === 'before') {
      if (event !== 'message_start' || !isObject(data.message)) return `the stream begins with ${event}`;
      phase = 'blocks';
      continue;
    }
    switch (event) {
      case 'content_block_start':
        if (phase !== 'blocks' || open !== undefined || data.index !== next) return `content_block_start ${String(data.index)} while block ${String(open)} is open (next ${next})`;
        open = next++;
        break;
      case 'content_block_delta':
        if (open === undefined || data.index !== open) return `content_block_delta ${String(data.index)} outside its block`;
        break;
      case 'content_block_stop':
        if (open === undefined || data.index !== open) return `content_block_stop ${String(data.index)} outside its block`;
        open = undefined;
        break;
      case 'message_delta':
        if (open !== undefined || phase !== 'blocks') return 'message_delta while a block is open';
        phase = 'delta';
        break;
      case 'message_stop':
        if (phase !== 'delta') return 'message_stop without message_delta';
        phase = 'stopped';
        break;
      default:
        return `unknown event ${event} at ${i}`;
    }
  }
  return phase === 'stopped' ? undefined : `the stream ends without message_stop or an error: ${JSON.stringify(text.slice(-200))}`;
}

function anthropicMessageProblem(message: unknown): string | undefined {
  if (!isObject(message) || message.type !== 'message' || message.role !== 'assistant' || !Array.isArray(message.content)) return 'not a message object';
  if (!['end_turn', 'max_tokens', 'stop_sequence', 'tool_use'].includes(String(message.stop_reason))) return `stop_reason ${String(message.stop_reason)}`;
  return message.content.every((b) => isObject(b) && ['text', 'thinking', 'tool_use'].includes(String(b.type))) ? undefined : 'a content block of an unknown type';
}

function ollamaProblem(route: string, body: Obj | undefined, contentType: string, text: string): string | undefined {
  if (route === '/api/chat' || route === '/api/generate') {
    const isChat = route === '/api/chat';
    const isLoadOnly = !isChat && (body?.prompt === undefined || body.prompt === '') && (body?.suffix === undefined || body.suffix === '');
    if (body?.stream !== false && !isLoadOnly) return contentType.startsWith('application/x-ndjson') ? ndjsonProblem(text, isChat) : `a stream asked, ${contentType} answered`;
    const reply = parseJson(text);
    if (!isObject(reply) || reply.done !== true || typeof reply.done_reason !== 'string') return 'not a finished Ollama reply';
    return (isChat ? isObject(reply.message) && typeof reply.message.content === 'string' : typeof reply.response === 'string') ? undefined : 'an Ollama reply without its text';
  }
  const reply = parseJson(text);
  if (!isObject(reply)) return 'not a JSON object';
  if (route === '/api/show') return Array.isArray(reply.capabilities) && isObject(reply.model_info) ? undefined : 'a show reply without capabilities';
  if (route === '/api/version') return typeof reply.version === 'string' ? undefined : 'no version';
  return Array.isArray(reply.models) ? undefined : 'no models list';
}

/** NDJSON lines with `done: false`, then one `done: true` line or an `{"error": ...}` line. */
function ndjsonProblem(text: string, isChat: boolean): string | undefined {
  if (!text.endsWith('\n')) return `the stream does not end with a complete line: ${JSON.stringify(text.slice(-200))}`;
  const lines = text.slice(0, -1).split('\n').map(parseJson);
  for (const [i, line] of lines.entries()) {
    if (!isObject(line)) return `line ${i} is not a JSON object`;
    const isLast = i === lines.length - 1;
    if ('error' in line) {
      if (!isLast || keysOf(line) !== 'error' || typeof line.error !== 'string') return `an error line that does not end the stream: ${JSON.stringify(line).slice(0, 200)}`;
      return isServerErrorMessage(line.error) ? `a server error in the stream: ${line.error}` : undefined;
    }
    if (line.done !== isLast) return `line ${i} of ${lines.length} has done: ${String(line.done)}`;
    if (isChat ? !isObject(line.message) || line.message.role !== 'assistant' : typeof line.response !== 'string') return `line ${i} is not a ${isChat ? 'chat' : 'generate'} chunk`;
  }
  const last = lines.at(-1) as Obj;
  return typeof last.done_reason === 'string' ? undefined : 'the final line has no done_reason';
}

/** `data:` chunks with `stop: false`, then the final object (`stop: true`, or only `response_fields`), or an error. */
function infillStreamProblem(text: string, hasFields: boolean): string | undefined {
  const frames = sseFrames(text);
  if (!frames || frames.length === 0) return `the stream does not end with a complete event: ${JSON.stringify(text.slice(-200))}`;
  for (const [i, [, data]] of frames.entries()) {
    if (!isObject(data)) return `chunk ${i} is not a JSON object`;
    const isLast = i === frames.length - 1;
    if ('error' in data) {
      if (!isLast) return 'an error chunk that does not end the stream';
      const problem = envelopeProblem('infill', 400, data);
      if (problem) return `an error chunk: ${problem}`;
      const error = data.error as Obj;
      return error.type === 'server_error' || (error.type === 'service_unavailable_error' && error.code !== 'server_overloaded') ? `a server error in the stream: ${JSON.stringify(error).slice(0, 300)}` : undefined;
    }
    if (!isLast && (data.stop !== false || typeof data.content !== 'string')) return `chunk ${i} of ${frames.length} has stop: ${String(data.stop)}`;
    if (isLast && !hasFields && data.stop !== true) return `the stream ends without stop: true: ${JSON.stringify(data).slice(0, 200)}`;
  }
  return undefined;
}
