/** Size of one arena. */
const ARENA_SIZE = 64 * 1024;

/** Frames up to this size (header + payload) are copied into the arena; larger payloads go by reference. */
export const SMALL_FRAME = 2048;

/**
 * A process-wide arena for outgoing frames, in the spirit of Node's own Buffer pool: small frames are
 * written into it back to back, so a burst of frames for one connection forms one contiguous slice
 * and leaves in a single write. A region once handed out is never written again: the arena only moves
 * forward, and a fresh one is taken when it is full, so slices still queued on sockets stay intact.
 */
class OutputArena {
  /** The current arena. */
  buf: Buffer = Buffer.allocUnsafeSlow(ARENA_SIZE);
  /** Where the next frame may be written in {@link buf}. */
  at = 0;

  /** Makes room for `size` bytes at {@link at} (size <= SMALL_FRAME), taking a fresh arena if needed. */
  reserve(size: number): void {
    if (this.at + size > this.buf.length) {
      this.buf = Buffer.allocUnsafeSlow(ARENA_SIZE);
      this.at = 0;
    }
  }
}

/** The one arena of this process (each worker thread has its own). */
export const outputArena = new OutputArena();
