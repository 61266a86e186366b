import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { tinyModelPath } from '../../helpers/testModel.js';
import { FlintNode } from './FlintNode.js';
import { Haproxy, type HealthCheck } from './Haproxy.js';

/** How a scenario's cluster is set up. */
export interface ClusterOptions {
  /**
   * More `server:` keys for each node's config file, as indented YAML lines (the file starts
   * `server:\n  replicaId: ...`); unindented lines after them open other sections (`scheduler:`).
   */
  readonly nodeConfig?: string;
  readonly nodeEnv?: Record<string, string>;
  readonly check: HealthCheck;
  /**
   * A third node, node-c on 127.0.0.4, started like the others and listed in the balancer as
   * flint-c, but in maintenance (out of rotation) until `bringIn()`: HAProxy then runs a config
   * derived from docker/haproxy.cfg (see `spareConfig`).
   */
  readonly spare?: boolean;
  /** More API keys the nodes accept, which no session is handed (a Flint front's over them, say). */
  readonly otherKeys?: readonly string[];
}

/** Names of the backend servers in docker/haproxy.cfg (flint-c: the spare's, see `spareConfig`), in node order. */
const serverNames = ['flint-a', 'flint-b', 'flint-c'] as const;

/**
 * Two Flint nodes on their own loopback addresses (127.0.0.2 and 127.0.0.3, each its own
 * process with one worker and one thread) behind HAProxy on 127.0.0.1 with docker/haproxy.cfg
 * (and, with `spare`, a third on 127.0.0.4 that the balancer lists but keeps out of rotation).
 * Each session has an API key of its own, so per-key limits apply per client, as they would with
 * real clients (without keys, every client behind a balancer shares the balancer's address).
 */
export class Cluster {
  readonly nodes: readonly FlintNode[];
  readonly haproxy: Haproxy;
  readonly keys: readonly string[];
  readonly #dir: string;
  readonly #keyOf = new Map<string, string>();
  /** Nodes in the balancer's rotation (all but a spare not brought in yet). */
  readonly #inRotation: Set<FlintNode>;

  private constructor(nodes: FlintNode[], haproxy: Haproxy, keys: string[], dir: string) {
    this.nodes = nodes;
    this.haproxy = haproxy;
    this.keys = keys;
    this.#dir = dir;
    this.#inRotation = new Set(nodes.slice(0, 2));
  }

  static async start(options: ClusterOptions): Promise<Cluster> {
    const dir = mkdtempSync(path.join(tmpdir(), 'flint-cluster-'));
    const keys = Array.from({ length: 64 }, (_, i) => `cluster-key-${i}`);
    const model = await tinyModelPath();
    const started = await Promise.allSettled(
      serverNames.slice(0, options.spare ? 3 : 2).map((server, i) =>
        FlintNode.start({
          name: `node-${'abc'[i]}`,
          host: `127.0.0.${i + 2}`,
          model,
          dir: path.join(dir, server),
          config: options.nodeConfig,
          env: { FLINT_SLOTS: '2', FLINT_CONTEXT_SIZE: '2048', ...options.nodeEnv },
          apiKeys: [...keys, ...(options.otherKeys ?? [])],
        }),
      ),
    );
    const nodes = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) {
      await Promise.all(nodes.map((n) => n.dispose()));
      rmSync(dir, { recursive: true, force: true });
      throw (failed as PromiseRejectedResult).reason;
    }
    const address = (node: FlintNode) => new URL(node.url).host;
    let haproxy: Haproxy;
    try {
      const spare = options.spare ? { address: address(nodes[2]), dir } : undefined;
      haproxy = await Haproxy.start({ host: '127.0.0.1', servers: { 'flint-a': address(nodes[0]), 'flint-b': address(nodes[1]) }, check: options.check, spare });
    } catch (err) {
      await Promise.all(nodes.map((n) => n.dispose()));
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    return new Cluster(nodes, haproxy, keys, dir);
  }

  get url(): string {
    return this.haproxy.url;
  }

  /** The node behind a backend server name, and the reverse. */
  node(name: 'node-a' | 'node-b' | 'node-c'): FlintNode {
    const node = this.nodes.find((n) => n.name === name);
    if (!node) throw new Error(`no ${name} in this cluster`);
    return node;
  }

  serverOf(node: FlintNode): string {
    return serverNames[this.nodes.indexOf(node)];
  }

  /** The API key of a session (one per session, handed out in order). */
  keyOf(session: string): string {
    let key = this.#keyOf.get(session);
    if (key === undefined) {
      key = this.keys[this.#keyOf.size % this.keys.length];
      this.#keyOf.set(session, key);
    }
    return key;
  }

  /** The node HAProxy sends a session to now, asked with a request that runs no generation. */
  async replicaOf(session: string): Promise<string | undefined> {
    const res = await fetch(`${this.url}/v1/models`, { headers: { authorization: `Bearer ${this.keyOf(session)}`, 'x-flint-session': session }, signal: AbortSignal.timeout(5_000) });
    await res.arrayBuffer();
    return res.headers.get('x-flint-replica') ?? undefined;
  }

  /**
   * Brings the spare (node-c) into rotation through HAProxy's runtime API and resolves once
   * HAProxy logs it UP (it leaves maintenance as UP and its checks go on from there).
   */
  async bringIn(): Promise<{ readonly atMs: number; readonly upAtMs: number }> {
    const spare = this.node('node-c');
    const atMs = performance.now();
    await this.haproxy.setState(this.serverOf(spare), 'ready');
    const up = await this.haproxy.waitFor(this.serverOf(spare), 'UP', atMs, 5_000);
    this.#inRotation.add(spare);
    return { atMs, upAtMs: up.atMs };
  }

  /** Session names, `count` of them on each node in rotation (found by asking the balancer). */
  async sessionsPerNode(prefix: string, count: number): Promise<Map<string, string[]>> {
    const byNode = new Map<string, string[]>(this.nodes.filter((n) => this.#inRotation.has(n)).map((n) => [n.name, []]));
    for (let i = 0; [...byNode.values()].some((s) => s.length < count); i++) {
      if (i > 200) throw new Error('the balancer does not spread sessions over both nodes');
      const session = `${prefix}-${i}`;
      const list = byNode.get((await this.replicaOf(session))!);
      if (list && list.length < count) list.push(session);
    }
    return byNode;
  }

  /** `flint_requests_total` summed per running node. */
  async requestsTotal(): Promise<Map<string, number>> {
    const totals = new Map<string, number>();
    for (const node of this.nodes) if (node.isRunning) totals.set(node.name, await node.requestsTotal());
    return totals;
  }

  /** Stops HAProxy and every node by PID, and removes the scenario's folder. */
  async dispose(): Promise<void> {
    await this.haproxy.dispose();
    await Promise.all(this.nodes.map((n) => n.dispose()));
    rmSync(this.#dir, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}
