/** Bounds on the shape of an untrusted JSON text. */
export interface JsonShapeLimits {
  /** Deepest nesting of arrays and objects. */
  readonly maxDepth: number;
  /** Most items in one array. */
  readonly maxArrayItems: number;
}

/** Where a JSON text breaks a limit: the path as OpenAI names params (`tools[0].parameters`), and what. */
export interface JsonShapeViolation {
  readonly param: string;
  readonly detail: string;
}

/**
 * Scans JSON text once, without parsing it, and reports the first place where it nests deeper
 * or holds a longer array than allowed. Runs before `JSON.parse`, so a hostile body never
 * reaches a recursive parser, validator or serializer. Malformed JSON is not judged here
 * (the parser reports it); the scan just stops making sense of it.
 */
export function checkJsonShape(text: string, limits: JsonShapeLimits): JsonShapeViolation | undefined {
  /** The open containers: kind, items begun so far (arrays), and the key being read (objects). */
  const stack: Level[] = [];
  let lastString: string | undefined;
  const beginValue = () => {
    const top = stack.at(-1);
    if (top?.isArray && top.items === 0) top.items = 1;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      beginValue();
      const start = i + 1;
      for (i = start; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) i++;
        else if (d === 0x22) break;
      }
      // Keys are short; a long string is a value and its text is not needed.
      lastString = i - start <= 256 ? text.slice(start, i) : undefined;
    } else if (c === 0x3a /* : */) {
      const top = stack.at(-1);
      if (top && !top.isArray) top.key = lastString;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      beginValue();
      stack.push({ isArray: c === 0x5b, items: 0, key: undefined });
      if (stack.length > limits.maxDepth) return { param: pathTo(stack), detail: `nesting deeper than ${limits.maxDepth} levels` };
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      const top = stack.at(-1);
      if (top?.isArray && ++top.items > limits.maxArrayItems) return { param: pathTo(stack), detail: `an array of more than ${limits.maxArrayItems} items` };
    } else if (c > 0x20) beginValue();
  }
  return undefined;
}

interface Level {
  readonly isArray: boolean;
  items: number;
  key: string | undefined;
}

/** The param name of the innermost open container, e.g. `tool_choice.tools[0][0]`. */
function pathTo(stack: readonly Level[]): string {
  let param = '';
  for (let j = 0; j < stack.length - 1; j++) {
    const parent = stack[j];
    if (parent.isArray) param += `[${Math.max(0, parent.items - 1)}]`;
    else param += param === '' ? (parent.key ?? '?') : `.${parent.key ?? '?'}`;
    if (param.length > 200) return `${param.slice(0, 200)}…`;
  }
  return param === '' ? '(body)' : param;
}
