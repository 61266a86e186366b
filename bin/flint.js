#!/usr/bin/env node
// Flint is written in TypeScript and runs through tsx's loader, so `npx flint` works from a checkout.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
