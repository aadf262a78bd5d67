// Block lacing (RFC 9559 §10.3 / §10.4): several frames in one (Simple)Block. After the flags
// byte comes the frame count minus one, then the sizes of all frames but the last:
//   Xiph (flags 0x02):  each size as a run of 255s plus a final byte < 255, summed
//   EBML (flags 0x06):  first size as a VINT, then signed VINT deltas (value - (2^(7w-1) - 1))
//   fixed (flags 0x04): no sizes; the payload splits into equal parts
// The last frame takes what remains. Frames are subarrays of the block (no copies).

import { HazeError } from '../../util/errors.js';
import { readVint } from './ebml.js';

export const LACING_NONE = 0;
export const LACING_XIPH = 1;
export const LACING_FIXED = 2;
export const LACING_EBML = 3;

/**
 * Splits a laced payload (`data` starts at the frame count byte) into frames. `at` is the
 * payload's byte position in the input, for error messages.
 */
export function splitLaces(data: Buffer, lacing: number, at: number): Buffer[] {
  if (lacing === LACING_NONE) return [data];
  if (data.length < 1) throw new HazeError('HAZE_ERR_MALFORMED', `laced block at ${at} without frame count`);
  const count = data[0]! + 1;
  let pos = 1;
  const sizes: number[] = [];
  if (lacing === LACING_FIXED) {
    const total = data.length - 1;
    if (total % count !== 0) throw new HazeError('HAZE_ERR_MALFORMED', `fixed lacing at ${at}: ${total} bytes do not split into ${count} frames`);
    for (let i = 0; i < count - 1; i++) sizes.push(total / count);
  } else if (lacing === LACING_XIPH) {
    for (let i = 0; i < count - 1; i++) {
      let size = 0;
      for (;;) {
        if (pos >= data.length) throw new HazeError('HAZE_ERR_MALFORMED', `Xiph lace sizes run past the block at ${at}`);
        const b = data[pos++]!;
        size += b;
        if (b !== 255) break;
      }
      sizes.push(size);
    }
  } else {
    let prev = 0;
    for (let i = 0; i < count - 1; i++) {
      const v = readVint(data, pos);
      if (v.allOnes) throw new HazeError('HAZE_ERR_MALFORMED', `EBML lace size at ${at + pos} is reserved`);
      pos += v.width;
      // The first size is unsigned; later ones are deltas stored with a bias.
      const size = i === 0 ? v.value : prev + v.value - (2 ** (7 * v.width - 1) - 1);
      if (size < 0) throw new HazeError('HAZE_ERR_MALFORMED', `negative EBML lace size at ${at + pos}`);
      sizes.push(size);
      prev = size;
    }
  }
  const frames: Buffer[] = [];
  for (const size of sizes) {
    if (size > data.length - pos) throw new HazeError('HAZE_ERR_MALFORMED', `lace of ${size} bytes runs past the block at ${at}`);
    frames.push(data.subarray(pos, pos + size));
    pos += size;
  }
  frames.push(data.subarray(pos));
  return frames;
}
