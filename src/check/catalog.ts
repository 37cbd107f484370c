import { group1 } from './cases/group1.ts';
import { group10 } from './cases/group10.ts';
import { group12 } from './cases/group12.ts';
import { group13 } from './cases/group13.ts';
import { group2 } from './cases/group2.ts';
import { group3 } from './cases/group3.ts';
import { group4 } from './cases/group4.ts';
import { group5 } from './cases/group5.ts';
import { group6 } from './cases/group6.ts';
import { group7 } from './cases/group7.ts';
import { group9 } from './cases/group9.ts';
import type { CaseDefinition } from './types.ts';

/**
 * Every case, in the Autobahn TestSuite's order: 1 framing, 2 ping/pong, 3 reserved bits, 4 opcodes,
 * 5 fragmentation, 6 UTF-8, 7 closing handshake, 9 limits and performance, 10 auto-fragmentation,
 * 12 and 13 permessage-deflate (which offer the extension; UNIMPLEMENTED when the server declines it).
 */
export const ALL_CASES: readonly CaseDefinition[] = [
  ...group1,
  ...group2,
  ...group3,
  ...group4,
  ...group5,
  ...group6,
  ...group7,
  ...group9,
  ...group10,
  ...group12,
  ...group13,
];

/** The cases that offer no extension (groups 1 to 10: 301 cases). */
export const BASE_CASES: readonly CaseDefinition[] = ALL_CASES.filter((c) => c.deflate === undefined);

/** The permessage-deflate cases (groups 12 and 13: 216 cases). */
export const DEFLATE_CASES: readonly CaseDefinition[] = ALL_CASES.filter((c) => c.deflate !== undefined);
