import type { WorkerClient } from '../pool/WorkerClient.js';

/** A slot held by one request until the worker reports it has stopped. */
export interface SlotLease {
  readonly worker: WorkerClient;
  readonly slot: number;
}

interface SlotState {
  readonly worker: WorkerClient;
  readonly slot: number;
  isBusy: boolean;
  lastUsed: number;
  cacheKey: string | undefined;
}

/**
 * Every slot of every live worker and whether it is busy. Picks the idle slot that last
 * served the same cache key, else the least recently used idle slot.
 */
export class SlotTable {
  #slots: SlotState[] = [];
  #clock = 0;

  get total(): number {
    return this.#slots.length;
  }

  get busy(): number {
    let n = 0;
    for (const s of this.#slots) if (s.isBusy) n++;
    return n;
  }

  addWorker(worker: WorkerClient, slots: number): void {
    for (let slot = 0; slot < slots; slot++) this.#slots.push({ worker, slot, isBusy: false, lastUsed: 0, cacheKey: undefined });
  }

  /** Drops a worker's slots; returns whether it had any. */
  removeWorker(index: number): boolean {
    const before = this.#slots.length;
    this.#slots = this.#slots.filter((s) => s.worker.index !== index);
    return this.#slots.length !== before;
  }

  lease(cacheKey: string | undefined): SlotLease | undefined {
    let best: SlotState | undefined;
    for (const s of this.#slots) {
      if (s.isBusy || !s.worker.isAlive) continue;
      if (cacheKey !== undefined && s.cacheKey === cacheKey) {
        best = s;
        break;
      }
      if (!best || s.lastUsed < best.lastUsed) best = s;
    }
    if (!best) return undefined;
    best.isBusy = true;
    best.lastUsed = ++this.#clock;
    best.cacheKey = cacheKey;
    return { worker: best.worker, slot: best.slot };
  }

  release(lease: SlotLease): void {
    const state = this.#slots.find((s) => s.worker === lease.worker && s.slot === lease.slot);
    if (state) state.isBusy = false;
  }
}
