// The last publisher stamp (stamp.ts) in an HLS segment or part, for the "segment age at fetch"
// figure: fetch completion wall time - the publisher's send wall time of that frame.
//
// fMP4 (ISO/IEC 14496-12 moof+mdat): the samples' NAL units sit whole in the mdat, so the stamp
// is found in the bytes as they are. MPEG-TS (ISO/IEC 13818-1 §2.4.3.2): a PES payload is split
// over 188-byte transport packets, so a stamp may straddle two of them; the payload bytes of
// each PID are joined first:
//
//   0x47 | TEI(1) PUSI(1) prio(1) PID(13) | scrambling(2) adaptation_field_control(2) cc(4)
//   [adaptation_field_length u8, that many bytes]  (when adaptation_field_control & 2)
//   payload to the end of the 188 bytes           (when adaptation_field_control & 1)

import { lastStampIn } from './stamp.js';

const TS_PACKET = 188;
const TS_SYNC = 0x47;

/** The largest stamp in a TS segment, -1 when none (or the bytes are not TS). */
export function lastStampInTs(data: Buffer): number {
  const byPid = new Map<number, { pieces: Buffer[]; bytes: number }>();
  for (let p = 0; p + TS_PACKET <= data.length; p += TS_PACKET) {
    if (data[p] !== TS_SYNC) return -1; // not aligned TS: nothing trustworthy to report
    const pid = ((data[p + 1]! & 0x1f) << 8) | data[p + 2]!;
    const afc = (data[p + 3]! >> 4) & 3;
    if ((afc & 1) === 0) continue;
    const start = p + 4 + ((afc & 2) !== 0 ? 1 + data[p + 4]! : 0);
    if (start >= p + TS_PACKET) continue;
    let entry = byPid.get(pid);
    if (!entry) byPid.set(pid, (entry = { pieces: [], bytes: 0 }));
    entry.pieces.push(data.subarray(start, p + TS_PACKET));
    entry.bytes += p + TS_PACKET - start;
  }
  let best = -1;
  for (const { pieces, bytes } of byPid.values()) best = Math.max(best, lastStampIn(Buffer.concat(pieces, bytes)));
  return best;
}

/** The largest stamp in a segment or part: TS when it starts with a sync byte at 188-byte steps, else contiguous bytes. */
export function lastStampInSegment(data: Buffer): number {
  const looksTs = data.length >= TS_PACKET && data[0] === TS_SYNC && (data.length < 2 * TS_PACKET || data[TS_PACKET] === TS_SYNC);
  return looksTs ? lastStampInTs(data) : lastStampIn(data);
}
