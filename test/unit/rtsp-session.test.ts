// The RTSP server session and client in one process over 127.0.0.1 (no Haze server): a
// stream of H.264 + AAC packets goes through the RTP writer, the server's PLAY (interleaved
// TCP and UDP) and the client's ingest, and comes out as the same access units lined up in
// time; a publisher's ANNOUNCE / SETUP (record) / RECORD with interleaved RTP arrives in the
// publish handler as the same packets; refusals answer with the right status.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { buildAvcC } from '../../src/media/h264.js';
import { buildAsc } from '../../src/media/aac.js';
import { buildHvcC } from '../../src/media/hevc.js';
import { synthesizeOpusHead } from '../../src/containers/ogg/opus.js';
import { joinNalUnits, splitAnnexB, splitNalUnits } from '../../src/media/nal-units.js';
import type { Packet, Track } from '../../src/media/types.js';
import { RtspPlayClient } from '../../src/protocols/rtsp/client.js';
import { RtspHeaders, RtspReader, serializeRequest, type RtspResponse } from '../../src/protocols/rtsp/message.js';
import { RtpChunkWriter } from '../../src/protocols/rtsp/rtp-writer.js';
import { parseRtcp } from '../../src/protocols/rtp/rtcp.js';
import { describeSdp, outgoingTracks } from '../../src/protocols/rtsp/sdp-tracks.js';
import { RtspServerSession, type RtspPlayback, type RtspSessionHandler } from '../../src/protocols/rtsp/server-session.js';
import type { PlaySink } from '../../src/protocols/rtsp/play-sink.js';
import { HazeError } from '../../src/util/errors.js';
import { StreamHub } from '../../src/hub/stream-hub.js';
import { startViewer, type OutputFormat } from '../../src/outputs/play.js';
import type { Viewer } from '../../src/outputs/viewer.js';
import { RTSP_CAPABILITY } from '../../src/worker/rtsp-handler.js';
import { Logger } from '../../src/util/log.js';

const PS = splitAnnexB(Buffer.from('000000016764000aacd9428df93011000003000100000300140f1225960000000168ebe3cb22c0', 'hex'));
const VIDEO: Track = { id: 1, type: 'video', codec: 'H264', init: buildAvcC(PS[0]!, PS[1]!), bps: 0, lang: 'und', width: 160, height: 90, fpks: 25000 };
const AUDIO: Track = { id: 2, type: 'audio', codec: 'AAC', init: buildAsc({ objectType: 2, sampleRate: 48000, channelConfig: 2 }), bps: 0, lang: 'und', rate: 48000, channels: 2, size: 16 };

/** 2 s of 25 fps video (a keyframe each second, some frames larger than a packet) and AAC frames. */
function makePackets(): Packet[] {
  const out: Packet[] = [];
  for (let i = 0; i < 50; i++) {
    const size = i % 25 === 0 ? 6000 : 300 + i * 10;
    const nal = Buffer.alloc(size, i);
    nal[0] = i % 25 === 0 ? 0x65 : 0x41;
    out.push({ trackId: 1, timeMs: i * 40, offsetMs: 0, keyframe: i % 25 === 0, data: joinNalUnits([nal]) });
  }
  for (let i = 0; i < 93; i++) out.push({ trackId: 2, timeMs: Math.round((i * 1024 * 1000) / 48000), offsetMs: 0, keyframe: true, data: Buffer.alloc(100 + (i % 7), i) });
  return out.sort((a, b) => a.timeMs - b.timeMs);
}
const PACKETS = makePackets();

// HEVC, Opus, A-law and L16: the other payload formats through the same path
const HEVC_PS = splitAnnexB(
  Buffer.from(
    '0000000140010c01ffff01600000030090000003000003001e959809000000014201010160000003009000000300000300' +
      '1ea0142061f265959a4932bc05a02000000300200000030141000000014401c172b46240',
    'hex',
  ),
);
const OTHER_TRACKS: Track[] = [
  { id: 1, type: 'video', codec: 'HEVC', init: buildHvcC([HEVC_PS[0]!], [HEVC_PS[1]!], [HEVC_PS[2]!]), bps: 0, lang: 'und', width: 160, height: 90, fpks: 25000 },
  { id: 2, type: 'audio', codec: 'opus', init: synthesizeOpusHead(2, 48000), bps: 0, lang: 'und', rate: 48000, channels: 2, size: 16 },
  { id: 3, type: 'audio', codec: 'ALAW', init: Buffer.alloc(0), bps: 0, lang: 'und', rate: 8000, channels: 1, size: 8 },
  { id: 4, type: 'audio', codec: 'PCM', init: Buffer.alloc(0), bps: 0, lang: 'und', rate: 44100, channels: 2, size: 16 },
];
function makeOtherPackets(): Packet[] {
  const out: Packet[] = [];
  for (let i = 0; i < 25; i++) {
    const nal = Buffer.alloc(i === 0 ? 5000 : 400, i);
    nal[0] = (i === 0 ? 19 : 1) << 1;
    nal[1] = 1;
    out.push({ trackId: 1, timeMs: i * 40, offsetMs: 0, keyframe: i === 0, data: joinNalUnits([nal]) });
  }
  for (let i = 0; i < 50; i++) out.push({ trackId: 2, timeMs: i * 20, offsetMs: 0, keyframe: true, data: Buffer.alloc(60 + i, i) });
  for (let i = 0; i < 50; i++) out.push({ trackId: 3, timeMs: i * 20, offsetMs: 0, keyframe: true, data: Buffer.alloc(160, i) });
  // 441 stereo samples (10 ms) each: a packet of 1764 bytes, cut in two
  for (let i = 0; i < 100; i++) out.push({ trackId: 4, timeMs: i * 10, offsetMs: 0, keyframe: true, data: Buffer.alloc(1764, i) });
  return out.sort((a, b) => a.timeMs - b.timeMs);
}
const OTHER_PACKETS = makeOtherPackets();

const log = new Logger({ test: 'rtsp-session' });
let server: net.Server;
const sockets = new Set<net.Socket>();
let port = 0;
const published: { tracks: Track[]; packets: Packet[]; closed?: [string, boolean] } = { tracks: [], packets: [] };

const handler: RtspSessionHandler = {
  async play(req) {
    if (req.path === 'missing') throw new HazeError('HAZE_ERR_NOT_FOUND', 'no such stream');
    if (req.path === 'secret') throw new HazeError('HAZE_ERR_REFUSED', 'no');
    const tracks = req.path === 'others' ? OTHER_TRACKS : [VIDEO, AUDIO];
    const packets = req.path === 'others' ? OTHER_PACKETS : PACKETS;
    const writer = new RtpChunkWriter(() => 1_700_000_000_000);
    writer.setTracks(tracks);
    let timer: NodeJS.Timeout | undefined;
    const playback: RtspPlayback = {
      tracks: outgoingTracks(tracks),
      // `gone`: a stream that ends between DESCRIBE and PLAY
      ended: req.path === 'gone',
      start(sink: PlaySink) {
        // the packets in bursts, as a live source would deliver them
        let i = 0;
        timer = setInterval(() => {
          const burst = packets.slice(i, i + 15);
          i += 15;
          const chunks = burst.map((p) => writer.packet(p)).filter((b): b is Buffer => b !== null);
          if (chunks.length > 0) sink.writev(chunks);
          if (i >= packets.length) clearInterval(timer);
        }, 5);
      },
      stop: () => clearInterval(timer),
      close: () => clearInterval(timer),
    };
    return playback;
  },
  async publish(req, tracks) {
    if (!req.path.startsWith('live')) throw new HazeError('HAZE_ERR_REFUSED', 'push not allowed');
    return {
      setTrack: (t) => published.tracks.push(t),
      push: (p) => published.packets.push({ ...p, data: Buffer.from(p.data) }),
      countBytes: () => {},
      close: (reason, clean) => (published.closed = [reason, clean]),
    };
    void tracks;
  },
};

before(async () => {
  server = net.createServer((s) => {
    sockets.add(s);
    new RtspServerSession(s, handler, log);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
});
after(() => {
  for (const s of sockets) s.destroy();
  server.close();
});

/** md5 of each packet of a track; video without the parameter sets the packetizer puts before keyframes. */
function comparable(ps: Packet[], trackId: number): string[] {
  return ps
    .filter((p) => p.trackId === trackId)
    .map((p) => {
      const data = trackId === 1 ? joinNalUnits(splitNalUnits(p.data).filter((n) => (n[0]! & 0x1f) !== 7 && (n[0]! & 0x1f) !== 8)) : p.data;
      return createHash('md5').update(data).digest('hex').slice(0, 8);
    });
}

async function playOnce(transport: 'tcp' | 'udp'): Promise<Packet[]> {
  const got: Packet[] = [];
  const client = await RtspPlayClient.play(`rtsp://127.0.0.1:${port}/stream`, { setTrack: () => {}, push: (p) => got.push(p) }, { log, transport });
  const until = Date.now() + 3000;
  while (got.length < PACKETS.length && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  client.close('test done');
  await client.done;
  return got;
}

for (const transport of ['tcp', 'udp'] as const) {
  test(`PLAY over ${transport}: every access unit arrives whole, in order, lined up in time`, async () => {
    const got = await playOnce(transport);
    assert.deepEqual(comparable(got, 1), comparable(PACKETS, 1));
    assert.deepEqual(comparable(got, 2), comparable(PACKETS, 2));
    // the sender reports tie both tracks to one clock: times match the source's within rounding
    const v = got.filter((p) => p.trackId === 1);
    const a = got.filter((p) => p.trackId === 2);
    v.forEach((p, i) => assert.ok(Math.abs(p.timeMs + p.offsetMs - i * 40) <= 1, `video ${i}: ${p.timeMs}`));
    a.forEach((p, i) => assert.ok(Math.abs(p.timeMs - (i * 1024 * 1000) / 48000) <= 1, `audio ${i}: ${p.timeMs}`));
  });
}

test('PLAY of HEVC, Opus, A-law and L16 tracks: the same frames come back (PCM in the packet sizes RTP cut)', async () => {
  const got: Packet[] = [];
  const tracks: Track[] = [];
  const client = await RtspPlayClient.play(`rtsp://127.0.0.1:${port}/others`, { setTrack: (t) => tracks.push(t), push: (p) => got.push(p) }, { log });
  const until = Date.now() + 3000;
  while (got.filter((p) => p.trackId === 1).length < 25 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 50));
  client.close('test done');
  await client.done;
  assert.deepEqual(
    tracks.map((t) => [t.codec, t.type === 'audio' ? t.rate : 0, t.type === 'audio' ? t.channels : 0]),
    [
      ['HEVC', 0, 0],
      ['opus', 48000, 2],
      ['ALAW', 8000, 1],
      ['PCM', 44100, 2],
    ],
  );
  assert.ok(tracks[0]!.init.equals(OTHER_TRACKS[0]!.init));
  for (const id of [1, 2, 3]) {
    assert.deepEqual(
      got.filter((p) => p.trackId === id).map((p) => p.data.toString('hex')),
      OTHER_PACKETS.filter((p) => p.trackId === id).map((p) => p.data.toString('hex')),
      `track ${id}`,
    );
  }
  const pcm = got.filter((p) => p.trackId === 4);
  assert.deepEqual(Buffer.concat(pcm.map((p) => p.data)), Buffer.concat(OTHER_PACKETS.filter((p) => p.trackId === 4).map((p) => p.data)));
  // each 10 ms packet went as 1400 + 364 bytes: the second half 350 samples (7.9 ms) later
  assert.deepEqual(
    pcm.slice(0, 4).map((p) => p.timeMs - pcm[0]!.timeMs),
    [0, 8, 10, 18],
  );
});

test('keep-alive: a client playing over UDP sends GET_PARAMETER at half the session timeout and stays connected', async () => {
  let keepAlives = 0;
  const short = net.createServer((s) => {
    sockets.add(s);
    s.on('data', (d: Buffer) => (keepAlives += d.toString('latin1').split('GET_PARAMETER ').length - 1));
    new RtspServerSession(s, handler, log, { sessionTimeoutS: 2 });
  });
  await new Promise<void>((r) => short.listen(0, '127.0.0.1', r));
  const client = await RtspPlayClient.play(`rtsp://127.0.0.1:${(short.address() as net.AddressInfo).port}/stream`, { setTrack: () => {}, push: () => {} }, { log, transport: 'udp', idleTimeoutMs: 60_000 });
  let ended = false;
  void client.done.finally(() => (ended = true)).catch(() => undefined);
  try {
    // one a second (half of 2 s): two within a few seconds, however loaded the machine
    const until = Date.now() + 6000;
    while (keepAlives < 2 && !ended && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    assert.ok(keepAlives >= 2, `${keepAlives} GET_PARAMETER`);
    assert.equal(ended, false, 'the session did not time out');
  } finally {
    client.close('test done');
    short.close();
  }
});

/** A bare RTSP client: one request at a time over a socket. */
class Raw {
  private readonly reader = new RtspReader();
  private waiting: ((r: RtspResponse) => void) | undefined;
  private cseq = 0;
  constructor(readonly sock: net.Socket) {
    sock.on('data', (c: Buffer) => {
      for (const item of this.reader.push(c)) if (item.kind === 'response') this.waiting?.(item);
    });
  }
  request(method: string, url: string, headers: Record<string, string> = {}, body?: string): Promise<RtspResponse> {
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.sock.write(serializeRequest(method, url, new RtspHeaders({ CSeq: String(++this.cseq), ...headers }), body));
    });
  }
}

async function connect(): Promise<Raw> {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  return new Raw(sock);
}

test('ANNOUNCE / SETUP (record, interleaved) / RECORD: the published RTP arrives as the same packets; TEARDOWN ends it cleanly', async () => {
  const c = await connect();
  const url = `rtsp://127.0.0.1:${port}/live`;
  const sdp = describeSdp(outgoingTracks([VIDEO, AUDIO]), { name: 'x', address: '127.0.0.1', sessionId: 1, control: (i) => `streamid=${i}` });
  assert.equal((await c.request('ANNOUNCE', url, { 'Content-Type': 'application/sdp' }, sdp)).status, 200);
  const s0 = await c.request('SETUP', `${url}/streamid=0`, { Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1;mode=record' });
  assert.equal(s0.status, 200);
  assert.match(s0.headers.get('transport')!, /interleaved=0-1;mode=record/);
  const session = s0.headers.get('session')!.split(';')[0]!;
  assert.equal((await c.request('SETUP', `${url}/streamid=1`, { Transport: 'RTP/AVP/TCP;unicast;interleaved=2-3;mode=record', Session: session })).status, 200);
  assert.equal((await c.request('RECORD', url, { Session: session, Range: 'npt=0.000-' })).status, 200);
  const writer = new RtpChunkWriter(() => Date.now());
  writer.setTracks([VIDEO, AUDIO]);
  for (const p of PACKETS) c.sock.write(writer.packet(p)!);
  assert.equal((await c.request('TEARDOWN', url, { Session: session })).status, 200);
  assert.deepEqual(
    published.tracks.map((t) => t.codec),
    ['H264', 'AAC'],
  );
  assert.ok(published.tracks[0]!.init.equals(VIDEO.init));
  assert.deepEqual(comparable(published.packets, 1), comparable(PACKETS, 1));
  assert.deepEqual(comparable(published.packets, 2), comparable(PACKETS, 2));
  assert.deepEqual(published.closed, ['client tore down', true]);
  c.sock.destroy();
});

test('refusals: 404 for an unknown stream, 403 for a refused one or push, 454 for a wrong session, 461 for multicast', async () => {
  const c = await connect();
  const base = `rtsp://127.0.0.1:${port}`;
  assert.equal((await c.request('DESCRIBE', `${base}/missing`)).status, 404);
  assert.equal((await c.request('DESCRIBE', `${base}/secret`)).status, 403);
  assert.equal((await c.request('ANNOUNCE', `${base}/nope`, { 'Content-Type': 'application/sdp' }, 'v=0\r\nm=audio 0 RTP/AVP 8\r\n')).status, 403);
  const d = await c.request('DESCRIBE', `${base}/stream`);
  assert.equal(d.status, 200);
  assert.equal(d.headers.get('content-base'), `${base}/stream/`);
  assert.match(d.body.toString(), /a=rtpmap:96 H264\/90000/);
  assert.equal((await c.request('SETUP', `${base}/stream/trackID=0`, { Transport: 'RTP/AVP;multicast' })).status, 461);
  const s = await c.request('SETUP', `${base}/stream/trackID=0`, { Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1' });
  assert.equal(s.status, 200);
  assert.equal((await c.request('PLAY', `${base}/stream`, { Session: 'wrong' })).status, 454);
  assert.equal((await c.request('FLY', `${base}/stream`)).status, 501);
  c.sock.destroy();
});

test('a stream that ended between DESCRIBE and PLAY: PLAY answers 404 and the connection closes (no 200 on a dead stream)', async () => {
  const c = await connect();
  const url = `rtsp://127.0.0.1:${port}/gone`;
  assert.equal((await c.request('DESCRIBE', url)).status, 200);
  const s = await c.request('SETUP', `${url}/trackID=0`, { Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1' });
  assert.equal(s.status, 200);
  const closed = new Promise((r) => c.sock.once('end', r));
  assert.equal((await c.request('PLAY', url, { Session: s.headers.get('session')!.split(';')[0]! })).status, 404);
  await closed;
  c.sock.destroy();
});

test('the end of a stream reaches its RTP viewers as a sender report and a BYE per track, then the close; a viewer coming after the end is closed too', async () => {
  const hub = new StreamHub('ending');
  hub.attachSource();
  hub.setTrack(VIDEO);
  hub.setTrack(AUDIO);
  for (const p of PACKETS.slice(0, 20)) hub.push(p);
  const format: OutputFormat = { name: 'RTSP', capability: RTSP_CAPABILITY, makeWriter: () => new RtpChunkWriter(() => hub.unixZeroMs) };
  const got: Buffer[] = [];
  const closes: string[] = [];
  const sink = (tag: string) => ({
    write: (b: Buffer) => (got.push(b), true),
    writev: (bs: Buffer[]) => void got.push(...bs),
    writableLength: 0,
    close: (reason: string) => void closes.push(`${tag}: ${reason}`),
  });
  startViewer(hub, format, {}, sink('first'));
  hub.end('publisher left');
  // the last interleaved frames: one RTCP compound per track (channels 1 and 3) ending in a BYE
  const all = Buffer.concat(got);
  const rtcp: Array<{ channel: number; types: string[]; bye: number[] }> = [];
  const ssrcs = new Map<number, number>();
  for (let pos = 0; pos + 4 <= all.length; ) {
    const len = all.readUInt16BE(pos + 2);
    const body = all.subarray(pos + 4, pos + 4 + len);
    if (all[pos + 1]! % 2 === 1) {
      const packets = parseRtcp(body);
      rtcp.push({ channel: all[pos + 1]!, types: packets.map((p) => p.type), bye: packets.flatMap((p) => (p.type === 'bye' ? p.ssrcs : [])) });
    }
    else ssrcs.set(all[pos + 1]!, body.readUInt32BE(8));
    pos += 4 + len;
  }
  assert.deepEqual(rtcp.slice(-2).map((r) => r.channel), [1, 3]);
  for (const r of rtcp.slice(-2)) assert.deepEqual(r.types.filter((t) => t !== 'other'), ['sr', 'bye']);
  assert.equal(ssrcs.size, 2, 'both tracks sent RTP');
  assert.deepEqual(rtcp.slice(-2).map((r) => r.bye), [[ssrcs.get(0)], [ssrcs.get(2)]], 'each BYE names its track\'s SSRC');
  assert.deepEqual(closes, ['first: publisher left']);
  // a viewer that arrives after the end (its DESCRIBE was before) is told at once, not left hanging
  startViewer(hub, format, {}, sink('late'));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(closes, ['first: publisher left', 'late: stream ended']);
});

test('a TCP viewer that stops reading is skipped to the next keyframe, its queue bounded; it resumes at a keyframe', async (t) => {
  const hub = new StreamHub('slow');
  hub.attachSource();
  hub.setTrack(VIDEO);
  const format: OutputFormat = { name: 'RTSP', capability: RTSP_CAPABILITY, makeWriter: () => new RtpChunkWriter(() => hub.unixZeroMs) };
  const viewers: Viewer[] = [];
  const slowServer = net.createServer((s) => {
    slowSockets.push(s);
    new RtspServerSession(
      s,
      {
        play: async () => ({
          tracks: outgoingTracks(hub.tracks),
          ended: false,
          start: (sink) => void viewers.push(startViewer(hub, format, {}, sink)),
          stop: () => {},
          close: () => viewers.forEach((v) => v.close('done')),
        }),
        publish: async () => {
          throw new HazeError('HAZE_ERR_REFUSED', 'no');
        },
      },
      log,
    );
  });
  const slowSockets: net.Socket[] = [];
  await new Promise<void>((r) => slowServer.listen(0, '127.0.0.1', r));
  t.after(() => {
    hub.end('test over');
    for (const s of slowSockets) s.destroy();
    slowServer.close();
  });
  const url = `rtsp://127.0.0.1:${(slowServer.address() as net.AddressInfo).port}/slow`;
  const frame = (i: number): Packet => {
    const nal = Buffer.alloc(60_000, i & 0xff);
    nal[0] = i % 25 === 0 ? 0x65 : 0x41;
    return { trackId: 1, timeMs: i * 40, offsetMs: 0, keyframe: i % 25 === 0, data: joinNalUnits([nal]) };
  };
  let n = 0;
  hub.push(frame(n++)); // online: a keyframe
  const sock = net.connect((slowServer.address() as net.AddressInfo).port, '127.0.0.1');
  t.after(() => sock.destroy());
  await new Promise((r) => sock.once('connect', r));
  const c = new Raw(sock);
  assert.equal((await c.request('DESCRIBE', url)).status, 200);
  const s = await c.request('SETUP', `${url}/trackID=0`, { Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1' });
  assert.equal((await c.request('PLAY', url, { Session: s.headers.get('session')! })).status, 200);
  // the player stops reading: 12 s of 12 Mbit/s video
  sock.pause();
  let maxQueued = 0;
  for (; n < 300; n++) {
    hub.push(frame(n));
    await new Promise((r) => setImmediate(r));
    maxQueued = Math.max(maxQueued, slowSockets[0]!.writableLength);
  }
  const viewer = viewers[0]!;
  assert.ok(viewer.droppedPackets > 100, `dropped ${viewer.droppedPackets}`);
  assert.ok(maxQueued < 4 * 1024 * 1024 + 200_000, `queued at most ${maxQueued} bytes`);
  // reading again: after the gap, the next RTP packet starts a keyframe (the parameter sets' STAP-A)
  const reader = new RtspReader();
  const rtp: Buffer[] = [];
  sock.removeAllListeners('data');
  sock.on('data', (d: Buffer) => {
    for (const item of reader.push(d)) if (item.kind === 'data' && item.channel === 0) rtp.push(item.data);
  });
  sock.resume();
  for (; n < 360; n++) {
    hub.push(frame(n));
    await new Promise((r) => setTimeout(r, 2));
  }
  await new Promise((r) => setTimeout(r, 100));
  let gapAt = -1;
  for (let i = 1; i < rtp.length; i++) {
    if (((rtp[i]!.readUInt16BE(2) - rtp[i - 1]!.readUInt16BE(2)) & 0xffff) !== 1) {
      gapAt = i;
      break;
    }
  }
  assert.ok(gapAt > 0, 'the skip shows as a sequence gap');
  const after = rtp[gapAt]!.subarray(12);
  assert.equal(after[0]! & 0x1f, 24, 'STAP-A');
  assert.equal(after[3]! & 0x1f, 7, 'starting with the SPS');
  sock.destroy();
});
