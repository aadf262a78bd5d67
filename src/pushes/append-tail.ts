// Where an existing recording's timeline ends, so `append` continues it instead of jumping
// back to 0. Pure: the caller reads the file's tail.
//   FLV (spec v10.1 Annex E.3): the file ends with PreviousTagSize (UI32) of the last tag;
//     that tag's header holds Timestamp (UI24) + TimestampExtended (UI8) at bytes 4..7.
//   MPEG-TS (ISO 13818-1 §2.4.3.6, §2.4.3.7): 188-byte packets; a packet with
//     payload_unit_start_indicator starts a PES whose optional header may carry a 33-bit PTS.

/** The timestamp of the last FLV tag, given the file's last bytes; undefined if it cannot be found. */
export function lastFlvTimestampMs(tail: Buffer): number | undefined {
  if (tail.length < 4 + 11) return undefined;
  const prevSize = tail.readUInt32BE(tail.length - 4);
  const tagStart = tail.length - 4 - prevSize;
  if (prevSize < 11 || tagStart < 0) return undefined;
  const type = tail[tagStart]! & 0x1f;
  if (type !== 8 && type !== 9 && type !== 18) return undefined;
  const dataSize = tail.readUIntBE(tagStart + 1, 3);
  if (dataSize + 11 !== prevSize) return undefined;
  return tail.readUIntBE(tagStart + 4, 3) | (tail[tagStart + 7]! << 24);
}

const TS_PACKET = 188;

/** The highest PTS (ms) in the complete TS packets of `tail`, which must start at a packet boundary. */
export function lastTsPtsMs(tail: Buffer): number | undefined {
  let best: number | undefined;
  for (let at = 0; at + TS_PACKET <= tail.length; at += TS_PACKET) {
    if (tail[at] !== 0x47) continue;
    const pusi = (tail[at + 1]! & 0x40) !== 0;
    if (!pusi) continue;
    const afc = (tail[at + 3]! >> 4) & 3;
    if ((afc & 1) === 0) continue; // no payload
    let p = at + 4;
    if (afc & 2) p += 1 + tail[at + 4]!;
    const end = at + TS_PACKET;
    if (p + 14 > end) continue;
    if (tail[p] !== 0 || tail[p + 1] !== 0 || tail[p + 2] !== 1) continue; // PSI, not PES
    const flags = tail[p + 7]!;
    if ((flags & 0x80) === 0) continue; // no PTS
    const b = p + 9;
    // PTS: 3 bits, 15 bits, 15 bits with marker bits between; 33 bits exceed int32, so use arithmetic
    const pts = ((tail[b]! >> 1) & 7) * 2 ** 30 + ((tail[b + 1]! << 7) | (tail[b + 2]! >> 1)) * 2 ** 15 + ((tail[b + 3]! << 7) | (tail[b + 4]! >> 1));
    const ms = Math.floor(pts / 90);
    if (best === undefined || ms > best) best = ms;
  }
  return best;
}
