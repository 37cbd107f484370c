// Hex helpers for tests that write frames as hex strings (protocol and connection unit tests).
import assert from 'node:assert/strict';

/** Hex string (whitespace allowed) to bytes. */
export function bytes(hex: string): Buffer {
  const clean = hex.replace(/\s+/g, '');
  assert.match(clean, /^(?:[0-9a-fA-F]{2})*$/, `malformed hex in test: ${hex}`);
  return Buffer.from(clean, 'hex');
}

/** Normalised hex (no whitespace, lower case). */
export function norm(hex: string): string {
  return hex.replace(/\s+/g, '').toLowerCase();
}

/** UTF-8 of a string, as hex. */
export function txt(s: string): string {
  return Buffer.from(s, 'utf8').toString('hex');
}
