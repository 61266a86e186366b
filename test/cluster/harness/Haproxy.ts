import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { repoRoot } from '../../helpers/testModel.js';

/** The balancer's configuration: the file compose uses. */
export const haproxyConfig = path.join(repoRoot, 'docker', 'haproxy.cfg');

/** Why the cluster suite cannot run here, or undefined when `haproxy` is installed. */
export function haproxyMissing(): string | undefined {
  const probe = spawnSync('haproxy', ['-v'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return 'haproxy is not installed (Debian: apt-get install -y haproxy; .ci/run installs it)';
  return undefined;
}

/** Health-check timings, passed to docker/haproxy.cfg through its environment variables. */
export interface HealthCheck {
  readonly interMs: number;
  readonly fall: number;
  readonly timeoutMs: number;
}

/** A server's state change, as HAProxy logs it, and when the test read it. */
export interface ServerEvent {
  readonly server: string;
  readonly state: 'UP' | 'DOWN';
  readonly atMs: number;
  readonly line: string;
}

/** Backend servers by name (`flint-a`, `flint-b`: the names in docker/haproxy.cfg) and their address. */
export type Servers = Readonly<Record<'flint-a' | 'flint-b', string>>;

/** A third server, `flint-c`, out of rotation (in maintenance) until `setState('flint-c', 'ready')`. */
export interface SpareServer {
  readonly address: string;
  /** Folder for the derived configuration and the runtime API's socket. */
  readonly dir: string;
}

/**
 * docker/haproxy.cfg with a spare server, for the scale-out scenario: two lines added to its text
 * and nothing else changed.
 * - In `global`: a stats socket at admin level, HAProxy's runtime API, through which the test
 *   brings the spare into rotation (`set server flint/flint-c state ready`) as an operator would.
 * - In `backend flint`, after flint-b: `server flint-c ... disabled`, which starts it in
 *   maintenance: out of the hash ring, not checked. Its address comes from FLINT_C, as the others'.
 * Servers get their ids in file order (1, 2, 3) and consistent hashing places each server's points
 * on the ring by its id, so the spare's arrival leaves flint-a's and flint-b's points where they were.
 */
export function spareConfig(base: string, socket: string): string {
  const globalLine = /^global\n/m;
  const lastServer = /^(\s*server flint-b .*)$/m;
  if (!globalLine.test(base) || !lastServer.test(base)) throw new Error('docker/haproxy.cfg no longer has the `global` section or the flint-b server line the scale-out config is derived from');
  return base
    .replace(globalLine, `global\n  stats socket ${socket} mode 600 level admin\n`)
    .replace(lastServer, `$1\n  server flint-c "\${FLINT_C-flint-c:8080}" disabled`);
}

/**
 * HAProxy running docker/haproxy.cfg in the foreground, bound to a loopback address, stopped by
 * its PID. Server state changes are read from its log (stdout), which HAProxy writes as they happen.
 */
export class Haproxy {
  readonly url: string;
  readonly pid: number;
  readonly events: ServerEvent[] = [];
  readonly #child: ChildProcess;
  readonly #exited: Promise<unknown>;
  readonly #waiters = new Set<() => void>();
  readonly #socket: string | undefined;
  #log = '';

  private constructor(child: ChildProcess, url: string, socket: string | undefined) {
    this.#child = child;
    this.#socket = socket;
    this.pid = child.pid!;
    this.url = url;
    this.#exited = once(child, 'exit');
    const onLine = (line: string) => {
      this.#log = (this.#log + line + '\n').slice(-50_000);
      const match = /Server flint\/(\S+) is (UP|DOWN)/.exec(line);
      if (!match || line.startsWith('[')) return; // each change is logged twice: as an alert ([WARNING] ...) and as a log line
      this.events.push({ server: match[1], state: match[2] as 'UP' | 'DOWN', atMs: performance.now(), line });
      for (const wake of this.#waiters) wake();
    };
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', onLine);
  }

  static async start(options: { host: string; servers: Servers; check: HealthCheck; spare?: SpareServer }): Promise<Haproxy> {
    const port = await freePort(options.host);
    let config = haproxyConfig;
    let socket: string | undefined;
    if (options.spare) {
      socket = path.join(options.spare.dir, 'haproxy-admin.sock');
      config = path.join(options.spare.dir, 'haproxy.cfg');
      writeFileSync(config, spareConfig(readFileSync(haproxyConfig, 'utf8'), socket));
    }
    const child = spawn('haproxy', ['-db', '-f', config], {
      env: {
        PATH: process.env.PATH,
        HAPROXY_BIND: `${options.host}:${port}`,
        FLINT_A: options.servers['flint-a'],
        FLINT_B: options.servers['flint-b'],
        ...(options.spare ? { FLINT_C: options.spare.address } : {}),
        FLINT_CHECK_INTER: `${options.check.interMs}ms`,
        FLINT_CHECK_FALL: String(options.check.fall),
        FLINT_CHECK_TIMEOUT: `${options.check.timeoutMs}ms`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const haproxy = new Haproxy(child, `http://${options.host}:${port}`, socket);
    const deadline = performance.now() + 10_000;
    while (!(await canConnect(options.host, port))) {
      if (child.exitCode !== null || performance.now() > deadline) {
        await haproxy.dispose();
        throw new Error(`haproxy did not start: ${haproxy.#log}`);
      }
      await delay(20);
    }
    return haproxy;
  }

  log(): string {
    return this.#log;
  }

  /** One command on the runtime API (only with a spare server), and HAProxy's answer. */
  async command(line: string): Promise<string> {
    if (!this.#socket) throw new Error('this HAProxy has no runtime API socket (start it with a spare server)');
    const socket = net.connect({ path: this.#socket });
    socket.setTimeout(5_000, () => socket.destroy(new Error(`haproxy runtime API: no answer to ${line} within 5 s`)));
    // Without `prompt`, HAProxy answers one command and closes the connection.
    socket.write(`${line}\n`);
    let answer = '';
    for await (const chunk of socket) answer += String(chunk);
    return answer;
  }

  /**
   * Sets a server's administrative state through the runtime API (`ready` brings a server out of
   * maintenance into rotation, `maint` takes it out). HAProxy answers an accepted command with an
   * empty line; anything else is its complaint.
   */
  async setState(server: string, state: 'ready' | 'drain' | 'maint'): Promise<void> {
    const answer = await this.command(`set server flint/${server} state ${state}`);
    if (answer.trim() !== '') throw new Error(`haproxy refused to set ${server} ${state}: ${answer.trim()}`);
  }

  /** The first `state` event of `server` at or after `sinceMs`; rejects after `timeoutMs`. */
  async waitFor(server: string, state: 'UP' | 'DOWN', sinceMs: number, timeoutMs: number): Promise<ServerEvent> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const event = this.events.find((e) => e.server === server && e.state === state && e.atMs >= sinceMs);
      if (event) return event;
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`${server} not ${state} within ${timeoutMs} ms; events: ${JSON.stringify(this.events.map((e) => [e.server, e.state]))}`);
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.#waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.#waiters.add(wake);
      });
    }
  }

  /** Stops it by PID: SIGTERM (HAProxy's hard stop), then SIGKILL after 5 s. */
  async dispose(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    process.kill(this.pid, 'SIGTERM');
    const stopped = await Promise.race([this.#exited.then(() => true), delay(5_000, false, { ref: false })]);
    if (!stopped) {
      process.kill(this.pid, 'SIGKILL');
      await this.#exited;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}

/** A free TCP port on `host` (asked from the kernel, then released for HAProxy to bind). */
async function freePort(host: string): Promise<number> {
  const server = net.createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

async function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
