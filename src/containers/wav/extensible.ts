// WAVE_FORMAT_EXTENSIBLE (0xFFFE; Microsoft "WAVEFORMATEXTENSIBLE", KSDATAFORMAT_SUBTYPE_* GUIDs):
// the fmt chunk grows to 40 bytes, cbSize(u16)=22 validBits(u16) channelMask(u32) SubFormat(GUID,
// whose first two bytes are the plain format tag: 1 PCM, 3 IEEE float, 6 A-law, 7 mu-law).
// ffmpeg writes it for more than two channels or more than 16 bits.

export const WAVE_FORMAT_EXTENSIBLE = 0xfffe;

/** The SubFormat's format tag of the file's fmt chunk, when it is WAVE_FORMAT_EXTENSIBLE; else undefined. */
export function wavSubFormat(buf: Buffer): number | undefined {
  if (buf.length < 12) return undefined;
  let p = 12;
  while (p + 8 <= buf.length) {
    const id = buf.toString('latin1', p, p + 4);
    const size = buf.readUInt32LE(p + 4);
    if (id === 'fmt ') {
      if (size < 40 || p + 8 + 26 > buf.length || buf.readUInt16LE(p + 8) !== WAVE_FORMAT_EXTENSIBLE) return undefined;
      return buf.readUInt16LE(p + 8 + 24);
    }
    if (id === 'data') return undefined;
    p += 8 + size + (size & 1);
  }
  return undefined;
}
