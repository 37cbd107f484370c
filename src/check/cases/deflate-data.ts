/**
 * The payloads of the compression cases (groups 12 and 13). Autobahn cycles through five files of its
 * own (a JSON report, the Lena bitmap, Goethe's Faust I from Project Gutenberg, an HTML report and a
 * PDF paper). wsmod does not ship those files: each data set here is a deterministic stand-in of the
 * same kind and about the same size, generated from a fixed seed, so that compression behaves alike —
 * repetitive ASCII markup, a smooth 8-bit image, natural-language text with UTF-8 letters, and a
 * document made mostly of incompressible streams. Every data set is larger than the largest message
 * (131072 octets), and the text ones are pure ASCII, so any slice is valid UTF-8.
 */
import { prng, prngBytes } from '../../prng.ts';

/** One data set: what Autobahn uses in its place, how it is sent, and its bytes (built on first use). */
export interface DeflateTestData {
  /** Autobahn's key for the data set. */
  readonly key: 'json_data1' | 'lena512' | 'gutenberg_faust' | 'html_data1' | 'ooms';
  /** What the data is. */
  readonly description: string;
  /** Sent as binary messages (else text). */
  readonly binary: boolean;
  bytes(): Buffer;
}

function pick<T>(rnd: () => number, list: readonly T[]): T {
  return list[Math.floor(rnd() * list.length)]!;
}

/** Case ids like the suite's own, for the report-shaped data sets. */
function caseIds(rnd: () => number, count: number): string[] {
  const ids: string[] = [];
  for (let g = 1; ids.length < count; g++) {
    const subs = 1 + Math.floor(rnd() * 9);
    for (let s = 1; s <= subs && ids.length < count; s++) {
      const n = 1 + Math.floor(rnd() * 20);
      for (let c = 1; c <= n && ids.length < count; c++) ids.push(`${g}.${s}.${c}`);
    }
  }
  return ids;
}

const AGENTS = ['wsmod/0.1.0', 'EchoServer/2.4.1', 'ExampleHost/1.0', 'ReferenceImpl/0.9.3', 'TestPeer/3.2'];
const BEHAVIORS = ['OK', 'OK', 'OK', 'OK', 'NON-STRICT', 'INFORMATIONAL', 'UNIMPLEMENTED', 'FAILED'];
const CLOSE_CODES = [1000, 1000, 1000, 1002, 1007, 1001];

/** A test report as JSON (indent 3), about 194 KB of ASCII. */
function jsonReport(): Buffer {
  const rnd = prng(0x4a534f4e);
  const target = 194_000;
  const report: Record<string, Record<string, unknown>> = {};
  const ids = caseIds(rnd, 400);
  let text = '';
  for (let a = 0; text.length < target; a++) {
    const agent = `${AGENTS[a % AGENTS.length]!}${a >= AGENTS.length ? `-${Math.floor(a / AGENTS.length)}` : ''}`;
    const cases: Record<string, unknown> = {};
    for (const id of ids) {
      const code = pick(rnd, CLOSE_CODES);
      cases[id] = {
        behavior: pick(rnd, BEHAVIORS),
        behaviorClose: rnd() < 0.9 ? 'OK' : 'UNCLEAN',
        duration: Math.floor(rnd() * rnd() * 2000),
        remoteCloseCode: code,
        reportfile: `${agent.toLowerCase().replace(/[^a-z0-9]+/g, '_')}_case_${id.replace(/\./g, '_')}.json`,
      };
    }
    report[agent] = cases;
    text = JSON.stringify(report, null, 3);
  }
  return Buffer.from(`${text}\n`, 'latin1');
}

/** A 512x512 8-bit grayscale BMP (263222 octets): smooth shapes, gradients and a little noise. */
function bitmap(): Buffer {
  const rnd = prng(0x4c454e41);
  const width = 512;
  const height = 512;
  const pixels = width * height;
  const offset = 14 + 40 + 256 * 4;
  const out = Buffer.alloc(offset + pixels);
  out.write('BM', 0, 'latin1');
  out.writeUInt32LE(out.length, 2);
  out.writeUInt32LE(offset, 10);
  out.writeUInt32LE(40, 14);
  out.writeInt32LE(width, 18);
  out.writeInt32LE(height, 22);
  out.writeUInt16LE(1, 26);
  out.writeUInt16LE(8, 28);
  out.writeUInt32LE(pixels, 34);
  out.writeInt32LE(2835, 38);
  out.writeInt32LE(2835, 42);
  out.writeUInt32LE(256, 46);
  for (let i = 0; i < 256; i++) {
    out[54 + i * 4] = i;
    out[54 + i * 4 + 1] = i;
    out[54 + i * 4 + 2] = i;
  }
  const blobs = Array.from({ length: 12 }, () => ({ x: rnd() * width, y: rnd() * height, r: 20 + rnd() * 120, v: rnd() * 160 - 80 }));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let v = 110 + 50 * Math.sin(x / 37) * Math.cos(y / 53) + 30 * Math.sin((x + 2 * y) / 91);
      for (const b of blobs) {
        const d = Math.hypot(x - b.x, y - b.y);
        if (d < b.r) v += b.v * (1 - d / b.r);
      }
      v += (rnd() - 0.5) * 14;
      out[offset + y * width + x] = Math.max(0, Math.min(255, Math.round(v)));
    }
  }
  return out;
}

const SPEAKERS = ['FAUST', 'MEPHISTOPHELES', 'MARGARETE', 'WAGNER', 'MARTHE', 'CHOR DER ENGEL', 'DER HERR', 'VALENTIN'];
const WORDS = [
  'und', 'der', 'die', 'das', 'ich', 'du', 'nicht', 'mit', 'sich', 'ein', 'zu', 'ist', 'mir', 'so', 'wie', 'was',
  'Geist', 'Welt', 'Herz', 'Himmel', 'Nacht', 'Erde', 'Seele', 'Leben', 'Liebe', 'Wissen', 'Natur', 'Kraft', 'Zeit',
  'schön', 'süß', 'größer', 'hören', 'fühlen', 'Glück', 'Träume', 'Mädchen', 'über', 'für', 'wär', 'möcht', 'Blüten',
  'Teufel', 'Doktor', 'Buch', 'Wort', 'Tat', 'Sinn', 'Augenblick', 'verweile', 'doch', 'bist', 'heißt', 'Straße',
  'Gretchen', 'Schüler', 'Gewölbe', 'Studierzimmer', 'Osterspaziergang', 'Hexenküche', 'Walpurgisnacht', 'Kerker',
  'Schwert', 'Feuer', 'Wasser', 'Luft', 'ewig', 'tief', 'hoch', 'still', 'wild', 'rein', 'dunkel', 'hell',
];

/** German verse in UTF-8 (about 222 KB), dialogue in the manner of a play. Sent as binary, as Autobahn does. */
function germanVerse(): Buffer {
  const rnd = prng(0x46415553);
  const target = 222_000;
  const parts: string[] = ['Faust. Eine Tragödie (synthetischer Text).\r\n\r\n'];
  let size = Buffer.byteLength(parts[0]!);
  while (size < target) {
    let block = `${pick(rnd, SPEAKERS)}:\r\n`;
    const lines = 2 + Math.floor(rnd() * 8);
    for (let l = 0; l < lines; l++) {
      const n = 4 + Math.floor(rnd() * 6);
      const words = Array.from({ length: n }, () => pick(rnd, WORDS));
      const line = words.join(' ');
      block += `${line.charAt(0).toUpperCase()}${line.slice(1)}${pick(rnd, [',', ';', '!', '?', '.', ''])}\r\n`;
    }
    block += '\r\n';
    parts.push(block);
    size += Buffer.byteLength(block);
  }
  return Buffer.from(parts.join(''));
}

/** A test report as an HTML table (about 380 KB of ASCII). */
function htmlReport(): Buffer {
  const rnd = prng(0x48544d4c);
  const target = 380_000;
  const head = [
    '<!DOCTYPE html>',
    '<html>',
    '   <head>',
    '      <meta charset="utf-8" />',
    '      <style lang="css">',
    'body { background-color: #F4F4F4; color: #333; font-family: Segoe UI,Tahoma,Arial,Verdana,sans-serif; }',
    'td.case_ok { background-color: #0a0; text-align: center; }',
    'td.case_failed { background-color: #900; text-align: center; }',
    'td.case_info { background-color: #4095BF; text-align: center; }',
    '</style>',
    '   </head>',
    '   <body>',
    '      <table id="agent_case_results">',
  ].join('\n');
  const rows: string[] = [head];
  let size = head.length;
  const ids = caseIds(rnd, 100_000);
  for (const id of ids) {
    if (size >= target) break;
    const u = id.replace(/\./g, '_');
    const cells = AGENTS.slice(0, 3).map((agent) => {
      const b = pick(rnd, BEHAVIORS);
      const cls = b === 'OK' ? 'case_ok' : b === 'FAILED' ? 'case_failed' : 'case_info';
      const file = `${agent.toLowerCase().replace(/[^a-z0-9]+/g, '_')}_case_${u}.html`;
      return `            <td class="${cls}"><a href="${file}">${b === 'OK' ? 'Pass' : b}</a></td><td class="close close_hide ${cls}"><span class="close_code">${pick(rnd, CLOSE_CODES)}</span></td>`;
    });
    const row = ['         <tr class="agent_case_result_row">', `            <td class="case"><a href="#case_desc_${u}">Case ${id}</a></td>`, ...cells, '         </tr>'].join('\n');
    rows.push(row);
    size += row.length + 1;
  }
  rows.push('      </table>', '   </body>', '</html>', '');
  return Buffer.from(rows.join('\n'), 'latin1');
}

/** A PDF-shaped document (about 1 MB): object dictionaries around streams of compressed-looking bytes. */
function pdfLike(): Buffer {
  const rnd = prng(0x504446aa);
  const target = 1_042_000;
  const parts: Buffer[] = [Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n', 'latin1')];
  let size = parts[0]!.length;
  for (let obj = 1; size < target; obj++) {
    let part: Buffer;
    if (obj % 4 === 0) {
      const fonts = ['Times-Roman', 'Helvetica', 'Courier', 'Times-Bold'];
      part = Buffer.from(
        `${obj} 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 ${obj + 1} 0 R >> /BaseFont /${pick(rnd, fonts)} >> /Contents ${obj + 2} 0 R >>\nendobj\n`,
        'latin1',
      );
    } else {
      const length = 512 + Math.floor(rnd() * 16384);
      const body = prngBytes(rnd, length);
      part = Buffer.concat([
        Buffer.from(`${obj} 0 obj\n<< /Length ${length} /Filter /FlateDecode >>\nstream\n`, 'latin1'),
        body,
        Buffer.from('\nendstream\nendobj\n', 'latin1'),
      ]);
    }
    parts.push(part);
    size += part.length;
  }
  parts.push(Buffer.from('trailer\n<< /Root 1 0 R >>\n%%EOF\n', 'latin1'));
  return Buffer.concat(parts);
}

function lazy(build: () => Buffer): () => Buffer {
  let value: Buffer | undefined;
  return () => (value ??= build());
}

/** The data sets, by Autobahn's key. */
export const DEFLATE_DATA = {
  json_data1: { key: 'json_data1', description: 'Large JSON data file (a test report, ASCII)', binary: false, bytes: lazy(jsonReport) },
  lena512: { key: 'lena512', description: 'Bitmap 512x512 8-bit grayscale (photo-like)', binary: true, bytes: lazy(bitmap) },
  gutenberg_faust: { key: 'gutenberg_faust', description: 'Human readable German verse (UTF-8, sent as binary)', binary: true, bytes: lazy(germanVerse) },
  html_data1: { key: 'html_data1', description: 'Large HTML file (a test report table, ASCII)', binary: false, bytes: lazy(htmlReport) },
  ooms: { key: 'ooms', description: 'A larger PDF-like document (mostly incompressible streams)', binary: true, bytes: lazy(pdfLike) },
} as const satisfies Record<DeflateTestData['key'], DeflateTestData>;

/** Autobahn's order of the data sets in group 12 (12.1 to 12.5). */
export const GROUP12_DATA: readonly DeflateTestData[] = [
  DEFLATE_DATA.json_data1,
  DEFLATE_DATA.lena512,
  DEFLATE_DATA.gutenberg_faust,
  DEFLATE_DATA.html_data1,
  DEFLATE_DATA.ooms,
];

/**
 * Message `index` of a run of `length`-octet messages: the data set read cyclically, each message
 * starting where the previous one ended (Autobahn's payloadRXPtr).
 */
export function messageAt(data: Buffer, index: number, length: number): Buffer {
  const start = (index * length) % data.length;
  if (start + length <= data.length) return data.subarray(start, start + length);
  const out = Buffer.alloc(length);
  let at = 0;
  let from = start;
  while (at < length) {
    const n = Math.min(length - at, data.length - from);
    data.copy(out, at, from, from + n);
    at += n;
    from = 0;
  }
  return out;
}
