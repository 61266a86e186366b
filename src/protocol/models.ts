import { FlintError } from '../errors/FlintError.js';
import type { ModelInfo } from '../core/types.js';

/** `GET /v1/models` body: one entry per name that resolves. */
export function toModelList(model: ModelInfo) {
  return { object: 'list' as const, data: [model.id, ...model.aliases].map((id) => toModelObject(model, id)) };
}

/** One model object, with Flint's `context_length` and `capabilities` extensions. */
export function toModelObject(model: ModelInfo, id: string) {
  return {
    id,
    object: 'model' as const,
    created: model.createdS,
    owned_by: 'flint',
    context_length: model.contextSize,
    architecture: model.architecture,
    capabilities: { tools: true, fim: model.hasInfill, json_schema: true },
  };
}

/**
 * Resolves the `model` a client sent: absent or empty means the served model; otherwise the
 * name must be the id or an alias, unless `acceptAnyModelName` maps every name to it.
 * Returns the name to echo back in results.
 */
export function resolveModelName(requested: unknown, model: ModelInfo, acceptAnyModelName: boolean): string {
  if (requested === undefined || requested === null || requested === '') return model.id;
  if (typeof requested !== 'string') {
    throw new FlintError('FLINT_ERR_INVALID_VALUE', { param: 'model', details: { detail: "Invalid value for 'model': expected a string." } });
  }
  if (requested === model.id || model.aliases.includes(requested) || acceptAnyModelName) return requested;
  throw new FlintError('FLINT_ERR_MODEL_NOT_FOUND', {
    param: 'model',
    details: { model: requested, available: [model.id, ...model.aliases].join(', ') },
  });
}
