/**
 * Heap snapshots, summarized: retained-by-nobody-in-particular self sizes per constructor (or per
 * object kind), and the difference between two snapshots divided by a count, so a snapshot taken
 * with N idle connections open, minus one taken before, reads as "what one connection costs".
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  readonly snapshot: { readonly meta: { readonly node_fields: readonly string[]; readonly node_types: readonly [readonly string[], ...unknown[]] } };
  readonly nodes: readonly number[];
  readonly strings: readonly string[];
}

/** Self size and count per kind of object: "Foo" for objects of class Foo, "(closure) bar", "(string)", ... */
export function heapBySelfSize(file: string): Map<string, { size: number; count: number }> {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const fType = fields.indexOf('type');
  const fName = fields.indexOf('name');
  const fSize = fields.indexOf('self_size');
  const out = new Map<string, { size: number; count: number }>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + fType]!] ?? '?';
    const name = snap.strings[snap.nodes[i + fName]!] ?? '?';
    let key: string;
    if (type === 'object' || type === 'native') key = name;
    else if (type === 'closure') key = `(closure) ${name === '' ? '(anonymous)' : name}`;
    else if (type === 'hidden' || type === 'synthetic' || type === 'object shape') key = `(${type}) ${name.length > 40 ? `${name.slice(0, 40)}...` : name}`;
    else key = `(${type})`;
    const e = out.get(key) ?? { size: 0, count: 0 };
    e.size += snap.nodes[i + fSize]!;
    e.count++;
    out.set(key, e);
  }
  return out;
}

export interface HeapDiffEntry {
  readonly kind: string;
  /** Bytes per unit (per connection). */
  readonly bytes: number;
  /** Objects per unit. */
  readonly objects: number;
}

/** (after - before) / per, largest first. */
export function heapDiff(beforeFile: string, afterFile: string, per: number, top = 30): { totalBytes: number; entries: HeapDiffEntry[] } {
  const a = heapBySelfSize(beforeFile);
  const b = heapBySelfSize(afterFile);
  const entries: HeapDiffEntry[] = [];
  let total = 0;
  for (const [kind, v] of b) {
    const u = a.get(kind) ?? { size: 0, count: 0 };
    const bytes = (v.size - u.size) / per;
    total += bytes;
    entries.push({ kind, bytes, objects: (v.count - u.count) / per });
  }
  for (const [kind, u] of a) if (!b.has(kind)) total -= u.size / per;
  entries.sort((x, y) => y.bytes - x.bytes);
  return { totalBytes: total, entries: entries.slice(0, top) };
}
