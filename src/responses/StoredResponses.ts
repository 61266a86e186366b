import type { ResponseStore, StoredResponse } from '../core/ResponseStore.js';
import { FlintError } from '../errors/FlintError.js';
import type { ConversationItem, InputItem } from '../protocol/responses/items.js';
import type { ResponseObject } from '../protocol/responses/ResponseStream.js';

/** The conversation a response continues from: its input and output items. */
export interface Conversation {
  readonly inputItems: readonly ConversationItem[];
  readonly outputItems: readonly ConversationItem[];
  /** The session (lineage) key of the response: see StoredResponse.sessionKey. */
  readonly sessionKey?: string;
}

/**
 * Stored-response bookkeeping of the Responses API: saving finished responses, looking up the
 * conversation a `previous_response_id` continues and the items `item_reference`s name, and the
 * read routes (retrieve, delete, input items).
 */
export class StoredResponses {
  readonly #store: ResponseStore;

  constructor(store: ResponseStore) {
    this.#store = store;
  }

  save(response: ResponseObject, conversation: Conversation, owner: string): void {
    this.#store.save({
      id: response.id,
      owner,
      createdAtS: response.created_at,
      response: response as unknown as Record<string, unknown>,
      inputItems: conversation.inputItems as unknown as Array<Record<string, unknown>>,
      outputItems: conversation.outputItems as unknown as Array<Record<string, unknown>>,
      sessionKey: conversation.sessionKey,
    });
  }

  /** The conversation `previous_response_id` names: the connection's own first, then `owner`'s stored ones. */
  previous(id: string, owner: string, findLocal?: (id: string) => Conversation | undefined): Conversation {
    const local = findLocal?.(id);
    if (local) return local;
    const stored = this.#store.get(id, owner);
    if (!stored) throw new FlintError('FLINT_ERR_PREVIOUS_RESPONSE_NOT_FOUND', { param: 'previous_response_id', details: { id } });
    return { inputItems: stored.inputItems as unknown as ConversationItem[], outputItems: stored.outputItems as unknown as ConversationItem[], sessionKey: stored.sessionKey };
  }

  /**
   * Replaces `item_reference`s with the items they name: from the conversation being continued,
   * else from stored responses. An unknown id is a 400 naming the item.
   */
  resolveReferences(input: readonly InputItem[], previous: Conversation | undefined, owner: string): ConversationItem[] {
    return input.map((item, i) => {
      if (item.type !== 'item_reference') return item;
      const known = previous && [...previous.inputItems, ...previous.outputItems].find((candidate) => candidate.id === item.id);
      const found = known ?? (this.#store.findItem(item.id, owner) as unknown as ConversationItem | undefined);
      if (!found) throw new FlintError('FLINT_ERR_INVALID_VALUE', { param: `input[${i}].id`, details: { detail: `No stored item with id '${item.id}' was found for the item_reference at input[${i}].` } });
      return found;
    });
  }

  /** `GET /v1/responses/{id}`: `owner`'s responses only; anyone else gets 404. */
  retrieve(id: string, owner: string): Record<string, unknown> {
    return this.#stored(id, owner).response;
  }

  /** `DELETE /v1/responses/{id}`. */
  delete(id: string, owner: string): { id: string; object: 'response.deleted'; deleted: true } {
    if (!this.#store.delete(id, owner)) throw new FlintError('FLINT_ERR_RESPONSE_NOT_FOUND', { details: { id } });
    return { id, object: 'response.deleted', deleted: true };
  }

  /** `GET /v1/responses/{id}/input_items`, paginated like every OpenAI list. */
  inputItems(id: string, owner: string, query: { limit?: number; order?: 'asc' | 'desc'; after?: string; before?: string }) {
    const items = [...this.#stored(id, owner).inputItems] as Array<Record<string, unknown> & { id: string }>;
    if (query.order !== 'asc') items.reverse();
    let start = 0;
    let end = items.length;
    if (query.after) start = indexOrThrow(items, query.after, 'after') + 1;
    if (query.before) end = indexOrThrow(items, query.before, 'before');
    const limit = query.limit ?? 20;
    const page = items.slice(start, Math.max(start, end)).slice(0, limit);
    return { object: 'list' as const, data: page, first_id: page[0]?.id ?? null, last_id: page.at(-1)?.id ?? null, has_more: start + page.length < end };
  }

  #stored(id: string, owner: string): StoredResponse {
    const stored = this.#store.get(id, owner);
    if (!stored) throw new FlintError('FLINT_ERR_RESPONSE_NOT_FOUND', { details: { id } });
    return stored;
  }
}

function indexOrThrow(items: Array<{ id: string }>, id: string, param: string): number {
  const at = items.findIndex((item) => item.id === id);
  if (at === -1) throw new FlintError('FLINT_ERR_INVALID_VALUE', { param, details: { detail: `No input item with id '${id}'.` } });
  return at;
}
