/**
 * Human-friendly sizes and durations for configuration files: `1MiB`, `64 KiB`, `1.5MB`, `30s`,
 * `250ms`, `2m`. Plain numbers are bytes and milliseconds. Binary units (KiB, MiB, GiB) are powers of
 * 1024, decimal units (KB, MB, GB) powers of 1000, so `1MB` is not silently `1MiB`.
 */

const SIZE_UNITS: Readonly<Record<string, number>> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const PATTERN = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/;

function parse(value: number | string, units: Readonly<Record<string, number>>, plainUnit: string): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  const m = PATTERN.exec(value);
  if (m === null) return undefined;
  const unit = (m[2] ?? '').toLowerCase() || plainUnit;
  const factor = units[unit];
  if (factor === undefined) return undefined;
  return Math.round(Number(m[1]) * factor);
}

/** Bytes for a size (`1MiB`, `512KB`, `1024`); undefined when not a size. */
export function parseSize(value: number | string): number | undefined {
  return parse(value, SIZE_UNITS, 'b');
}

/** Milliseconds for a duration (`30s`, `250ms`, `2m`, `1000`); undefined when not a duration. */
export function parseDuration(value: number | string): number | undefined {
  return parse(value, DURATION_UNITS, 'ms');
}
