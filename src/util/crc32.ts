// CRC-32 with polynomial 0x04C11DB7, MSB first, no reflection, no final XOR: the CRC of MPEG-2
// PSI sections (initial value 0xFFFFFFFF) and of Ogg pages (initial value 0).

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** The CRC of bytes [start, end), continuing from `crc`. */
export function crc32Msb(data: Uint8Array, start: number, end: number, crc: number): number {
  let c = crc;
  for (let i = start; i < end; i++) c = ((c << 8) ^ TABLE[((c >>> 24) ^ data[i]!) & 0xff]!) >>> 0;
  return c >>> 0;
}
