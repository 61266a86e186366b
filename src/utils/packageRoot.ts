import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (where `config/`, `models/` and `src/` live). */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
