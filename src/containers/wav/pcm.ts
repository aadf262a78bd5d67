// Integer PCM sample layout conversions. Haze holds PCM as MistServer's DTSC does: signed
// integer samples, big-endian (its Matroska mapping is A_PCM/INT/BIG, its WAV output swaps the
// bytes of samples wider than 8 bits). WAV (RIFF, Microsoft "Multimedia Programming Interface
// and Data Specifications 1.0", WAVE_FORMAT_PCM) and FLV SoundFormat 3 store little-endian
// samples, and 8-bit samples unsigned (offset 128) rather than signed.

/** A copy of `data` with the bytes of each `bytesPerSample`-byte sample reversed (BE <-> LE). */
export function swapSampleBytes(data: Uint8Array, bytesPerSample: number): Buffer {
  const out = Buffer.allocUnsafe(data.length);
  const whole = data.length - (data.length % bytesPerSample);
  if (bytesPerSample === 2) {
    for (let i = 0; i < whole; i += 2) {
      out[i] = data[i + 1]!;
      out[i + 1] = data[i]!;
    }
  } else {
    for (let i = 0; i < whole; i += bytesPerSample) {
      for (let k = 0; k < bytesPerSample; k++) out[i + k] = data[i + bytesPerSample - 1 - k]!;
    }
  }
  // a cut-off sample at the end stays as it is; it cannot be reordered meaningfully
  for (let i = whole; i < data.length; i++) out[i] = data[i]!;
  return out;
}

/** A copy of 8-bit samples with the sign convention flipped (signed <-> offset-128 unsigned). */
export function flipSign8(data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i]! ^ 0x80;
  return out;
}

/**
 * Converts between Haze's PCM (signed, big-endian) and the WAV/FLV layout (little-endian,
 * 8-bit unsigned); the conversion is its own inverse. `bits` is the track's sample size.
 */
export function convertPcmByteOrder(data: Uint8Array, bits: number): Buffer {
  if (bits <= 8) return flipSign8(data);
  return swapSampleBytes(data, Math.ceil(bits / 8));
}
