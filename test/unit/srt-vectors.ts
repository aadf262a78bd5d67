// Datagrams recorded from libsrt 1.5.1 (Debian's ffmpeg 5.1 publishing to a Haze listener):
// `ffmpeg -re -i src.ts -c copy -f mpegts 'srt://127.0.0.1:P?streamid=#!::r=live+cap,m=publish&passphrase=capture-passphrase-1&pbkeylen=16&latency=200000'`
// (ffmpeg's latency option counts microseconds: 200 ms). Used as vectors by the SRT unit tests.

export const RECORDED_PASSPHRASE = 'capture-passphrase-1';

/** The caller's INDUCTION request. */
export const RECORDED_INDUCTION = Buffer.from([
  '8000000000000000000016760000000000000004000000024c65c428000005dc0000200000000001106aa94200000000',
  '0100007f000000000000000000000000',
].join(''), 'hex');

/** The caller's CONCLUSION: HSREQ, KMREQ (AES-128, even key), SID. */
export const RECORDED_CONCLUSION = Buffer.from([
  '80000000000000000000de630000000000000005000200074c65c428000005dc00002000ffffffff106aa942a213cf62',
  '0100007f0000000000000000000000000001000300010501000000bf00c800c8000500063a3a2123696c3d7263206576',
  '6d2c70616275703d6873696c0003000e122029010000000002000200000004044b87d63a068e20a6a59d78f36af5b8b2',
  'dbe72cb8d1a2ed543bb1e66fcfbc2720dbd424747b8b8367',
].join(''), 'hex');

/** An encrypted data packet of MPEG-TS (one TS packet). */
export const RECORDED_DATA = Buffer.from([
  '4c65c431e800000a0004cff80d17d4b350da2cfff858e6e2adcb1b57ddbd3e7d4383e9675246d9d091fb92ee2a45f487',
  '6df6a4324bacc5bc8230f414d78871730321c1af041c92653206594eeeb1d11adc2924500688c31f8833f3f740416d79',
  'f6605ac7ebf9a0e45ff53082c3f542a2687f1f5abd8ce8b53d128168189c3ce58087de14bc977bed7c121ba8180e7e00',
  'f4eb865f524c4c1f722961960d864fee99b7db50277262a3e724924ab5f7619e61b05d4b1274eb058b90ad97b27f1fb0',
  '7c3c4b2a9bdd15652d9ae0d7',
].join(''), 'hex');
