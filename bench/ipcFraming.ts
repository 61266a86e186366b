/**
 * How the worker's stream deltas should cross the process boundary: measured, not guessed.
 *
 * A child process sends the deltas of S concurrent streams (a few characters each, as a fast
 * model produces them) to this process, which decodes every one of them, for each framing:
 *
 *   json / per stream      Node IPC, `serialization: 'json'`, one message per stream per flush
 *   json / batched         Node IPC, JSON, one message per flush carrying every stream's delta
 *   advanced / per stream  Node IPC, `serialization: 'advanced'` (V8 structured clone)
 *   advanced / batched
 *   binary frames          length-prefixed binary frames on a separate pipe (fd 4), batched:
 *                          [u32 frame length][per delta: u16 stream, u16 tokens, u32 bytes, UTF-8]
 *
 * Reported: deltas per second end to end and CPU time per delta in the sender and the receiver.
 *
 *   node --import tsx bench/ipcFraming.ts [--streams 8] [--flushes 20000]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Readable } from 'node:stream';

type Framing = 'json-per-stream' | 'json-batched' | 'advanced-per-stream' | 'advanced-batched' | 'binary-batched';
const framings: readonly Framing[] = ['json-per-stream', 'json-batched', 'advanced-per-stream', 'advanced-batched', 'binary-batched'];
const deltaText = 'const x';

if (process.env.FLINT_IPC_BENCH_CHILD) await child();
else await parent();

async function parent(): Promise<void> {
  const { values } = parseArgs({ options: { streams: { type: 'string', default: '8' }, flushes: { type: 'string', default: '20000' } } });
  const streams = Number(values.streams);
  const flushes = Number(values.flushes);
  const rows: string[] = [];
  for (const framing of framings) {
    const result = await run(framing, streams, flushes);
    rows.push(
      `| ${framing} | ${Math.round(result.deltasPerS).toLocaleString('en')} | ${result.senderUsPerDelta.toFixed(2)} | ${result.receiverUsPerDelta.toFixed(2)} |`,
    );
  }
  console.log(`${streams} streams, ${flushes} flushes (${(streams * flushes).toLocaleString('en')} deltas of ${deltaText.length} characters)\n`);
  console.log('| framing | deltas/s | sender CPU µs/delta | receiver CPU µs/delta |\n| --- | --- | --- | --- |');
  for (const row of rows) console.log(row);
}

async function run(framing: Framing, streams: number, flushes: number) {
  const serialization = framing.startsWith('advanced') ? 'advanced' : 'json';
  const child = fork(fileURLToPath(import.meta.url), [], {
    execArgv: process.execArgv,
    serialization,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc', 'pipe'],
    env: { ...process.env, FLINT_IPC_BENCH_CHILD: '1', FRAMING: framing, STREAMS: String(streams), FLUSHES: String(flushes) },
  });
  const total = streams * flushes;
  let received = 0;
  let chars = 0;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const done = new Promise<{ senderCpuUs: number }>((resolve) => {
    child.on('message', (message: { type: string; cpuUs?: number; items?: unknown[]; text?: string }) => {
      if (message.type === 'end') resolve({ senderCpuUs: message.cpuUs ?? 0 });
      else if (message.type === 'delta') {
        received++;
        chars += (message.text ?? '').length;
      } else if (message.type === 'deltas') {
        for (const item of message.items as Array<[number, string, number]>) {
          received++;
          chars += item[1].length;
        }
      }
    });
    if (framing === 'binary-batched') readFrames(child, (text) => {
      received++;
      chars += text.length;
    });
  });
  child.send({ type: 'go' });
  const { senderCpuUs } = await done;
  while (received < total) await new Promise((resolve) => setImmediate(resolve));
  const elapsedS = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  child.kill();
  if (chars !== total * deltaText.length) throw new Error(`${framing}: received ${chars} characters`);
  return { deltasPerS: total / elapsedS, senderUsPerDelta: senderCpuUs / total, receiverUsPerDelta: (cpu.user + cpu.system) / total };
}

/** Decodes the binary frames of the child's fd 4. */
function readFrames(child: ChildProcess, onDelta: (text: string) => void): void {
  const pipe = child.stdio[4] as Readable;
  let pending: Buffer = Buffer.alloc(0);
  pipe.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 4) {
      const length = pending.readUInt32LE(0);
      if (pending.length < 4 + length) break;
      let at = 4;
      while (at < 4 + length) {
        const bytes = pending.readUInt32LE(at + 4);
        onDelta(pending.toString('utf8', at + 8, at + 8 + bytes));
        at += 8 + bytes;
      }
      pending = pending.subarray(4 + length);
    }
  });
}

async function child(): Promise<void> {
  const framing = process.env.FRAMING as Framing;
  const streams = Number(process.env.STREAMS);
  const flushes = Number(process.env.FLUSHES);
  await new Promise((resolve) => process.once('message', resolve));
  const cpuBefore = process.cpuUsage();
  const { createWriteStream } = await import('node:fs');
  const frames = framing === 'binary-batched' ? createWriteStream('', { fd: 4 }) : undefined;
  const ids = Array.from({ length: streams }, (_, i) => `req_${i.toString(36).padStart(20, '0')}`);
  for (let flush = 0; flush < flushes; flush++) {
    if (framing.endsWith('per-stream')) {
      for (const id of ids) process.send!({ type: 'delta', id, text: deltaText, tokens: 1 });
    } else if (framing === 'binary-batched') {
      const text = Buffer.from(deltaText);
      const frame = Buffer.alloc(4 + streams * (8 + text.length));
      frame.writeUInt32LE(frame.length - 4, 0);
      for (let s = 0, at = 4; s < streams; s++, at += 8 + text.length) {
        frame.writeUInt16LE(s, at);
        frame.writeUInt16LE(1, at + 2);
        frame.writeUInt32LE(text.length, at + 4);
        text.copy(frame, at + 8);
      }
      frames!.write(frame);
    } else process.send!({ type: 'deltas', items: ids.map((id) => [id, deltaText, 1]) });
    // As the worker does: a flush per turn of the event loop, not a tight loop that only queues.
    if (flush % 64 === 63) await new Promise((resolve) => setImmediate(resolve));
  }
  if (frames) await new Promise<void>((resolve) => frames.end(resolve));
  const cpu = process.cpuUsage(cpuBefore);
  process.send!({ type: 'end', cpuUs: cpu.user + cpu.system });
}
