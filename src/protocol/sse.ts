/** SSE frame for APIs without `event:` lines (Chat, Completions). `json` is already serialized. */
export function sseData(json: string): string {
  return `data: ${json}\n\n`;
}

/** SSE frame with an `event:` line (Responses); the event name equals the JSON `type`. */
export function sseEvent(type: string, json: string): string {
  return `event: ${type}\ndata: ${json}\n\n`;
}

/** The Chat/Completions terminator. */
export const sseDone = 'data: [DONE]\n\n';
