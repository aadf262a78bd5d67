// CRC-32/MPEG-2 for PSI sections: ISO/IEC 13818-1 Annex A (polynomial 0x04C11DB7, initial value
// 0xFFFFFFFF, MSB first, no reflection, no final XOR). A section including its CRC_32 field
// yields 0.

import { crc32Msb } from '../../util/crc32.js';

export function crc32Mpeg2(data: Uint8Array, start = 0, end = data.length): number {
  return crc32Msb(data, start, end, 0xffffffff);
}
