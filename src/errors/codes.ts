/**
 * Every error Flint can report, declared once. A row fixes the HTTP status, the OpenAI `type`
 * and wire `code`; handlers never choose a status themselves. Codes are never renamed or reused.
 */
export const errorCodes = {
  FLINT_ERR_BAD_JSON: { status: 400, type: 'invalid_request_error', code: null, message: 'We could not parse the JSON body of your request. ({detail})' },
  FLINT_ERR_INVALID_VALUE: { status: 400, type: 'invalid_request_error', code: 'invalid_value', message: '{detail}' },
  FLINT_ERR_MISSING_PARAM: { status: 400, type: 'invalid_request_error', code: 'missing_required_parameter', message: "Missing required parameter: '{param}'." },
  FLINT_ERR_UNSUPPORTED_PARAM: { status: 400, type: 'invalid_request_error', code: 'unsupported_parameter', message: "Unsupported parameter: '{param}'. {detail}" },
  FLINT_ERR_UNSUPPORTED_TOOL: { status: 400, type: 'invalid_request_error', code: 'unsupported_tool_type', message: '{detail}' },
  FLINT_ERR_PREVIOUS_RESPONSE_NOT_FOUND: { status: 400, type: 'invalid_request_error', code: 'previous_response_not_found', message: "Previous response with id '{id}' not found." },
  FLINT_ERR_RESPONSE_NOT_FOUND: { status: 404, type: 'invalid_request_error', code: null, message: "No response found with id '{id}'." },
  FLINT_ERR_RESPONSE_NOT_CANCELLABLE: { status: 400, type: 'invalid_request_error', code: null, message: "Response '{id}' is already {status} and cannot be cancelled." },
  FLINT_ERR_WS_INVALID_JSON: { status: 400, type: 'invalid_request_error', code: 'invalid_json', message: 'The frame is not a JSON object: {detail}' },
  FLINT_ERR_WS_UNKNOWN_EVENT: { status: 400, type: 'invalid_request_error', code: 'unknown_event_type', message: "Unknown client event type '{eventType}'. Send response.create or response.cancel." },
  FLINT_ERR_WS_INVALID_FRAME: { status: 400, type: 'invalid_request_error', code: 'invalid_frame', message: 'Binary frames are not supported; send JSON text frames.' },
  FLINT_ERR_WS_STEERING: { status: 400, type: 'invalid_request_error', code: 'steering_not_supported', message: "'{eventType}' is not supported; cancel with response.cancel and continue with previous_response_id." },
  FLINT_ERR_WS_TOO_MANY_INFLIGHT: { status: 429, type: 'rate_limit_error', code: 'too_many_inflight_responses', message: 'At most {limit} responses may run or wait on one connection. Please try again in {retryAfterS}s.' },
  FLINT_ERR_WS_DRAINING: { status: 400, type: 'invalid_request_error', code: 'websocket_connection_limit_reached', message: 'This server is shutting down. Open a new connection to continue.' },
  FLINT_ERR_WS_CONNECTION_LIMIT: { status: 400, type: 'invalid_request_error', code: 'websocket_connection_limit_reached', message: 'This connection reached its {limitMinutes}-minute limit. Open a new connection to continue.' },
  FLINT_ERR_WS_RESPONSE_CANCELLED: { status: 400, type: 'invalid_request_error', code: 'response_cancelled', message: 'The response was cancelled before it started.' },
  FLINT_ERR_WS_REQUIRED: { status: 426, type: 'invalid_request_error', code: 'websocket_required', message: 'GET /v1/responses is the WebSocket mode of the Responses API: send an Upgrade: websocket request, or POST /v1/responses.' },
  FLINT_ERR_WS_TOO_MANY_SOCKETS: { status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded', message: 'Too many open WebSocket connections ({open}). Please try again in {retryAfterS}s.' },
  FLINT_ERR_JSON_TOO_COMPLEX: { status: 400, type: 'invalid_request_error', code: 'invalid_value', message: "Invalid value for '{param}': the request has {detail}." },
  FLINT_ERR_UNKNOWN_PARAM: { status: 400, type: 'invalid_request_error', code: 'unknown_parameter', message: "Unrecognized request argument supplied: '{param}'." },
  FLINT_ERR_CONTEXT_OVERFLOW: { status: 400, type: 'invalid_request_error', code: 'context_length_exceeded', message: "This model's maximum context length is {contextSize} tokens. However, your request has {promptTokens} tokens{detail}. Please reduce the length of the input." },
  FLINT_ERR_UNAUTHORIZED: { status: 401, type: 'invalid_request_error', code: 'invalid_api_key', message: 'Incorrect or missing API key. Send it as "Authorization: Bearer <key>".' },
  FLINT_ERR_MODEL_NOT_FOUND: { status: 404, type: 'invalid_request_error', code: 'model_not_found', message: "The model '{model}' does not exist. This server serves: {available}." },
  FLINT_ERR_ROUTE_NOT_FOUND: { status: 404, type: 'invalid_request_error', code: null, message: 'Unknown route: {method} {url}.' },
  FLINT_ERR_METHOD_NOT_ALLOWED: { status: 405, type: 'invalid_request_error', code: null, message: 'Method {method} is not allowed on {url}.' },
  FLINT_ERR_BODY_TOO_LARGE: { status: 413, type: 'invalid_request_error', code: 'request_too_large', message: 'The request body is larger than the limit of {limitBytes} bytes.' },
  FLINT_ERR_CLIENT_CLOSED: { status: 499, type: 'invalid_request_error', code: 'client_closed', message: 'The client closed the request.' },
  FLINT_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, type: 'invalid_request_error', code: null, message: "Unsupported Content-Type '{contentType}': send application/json." },
  FLINT_ERR_ORIGIN_FORBIDDEN: { status: 403, type: 'invalid_request_error', code: 'origin_not_allowed', message: "Origin '{origin}' may not open a WebSocket here (server.corsOrigins)." },
  FLINT_ERR_RATE_LIMITED: { status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded', message: 'Rate limit reached for your key ({limit}). Please try again in {retryAfterS}s.' },
  FLINT_ERR_QUEUE_FULL: { status: 503, type: 'service_unavailable_error', code: 'server_overloaded', message: 'The server is at capacity ({queued} requests queued). Please try again in {retryAfterS}s.' },
  FLINT_ERR_INTERNAL: { status: 500, type: 'server_error', code: 'server_error', message: 'The server had an error while processing your request.' },
  FLINT_ERR_NOT_READY: { status: 503, type: 'service_unavailable_error', code: 'server_unavailable', message: 'The model is not ready: {reason}. Please try again in {retryAfterS}s.' },
  FLINT_ERR_QUEUE_TIMEOUT: { status: 503, type: 'service_unavailable_error', code: 'server_overloaded', message: 'No inference slot became free within {waitMs} ms. Please try again in {retryAfterS}s.' },
  FLINT_ERR_WORKER_CRASHED: { status: 503, type: 'service_unavailable_error', code: 'server_unavailable', message: 'The inference worker stopped while serving this request ({detail}). It is safe to retry.' },
  FLINT_ERR_SHUTTING_DOWN: { status: 503, type: 'service_unavailable_error', code: 'server_unavailable', message: 'The server is shutting down. Please try again in {retryAfterS}s.' },
  FLINT_ERR_DEADLINE: { status: 504, type: 'server_error', code: 'timeout', message: 'The request did not finish within the server deadline ({detail}).' },
  FLINT_ERR_CONFIG: { status: 500, type: 'server_error', code: 'server_error', message: 'Invalid configuration: {detail}' },
  FLINT_ERR_MODEL_DOWNLOAD: { status: 502, type: 'server_error', code: 'model_download_failed', message: 'Downloading {model} failed: {detail}' },
  FLINT_ERR_MODEL_INVALID: { status: 502, type: 'server_error', code: 'model_invalid', message: "'{file}' is not a usable GGUF file: {detail}" },
  FLINT_ERR_MODEL_CHECKSUM: { status: 502, type: 'server_error', code: 'model_checksum_mismatch', message: "'{file}' does not match its checksum: SHA-256 {actual}, but {source} states {expected}. The download is corrupt or the file changed upstream" },
  FLINT_ERR_MODEL_LOAD: { status: 503, type: 'service_unavailable_error', code: 'server_unavailable', message: 'The model could not be loaded: {detail}' },
  FLINT_ERR_UPSTREAM_UNAVAILABLE: { status: 503, type: 'service_unavailable_error', code: 'server_unavailable', message: "The engine '{member}' is unavailable ({detail}). It is safe to retry." },
  FLINT_ERR_UPSTREAM_FAILED: { status: 502, type: 'server_error', code: 'upstream_error', message: "The engine '{member}' failed while serving this request: {detail}" },
  FLINT_ERR_UPSTREAM_REJECTED: { status: 400, type: 'invalid_request_error', code: null, message: "The engine '{member}' refused the request: {detail}" },
} as const satisfies Record<string, ErrorCodeRow>;

/** One row of the error table. */
export interface ErrorCodeRow {
  readonly status: number;
  readonly type: string;
  readonly code: string | null;
  readonly message: string;
}

/** A Flint error code (`FLINT_ERR_*`). */
export type ErrorCode = keyof typeof errorCodes;

/** Whether `value` names a row of the error table. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(errorCodes, value);
}
