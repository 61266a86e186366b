import type { TSchema, Static } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { ValueErrorType } from '@sinclair/typebox/errors';
import { FlintError } from '../errors/FlintError.js';

/** A compiled validator for one request schema. */
export interface Validator<T extends TSchema> {
  /** Returns the body typed, or throws a 400 FlintError naming the first bad `param`. */
  parse(body: unknown): Static<T>;
}

/** Compiles `schema` once; errors name the parameter as OpenAI does (`messages[0].role`). */
export function createValidator<T extends TSchema>(schema: T): Validator<T> {
  const check: TypeCheck<T> = TypeCompiler.Compile(schema);
  return {
    parse(body: unknown): Static<T> {
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw new FlintError('FLINT_ERR_INVALID_VALUE', { details: { detail: 'The request body must be a JSON object.' } });
      }
      if (check.Check(body)) return body;
      const first = deepestError(check, body);
      throw first;
    },
  };
}

function deepestError(check: TypeCheck<TSchema>, body: unknown): FlintError {
  let chosen: { path: string; message: string; type: ValueErrorType; value: unknown } | undefined;
  for (const error of check.Errors(body)) {
    // Unions report the union itself first; prefer the most specific (deepest) path.
    if (!chosen || error.path.length > chosen.path.length) chosen = error;
    if (chosen.type !== ValueErrorType.Union && chosen.path.split('/').length > 3) break;
  }
  if (!chosen) return new FlintError('FLINT_ERR_INVALID_VALUE', { details: { detail: 'Invalid request.' } });
  const param = toParam(chosen.path);
  if (chosen.type === ValueErrorType.ObjectRequiredProperty || (chosen.value === undefined && chosen.type !== ValueErrorType.Union)) {
    return new FlintError('FLINT_ERR_MISSING_PARAM', { param });
  }
  return new FlintError('FLINT_ERR_INVALID_VALUE', {
    param,
    details: { detail: `Invalid value for '${param}': ${chosen.message.replace(/^Expected/, 'expected')} (got ${describeValue(chosen.value)}).` },
  });
}

/** `/messages/0/role` → `messages[0].role`. */
export function toParam(pointer: string): string {
  return pointer
    .split('/')
    .filter((p) => p.length > 0)
    .map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`))
    .join('');
}

function describeValue(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}
