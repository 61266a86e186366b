import type { MemberLoad } from '../core/members.js';
import type { UpstreamKind } from './upstreamRequest.js';

/** A member's status report or metrics: well under this for any sane pool. */
const maxStatusChars = 1024 * 1024;

/**
 * A member's own load where its kind exports it: Flint's `/v1/flint/status`, llama-server's
 * `/slots` and its `--metrics` queue, vLLM's `/metrics`. Undefined when it says nothing usable.
 * `get` fetches a path of the member (with its key).
 */
export async function fetchMemberLoad(settings: { readonly kind: UpstreamKind; readonly slots: number }, get: (pathname: string) => Promise<Response>): Promise<MemberLoad | undefined> {
  const read = async (pathname: string) => {
    const res = await get(pathname);
    const body = await readCapped(res, maxStatusChars);
    return res.ok ? body : undefined;
  };
  switch (settings.kind) {
    case 'flint': {
      const body = await read('/v1/flint/status');
      if (body === undefined) return undefined;
      const status = JSON.parse(body) as { workers?: Array<{ slots?: Array<{ busy?: unknown }> }>; queue?: { depth?: unknown } };
      const slots = (status.workers ?? []).flatMap((w) => w.slots ?? []);
      return { busySlots: slots.filter((s) => s.busy === true).length, totalSlots: slots.length, waiting: typeof status.queue?.depth === 'number' ? status.queue.depth : 0 };
    }
    case 'llama-server': {
      const body = await read('/slots');
      if (body === undefined) return undefined;
      const slots = JSON.parse(body) as Array<{ is_processing?: unknown }>;
      if (!Array.isArray(slots)) return undefined;
      const metrics = await read('/metrics').catch(() => undefined);
      const deferred = metrics === undefined ? undefined : promSum(metrics, 'llamacpp:requests_deferred');
      return { busySlots: slots.filter((s) => s?.is_processing === true).length, totalSlots: slots.length, waiting: deferred ?? 0 };
    }
    case 'vllm': {
      const body = await read('/metrics');
      if (body === undefined) return undefined;
      const running = promSum(body, 'vllm:num_requests_running');
      if (running === undefined) return undefined;
      const kvUsage = promSum(body, 'vllm:gpu_cache_usage_perc') ?? promSum(body, 'vllm:kv_cache_usage_perc');
      // vLLM does not export its sequence limit: the front's own budget for it stands in.
      return { busySlots: running, totalSlots: Math.max(running, settings.slots), waiting: promSum(body, 'vllm:num_requests_waiting') ?? 0, kvUsage };
    }
    default:
      return undefined;
  }
}

/** All its slots busy with requests waiting, as its load says: new sessions go elsewhere while another can take them. */
export function isSaturatedBy(load: MemberLoad | undefined, kind: UpstreamKind): boolean {
  // vLLM holds requests back only when full; a llama-server may defer one pinned to a busy slot.
  return load !== undefined && load.waiting > 0 && (kind === 'vllm' || load.busySlots >= load.totalSlots);
}

/** The sum over label sets of one sample family in a Prometheus text exposition; undefined when absent. */
export function promSum(text: string, name: string): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const value = Number(rest.slice(rest[0] === '{' ? rest.lastIndexOf('}') + 1 : 0).trim().split(/\s+/)[0]);
    if (Number.isFinite(value)) sum = (sum ?? 0) + value;
  }
  return sum;
}

/** A response's text, at most `maxChars` of it (a hostile or broken member cannot grow memory). */
export async function readCapped(res: Response, maxChars: number): Promise<string> {
  if (!res.body) return '';
  const decoder = new TextDecoder();
  let text = '';
  for await (const bytes of res.body as AsyncIterable<Uint8Array>) {
    text += decoder.decode(bytes, { stream: true });
    if (text.length >= maxChars) {
      await res.body.cancel().catch(() => undefined);
      return text.slice(0, maxChars);
    }
  }
  return text;
}
