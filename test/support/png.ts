/** PNG facts a test checks: the signature, and the size from the IHDR chunk (always first). */

export const PNG_SIGNATURE: readonly number[] = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export function isPng(bytes: Uint8Array): boolean {
  return (
    PNG_SIGNATURE.every((b, i) => bytes[i] === b) &&
    Buffer.from(bytes).subarray(12, 16).toString('ascii') === 'IHDR'
  );
}

export function pngSize(png: Uint8Array): { width: number; height: number } {
  const view = Buffer.from(png);
  return { width: view.readUInt32BE(16), height: view.readUInt32BE(20) };
}
