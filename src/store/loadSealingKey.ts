import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The server's sealing key (`<dataDir>/sealing.key`, 32 bytes, mode 0600), created on first use.
 * Keeping it across restarts lets clients send back reasoning and compaction items sealed by an
 * earlier process; deleting it makes every such item unreadable (they are then dropped).
 */
export function loadSealingKey(dataDir: string): Buffer {
  const file = path.join(dataDir, 'sealing.key');
  try {
    const key = readFileSync(file);
    if (key.length === 32) return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(dataDir, { recursive: true });
  const key = randomBytes(32);
  try {
    // 'wx': if another process created it meanwhile, use theirs.
    writeFileSync(file, key, { mode: 0o600, flag: 'wx' });
    return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readFileSync(file);
    throw err;
  }
}
