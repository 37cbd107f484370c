import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CaseContext, CaseDefinition, Expectation, ExpectedClose, FrameSpec } from '../types.ts';
import { UTF8_FAMILIES, group6 } from './group6.ts';

/** Autobahn's family sizes for 6.5 … 6.23 (case6_x_x.py). */
const FAMILY_SIZES = [5, 11, 4, 2, 4, 3, 5, 8, 5, 10, 1, 3, 5, 5, 5, 7, 8, 34, 7];

function expectedIds(): string[] {
  const ids = ['6.1.1', '6.1.2', '6.1.3', '6.2.1', '6.2.2', '6.2.3', '6.2.4', '6.3.1', '6.3.2', '6.4.1', '6.4.2', '6.4.3', '6.4.4'];
  FAMILY_SIZES.forEach((size, k) => {
    for (let j = 1; j <= size; j++) ids.push(`6.${5 + k}.${j}`);
  });
  return ids;
}

function byId(id: string): CaseDefinition {
  const c = group6.find((x) => x.id === id);
  assert.ok(c, `case ${id}`);
  return c;
}

/** What a case did with its context, without a network. */
interface Recording {
  readonly calls: Array<{ readonly kind: string; readonly bytes?: Buffer; readonly frame?: FrameSpec; readonly fragmentSize?: number | undefined; readonly ms?: number }>;
  readonly expectations: Array<{ readonly expectation: Expectation; readonly close: ExpectedClose }>;
}

/** A fake context's extras: whether the connection is open (default: always). */
interface FakeExtras {
  isOpen?: () => boolean;
}

/** Runs a case against a fake context whose every sleep returns at once. */
async function record(c: CaseDefinition, extras: FakeExtras = {}, onFrame?: (n: number) => void): Promise<Recording> {
  const rec: Recording = { calls: [], expectations: [] };
  let frames = 0;
  const ctx: CaseContext = {
    isOpen: extras.isOpen ?? (() => true),
    expect: (expectation, close) => void rec.expectations.push({ expectation, close }),
    sendFrame: async (frame) => {
      rec.calls.push({ kind: 'frame', frame });
      onFrame?.(++frames);
    },
    sendRaw: async (bytes) => void rec.calls.push({ kind: 'raw', bytes }),
    sendMessage: async (payload, binary, options) =>
      void rec.calls.push({ kind: binary ? 'binary' : 'text', bytes: Buffer.from(payload), fragmentSize: options?.fragmentSize }),
    sendClose: async () => void rec.calls.push({ kind: 'close' }),
    sleep: async (ms) => void rec.calls.push({ kind: 'sleep', ms }),
    killAfter: (seconds) => void rec.calls.push({ kind: 'kill', ms: seconds * 1000 }),
    received: [],
    note: () => {},
    elapsed: () => 0,
    compress: async () => Promise.reject(new Error('permessage-deflate is not in use')),
    deflate: undefined,
  };
  await c.run(ctx);
  return rec;
}

const payloadOf = (frame: FrameSpec | undefined): Buffer =>
  typeof frame?.payload === 'string' ? Buffer.from(frame.payload) : (frame?.payload ?? Buffer.alloc(0));

describe('group 6 (UTF-8 handling)', () => {
  it("has Autobahn's 145 case ids, in Autobahn's order", () => {
    assert.equal(group6.length, 145);
    assert.deepEqual(
      group6.map((c) => c.id),
      expectedIds(),
    );
    assert.deepEqual(
      UTF8_FAMILIES.map((f) => f.vectors.length),
      FAMILY_SIZES,
    );
  });

  it('has unique ids and a description and expectation for every case', () => {
    assert.equal(new Set(group6.map((c) => c.id)).size, group6.length);
    for (const c of group6) {
      assert.ok(c.description.length > 10, `${c.id} description`);
      assert.ok(c.expectation.length > 10, `${c.id} expectation`);
    }
  });

  it('flags every vector exactly as a strict UTF-8 decoder does', () => {
    const decoder = new TextDecoder('utf-8', { fatal: true });
    for (const family of UTF8_FAMILIES) {
      for (const v of family.vectors) {
        let ok = true;
        try {
          decoder.decode(v.bytes);
        } catch {
          ok = false;
        }
        assert.equal(v.valid, ok, `${family.title}: ${v.bytes.toString('hex')}`);
      }
    }
  });

  it('builds the data-driven vectors with the right octets', async () => {
    const spots: Array<[string, string, boolean]> = [
      ['6.5.4', Buffer.from('hello\u{24b62}world').toString('hex'), true],
      ['6.6.1', 'ce', false],
      ['6.6.2', 'ceba', true],
      ['6.6.11', 'cebae1bdb9cf83cebcceb5', true],
      ['6.8.2', 'fc8480808080', false],
      ['6.11.5', 'f4908080', false],
      ['6.12.8', Buffer.from(Array.from({ length: 63 }, (_, i) => 0x80 + i)).toString('hex'), false],
      ['6.13.5', 'fc20', false],
      ['6.14.10', 'fdbfbfbfbf', false],
      ['6.15.1', 'c0e080f08080f8808080fc80808080dfefbff7bfbffbbfbfbffdbfbfbfbf', false],
      ['6.20.7', 'edbfbf', false],
      ['6.21.8', 'edafbfedbfbf', false],
      ['6.22.3', 'f09fbfbe', true],
      ['6.22.34', 'f48fbfbf', true],
      ['6.23.7', 'efbfbf', true],
    ];
    for (const [id, payloadHex, valid] of spots) {
      const rec = await record(byId(id));
      const sent = rec.calls.find((x) => x.kind === 'text');
      assert.equal(sent?.bytes?.toString('hex'), payloadHex, id);
      assert.equal(sent?.fragmentSize, undefined, id);
      assert.deepEqual(rec.calls.at(-1), { kind: 'kill', ms: 500 }, id);
      const [{ expectation, close } = assert.fail(id)] = rec.expectations;
      if (valid) {
        assert.deepEqual(expectation, { OK: [['message', Buffer.from(payloadHex, 'hex'), false]] }, id);
        assert.deepEqual(close, { closedByMe: true, closeCode: [1000], requireClean: true }, id);
      } else {
        assert.deepEqual(expectation, { OK: [] }, id);
        assert.deepEqual(close, { closedByMe: false, closeCode: [1007], requireClean: false }, id);
      }
    }
    // The lonely start characters of 6.13.1: 0xc0 … 0xde, each followed by a space.
    const lonely = UTF8_FAMILIES[8]?.vectors[0]?.bytes;
    assert.equal(lonely?.length, 62);
    assert.equal(lonely?.subarray(-2).toString('hex'), 'de20');
  });

  it('sends 6.1 and 6.2 as Autobahn does, then closes after 1 s', async () => {
    const r612 = await record(byId('6.1.2'));
    assert.deepEqual(
      r612.calls.filter((x) => x.kind === 'frame').map((x) => [x.frame?.opcode, x.frame?.fin, payloadOf(x.frame).length]),
      [
        [1, false, 0],
        [0, false, 0],
        [0, true, 0],
      ],
    );
    assert.deepEqual(r612.calls.slice(-2), [{ kind: 'sleep', ms: 1000 }, { kind: 'close' }]);

    const r622 = await record(byId('6.2.2'));
    const frames = r622.calls.filter((x) => x.kind === 'frame');
    assert.equal(Buffer.concat(frames.map((x) => payloadOf(x.frame))).toString(), 'Hello-µ@ßöäüàá-UTF-8!!');
    assert.equal(payloadOf(frames[0]?.frame).toString(), 'Hello-µ@ßöä');

    const r621 = await record(byId('6.2.1'));
    assert.equal(r621.calls[0]?.bytes?.toString('hex'), '48656c6c6f2dc2b540c39fc3b6c3a4c3bcc3a0c3a12d5554462d382121');

    const r624 = await record(byId('6.2.4'));
    assert.deepEqual(r624.calls[0], { kind: 'text', bytes: Buffer.from('\u03ba\u1f79\u03c3\u03bc\u03b5'), fragmentSize: 1 });
  });

  it('sends the invalid 6.3 text whole, then octet by octet', async () => {
    const text = 'cebae1bdb9cf83cebcceb5eda080656469746564';
    const whole = await record(byId('6.3.1'));
    assert.deepEqual(whole.calls, [
      { kind: 'text', bytes: Buffer.from(text, 'hex'), fragmentSize: undefined },
      { kind: 'kill', ms: 1000 },
    ]);
    const split = await record(byId('6.3.2'));
    assert.equal(split.calls[0]?.fragmentSize, 1);
  });

  it('plays the 6.4 fail-fast choreography: part, 1 s, part, 1 s, part, kill after 1 s', async () => {
    const r641 = await record(byId('6.4.1'));
    assert.deepEqual(
      r641.calls.map((x) => (x.kind === 'frame' ? `${x.frame?.opcode}/${x.frame?.fin}/${payloadOf(x.frame).toString('hex')}` : `${x.kind}:${x.ms}`)),
      ['1/false/cebae1bdb9cf83cebcceb5', 'sleep:1000', '0/false/f4908080', 'sleep:1000', '0/true/656469746564', 'kill:1000'],
    );
    // Expectation follows the checkpoints: none before A, OK after A, NON-STRICT after B.
    assert.deepEqual(
      r641.expectations.map((e) => Object.keys(e.expectation)),
      [[], ['OK'], ['NON-STRICT']],
    );
    for (const e of r641.expectations) assert.deepEqual(e.close, { closedByMe: false, closeCode: [1007], requireClean: false });

    const r642 = await record(byId('6.4.2'));
    assert.deepEqual(
      r642.calls.filter((x) => x.kind === 'frame').map((x) => payloadOf(x.frame).toString('hex')),
      ['cebae1bdb9cf83cebcceb5f4', '90', '8080656469746564'],
    );
  });

  it('writes 6.4.3 and 6.4.4 as chops of one masked 21-octet text frame, then an empty FIN continuation', async () => {
    for (const [id, cuts] of [
      ['6.4.3', [11, 15]],
      ['6.4.4', [12, 13]],
    ] as const) {
      const rec = await record(byId(id));
      const raws = rec.calls.filter((x) => x.kind === 'raw').map((x) => x.bytes ?? Buffer.alloc(0));
      assert.equal(raws.length, 3, id);
      const wire = Buffer.concat(raws);
      assert.equal(wire[0], 0x01, `${id}: text opcode, FIN clear`);
      assert.equal(wire[1], 0x80 | 21, `${id}: masked, length 21`);
      const key = wire.subarray(2, 6);
      const payload = Buffer.from(wire.subarray(6).map((o, i) => o ^ key[i % 4]!));
      assert.equal(payload.toString('hex'), 'cebae1bdb9cf83cebcceb5f4908080656469746564', id);
      assert.deepEqual(
        raws.map((r) => r.length),
        [6 + cuts[0], cuts[1] - cuts[0], 21 - cuts[1]],
        id,
      );
      assert.deepEqual(
        rec.calls.map((x) => x.kind),
        ['raw', 'sleep', 'raw', 'sleep', 'raw', 'frame', 'kill'],
        id,
      );
      const last = rec.calls.find((x) => x.kind === 'frame')?.frame;
      assert.deepEqual([last?.opcode, last?.fin, payloadOf(last).length], [0, true, 0], id);
    }
  });

  it('stops the 6.4 choreography where Autobahn does once the server has closed', async () => {
    // The server's close frame arrives right after the 2nd frame: OK is the last expectation, no 3rd part.
    let open = true;
    const failedFast = await record(byId('6.4.2'), { isOpen: () => open }, (n) => {
      if (n === 2) open = false;
    });
    assert.deepEqual(
      failedFast.expectations.map((e) => Object.keys(e.expectation)),
      [[], ['OK']],
    );
    assert.deepEqual(
      failedFast.calls.map((x) => x.kind),
      ['frame', 'sleep', 'frame', 'sleep'],
    );
    // A context that can tell it is closed from the start: nothing after the first part, no expectation matches.
    const closedEarly = await record(byId('6.4.1'), { isOpen: () => false });
    assert.deepEqual(
      closedEarly.expectations.map((e) => Object.keys(e.expectation)),
      [[]],
    );
    assert.deepEqual(
      closedEarly.calls.map((x) => x.kind),
      ['frame', 'sleep'],
    );
    // closeAfter(1) sends no close of its own when the server has already closed.
    const echoLess = await record(byId('6.1.3'), { isOpen: () => false });
    assert.deepEqual(
      echoLess.calls.map((x) => x.kind),
      ['frame', 'frame', 'frame', 'sleep'],
    );
  });
});
