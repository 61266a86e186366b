import { errorCodes, type ErrorCode } from './codes.js';

/** Values substituted into an error's message template, by `{name}`. */
export type ErrorDetails = Readonly<Record<string, string | number | undefined>>;

/** The only error type Flint throws on purpose; its code decides status, type and wire code. */
export class FlintError extends Error {
  override readonly name = 'FlintError';
  readonly code: ErrorCode;
  readonly param: string | null;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, options: { param?: string | null; details?: ErrorDetails; cause?: unknown } = {}) {
    const details = options.details ?? {};
    super(renderTemplate(errorCodes[code].message, { param: options.param ?? undefined, ...details }), { cause: options.cause });
    this.code = code;
    this.param = options.param ?? null;
    this.details = details;
  }

  /** HTTP status from the error table. */
  get status(): number {
    return errorCodes[this.code].status;
  }
}

function renderTemplate(template: string, values: ErrorDetails): string {
  return template
    .replace(/\{(\w+)\}/g, (_, key: string) => String(values[key] ?? ''))
    .replace(/ \(\)/g, '')
    .replace(/\s+$/, '');
}
