import { open, stat } from 'node:fs/promises';
import { FlintError } from '../errors/FlintError.js';

/** What `flint models` shows of a GGUF file, read from its header. */
export interface GgufFacts {
  readonly version: number;
  readonly architecture: string;
  readonly name?: string;
  /** Context length the model was trained for (`<arch>.context_length`). */
  readonly contextLength?: number;
  /** `general.file_type` as llama.cpp names it (`Q4_K_M`, `Q8_0`, `F16`, ...). */
  readonly quantization?: string;
  /** `split.count` of a split model's part (absent for a single file). */
  readonly splitCount?: number;
  readonly splitIndex?: number;
  readonly tensorCount: number;
  readonly sizeBytes: number;
}

/**
 * Reads and checks one GGUF file (one part, for split models): magic, a version llama.cpp reads
 * (2 or 3), metadata that parses, an architecture, and tensor data that starts inside the file.
 * Throws FLINT_ERR_MODEL_INVALID saying what is wrong. Uses node-llama-cpp's GGUF reader (pure
 * JavaScript; no native code is loaded), imported on first use so the gateway does not pay for it.
 */
export async function readGgufFacts(file: string, options: { displayName?: string } = {}): Promise<GgufFacts> {
  const fail = (detail: string, cause?: unknown) => new FlintError('FLINT_ERR_MODEL_INVALID', { details: { file: options.displayName ?? file, detail }, cause });
  const sizeBytes = (await stat(file)).size;
  const head = Buffer.alloc(8);
  const handle = await open(file, 'r');
  try {
    await handle.read(head, 0, 8, 0);
  } finally {
    await handle.close();
  }
  if (head.toString('latin1', 0, 4) !== 'GGUF') {
    throw fail(`it does not start with "GGUF" but with ${JSON.stringify(head.toString('latin1', 0, 4))} (an HTML error page, or another format?)`);
  }
  const version = head.readUInt32LE(4);
  if (version !== 2 && version !== 3) throw fail(`GGUF version ${version} (llama.cpp reads versions 2 and 3)`);
  const { readGgufFileInfo, GgufFileType } = await import('node-llama-cpp');
  let info;
  try {
    info = await readGgufFileInfo(file, { spliceSplitFiles: false, logWarnings: false, readTensorInfo: true });
  } catch (err) {
    const message = ((err as Error)?.message ?? String(err)).replace(/\.$/, '');
    throw fail(`its header cannot be read (${message}); the file is ${sizeBytes} bytes`, err);
  }
  const general = info.metadata.general as { architecture?: unknown; name?: unknown; file_type?: unknown; alignment?: unknown } | undefined;
  const split = (info.metadata as { split?: { no?: number; count?: number } }).split;
  const isLaterPart = split?.no !== undefined && split.no > 0;
  const architecture = typeof general?.architecture === 'string' ? general.architecture : undefined;
  if (!architecture && !isLaterPart) throw fail('its metadata has no general.architecture');
  const alignment = typeof general?.alignment === 'number' ? general.alignment : 32;
  const infoEnd = Number(info.infoEndOffset ?? 0);
  // The reader does not stop at the end of the file (it reads zeros), so a cut-off header shows only here.
  if (infoEnd > sizeBytes) throw fail(`its header needs ${infoEnd} bytes but the file has ${sizeBytes} (truncated)`);
  const dataStart = Math.ceil(infoEnd / alignment) * alignment;
  for (const tensor of info.tensorInfo ?? []) {
    if (dataStart + Number(tensor.offset) >= sizeBytes) throw fail(`it ends before the data of tensor '${tensor.name}' (truncated: ${sizeBytes} bytes)`);
  }
  const fileType = typeof general?.file_type === 'number' ? (GgufFileType[general.file_type] as string | undefined) : undefined;
  const contextLength = (info.architectureMetadata as { context_length?: unknown } | undefined)?.context_length;
  return {
    version,
    architecture: architecture ?? '(split part)',
    name: typeof general?.name === 'string' ? general.name : undefined,
    contextLength: typeof contextLength === 'number' ? contextLength : undefined,
    quantization: fileType?.replace(/^(MOSTLY|ALL)_/, ''),
    splitCount: split?.count,
    splitIndex: split?.no,
    tensorCount: Number(info.tensorCount),
    sizeBytes,
  };
}
