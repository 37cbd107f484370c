import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { CLOSE_CODES, CloseCode, isValidCloseCode } from './close-codes.ts';

/** The rule, stated independently: 1000-1003, 1007-1014 and 3000-4999 may be sent in a close frame. */
function rule(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

describe('isValidCloseCode', () => {
  test('agrees with the rule over the whole range 0..65535', () => {
    const mismatches: number[] = [];
    let valid = 0;
    for (let code = 0; code <= 0xffff; code++) {
      const got = isValidCloseCode(code);
      if (got !== rule(code)) mismatches.push(code);
      if (got) valid++;
    }
    assert.deepEqual(mismatches, []);
    assert.equal(valid, 4 + 8 + 2000);
  });

  test('spot checks at every boundary', () => {
    const cases: ReadonlyArray<readonly [number, boolean]> = [
      [0, false],
      [999, false],
      [1000, true],
      [1003, true],
      [1004, false],
      [1005, false],
      [1006, false],
      [1007, true],
      [1014, true],
      [1015, false],
      [1016, false],
      [1100, false],
      [2000, false],
      [2999, false],
      [3000, true],
      [3999, true],
      [4000, true],
      [4999, true],
      [5000, false],
      [65535, false],
    ];
    for (const [code, valid] of cases) assert.equal(isValidCloseCode(code), valid, String(code));
  });
});

describe('CLOSE_CODES', () => {
  test('registers 1000-1015, with 1004, 1005, 1006 and 1015 not allowed on the wire', () => {
    assert.deepEqual([...CLOSE_CODES.keys()], Array.from({ length: 16 }, (_, i) => 1000 + i));
    for (const [code, info] of CLOSE_CODES) {
      assert.equal(info.onWire, ![1004, 1005, 1006, 1015].includes(code), String(code));
      assert.equal(info.onWire, isValidCloseCode(code), String(code));
      assert.ok(info.name.length > 0 && info.meaning.length > 0);
    }
  });

  test('CloseCode names match the registry', () => {
    for (const [name, code] of Object.entries(CloseCode)) {
      assert.equal(CLOSE_CODES.get(code)?.name, name);
    }
  });
});
