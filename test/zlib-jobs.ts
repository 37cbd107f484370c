import zlib from 'node:zlib';

/** zlib jobs in flight, counted while installed, and the most seen at once. */
export interface ZlibJobWatch {
  readonly inFlight: number;
  readonly peak: number;
  /** Puts zlib back as it was. */
  restore(): void;
}

/**
 * Counts zlib jobs process-wide by wrapping `flush` on the raw deflate and inflate stream prototypes:
 * each permessage-deflate job is one write and one flush, and ends with the flush callback or an
 * error (invalid data), whichever comes first. Synchronous zlib calls are not counted.
 */
export function watchZlibJobs(): ZlibJobWatch {
  let inFlight = 0;
  let peak = 0;
  type Flush = (this: NodeJS.EventEmitter, kind: unknown, callback: () => void) => unknown;
  const protos = [zlib.DeflateRaw.prototype, zlib.InflateRaw.prototype] as unknown as Array<{ flush: Flush }>;
  const originals = protos.map((p) => Object.getOwnPropertyDescriptor(p, 'flush'));
  for (const proto of protos) {
    const inherited = proto.flush;
    proto.flush = function (this: NodeJS.EventEmitter, kind: unknown, callback: () => void) {
      inFlight++;
      peak = Math.max(peak, inFlight);
      let done = false;
      const finish = (): void => {
        if (!done) inFlight--;
        done = true;
      };
      this.once('error', finish);
      return inherited.call(this, kind, () => {
        this.off('error', finish);
        finish();
        callback();
      });
    };
  }
  return {
    get inFlight() {
      return inFlight;
    },
    get peak() {
      return peak;
    },
    restore() {
      protos.forEach((proto, i) => {
        const d = originals[i];
        if (d === undefined) delete (proto as { flush?: unknown }).flush;
        else Object.defineProperty(proto, 'flush', d);
      });
    },
  };
}
