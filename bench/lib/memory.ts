/** Resident memory of this process (which hosts the gateway), measured after a full GC. */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { sleep } from './clock.js';

let collect: (() => void) | undefined;

/** A full GC without `--expose-gc` on the command line (the flag can be set at run time). */
function gc(): void {
  if (!collect) {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as () => void;
  }
  collect();
}

export interface MemorySnapshot {
  /** Resident set size: what the OS charges the process. */
  readonly rssMiB: number;
  /** Live JavaScript objects plus memory outside the heap (buffers): what sessions actually hold. */
  readonly heapAndExternalMiB: number;
}

/** Memory once timers have settled and garbage is collected (RSS keeps freed heap pages, so both are reported). */
export async function settledMemory(): Promise<MemorySnapshot> {
  await sleep(500);
  gc();
  await sleep(100);
  gc();
  const m = process.memoryUsage();
  return { rssMiB: m.rss / 2 ** 20, heapAndExternalMiB: (m.heapUsed + m.external) / 2 ** 20 };
}
