// Slack's external upload, as the emulator keeps it: files.getUploadURLExternal reserves a file
// and hands out its upload URL, the client POSTs the bytes there, files.completeUploadExternal
// shares it (in a channel or a thread) as a message carrying the file.

export interface EmulatedFile {
  readonly id: string;
  readonly filename: string;
  /** `length` as given to files.getUploadURLExternal. */
  readonly declaredLength: number;
  /** The bytes POSTed to the upload URL; undefined until they arrive. */
  content: Buffer | undefined;
  /** How the bytes came: raw body or the first part of a multipart form. */
  uploadedAs: 'raw' | 'multipart' | undefined;
  title: string | undefined;
  /** Where files.completeUploadExternal shared it. */
  shared:
    | {
        readonly channel: string;
        readonly threadTs: string | undefined;
        readonly ts: string;
        readonly initialComment: string | undefined;
      }
    | undefined;
}

export class FileStore {
  readonly #files = new Map<string, EmulatedFile>();
  #next = 1;

  reserve(filename: string, declaredLength: number): EmulatedFile {
    const id = `F${String(this.#next++).padStart(10, '0')}`;
    const file: EmulatedFile = {
      id,
      filename,
      declaredLength,
      content: undefined,
      uploadedAs: undefined,
      title: undefined,
      shared: undefined,
    };
    this.#files.set(id, file);
    return file;
  }

  get(id: string): EmulatedFile | undefined {
    return this.#files.get(id);
  }

  /** Every file reserved, in order; copies. */
  all(): EmulatedFile[] {
    return [...this.#files.values()].map((f) => ({
      ...f,
      content: f.content === undefined ? undefined : Buffer.from(f.content),
    }));
  }
}

/** The bytes of an upload POST: the raw body, or the file part of multipart/form-data. */
export function uploadedBytes(
  contentType: string | undefined,
  body: Buffer,
): { bytes: Buffer; as: 'raw' | 'multipart' } | Error {
  const match = /^multipart\/form-data;.*boundary="?([^";]+)"?/i.exec(contentType ?? '');
  if (match?.[1] === undefined) return { bytes: body, as: 'raw' };
  const delimiter = Buffer.from(`--${match[1]}`);
  const start = body.indexOf(delimiter);
  if (start < 0) return new Error('multipart body without its boundary');
  const headersEnd = body.indexOf('\r\n\r\n', start);
  const next = body.indexOf(delimiter, headersEnd);
  if (headersEnd < 0 || next < 0) return new Error('multipart body cut short');
  // The part's content ends with the CRLF before the next delimiter.
  return { bytes: body.subarray(headersEnd + 4, next - 2), as: 'multipart' };
}
