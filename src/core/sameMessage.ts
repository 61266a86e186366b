import type { ChatMessage } from './types.js';

/** Whether two chat messages say the same (identical objects and strings are not compared further). */
export function sameMessage(a: ChatMessage, b: ChatMessage): boolean {
  if (a === b) return true;
  if (a.role !== b.role || a.content !== b.content || a.toolCallId !== b.toolCallId || a.reasoning !== b.reasoning) return false;
  const x = a.toolCalls ?? [];
  const y = b.toolCalls ?? [];
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i].id !== y[i].id || x[i].name !== y[i].name || x[i].arguments !== y[i].arguments) return false;
  return true;
}
