// WHEP viewers for bench/webrtc-viewers.ts, in a child process of their own (so their CPU is
// not the server's): each a werift RTCPeerConnection with one recvonly H.264 video transceiver,
// non-trickle WHEP (POST the offer once ICE gathering is complete, 201 with the answer), counting
// the RTP payload bytes it receives. werift decrypts SRTP in this process: what one load
// generator can keep up with bounds N on a small machine, which the parent checks through the
// received bitrate.
// Run as a child: fork(dist/bench/lib/whep-loadgen.js) and send { type: 'start', url, viewers }.

import { RTCPeerConnection, RTCRtpCodecParameters } from 'werift';

export type WhepLoadRequest = { type: 'start'; url: string; viewers: number; spreadMs: number } | { type: 'sample' } | { type: 'stop' };
export type WhepLoadEvent =
  | { type: 'connected'; ok: number; failed: number; errors: string[] }
  | { type: 'sample'; bytes: number[]; packets: number[]; cpuUs: number; wallMs: number }
  | { type: 'error'; message: string };

interface Viewer {
  pc: RTCPeerConnection;
  bytes: number;
  packets: number;
  resource: string | undefined;
}

const viewers: Viewer[] = [];
const send = (e: WhepLoadEvent): void => {
  process.send?.(e);
};

async function openViewer(url: string): Promise<Viewer> {
  const pc = new RTCPeerConnection({
    // media on loopback, where Haze listens
    iceAdditionalHostAddresses: ['127.0.0.1'],
    iceUseIpv6: false,
    codecs: { video: [new RTCRtpCodecParameters({ mimeType: 'video/H264', clockRate: 90000, parameters: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f', rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }] })] },
  });
  const v: Viewer = { pc, bytes: 0, packets: 0, resource: undefined };
  const tr = pc.addTransceiver('video', { direction: 'recvonly' });
  tr.onTrack.subscribe((track) => {
    track.onReceiveRtp.subscribe((rtp) => {
      v.bytes += rtp.payload.length;
      v.packets++;
    });
  });
  await pc.setLocalDescription(await pc.createOffer());
  for (let i = 0; i < 60 && pc.iceGatheringState !== 'complete'; i++) await new Promise((r) => setTimeout(r, 50));
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: pc.localDescription!.sdp });
  const answer = await res.text();
  if (res.status !== 201 && res.status !== 200) {
    await pc.close();
    throw new Error(`HTTP ${res.status}: ${answer.slice(0, 120)}`);
  }
  const loc = res.headers.get('location');
  if (loc) v.resource = new URL(loc, url).toString();
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  // counted once ICE and DTLS are through, not when the answer came
  for (let i = 0; i < 600 && pc.connectionState !== 'connected'; i++) {
    if (pc.connectionState === 'failed' || pc.connectionState === 'closed') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (pc.connectionState !== 'connected') {
    await pc.close();
    throw new Error(`peer connection ${pc.connectionState} after 30 s`);
  }
  return v;
}

let cpu0 = process.cpuUsage();
let wall0 = performance.now();

process.on('message', (msg: WhepLoadRequest) => {
  if (msg.type === 'start') {
    void (async () => {
      const errors: string[] = [];
      let failed = 0;
      // a few handshakes at a time: this one process runs every viewer's ICE and DTLS, and a pile
      // of them on a loaded machine runs past the server's 15 s consent timeout
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < msg.viewers) {
          next++;
          try {
            viewers.push(await openViewer(msg.url));
          } catch (e) {
            failed++;
            if (errors.length < 5) errors.push((e as Error).message);
          }
          await new Promise((r) => setTimeout(r, msg.spreadMs / Math.max(1, msg.viewers)));
        }
      };
      await Promise.all(Array.from({ length: 4 }, worker));
      send({ type: 'connected', ok: viewers.length, failed, errors });
    })().catch((e: unknown) => send({ type: 'error', message: (e as Error).message }));
  } else if (msg.type === 'sample') {
    const c = process.cpuUsage(cpu0);
    const w = performance.now() - wall0;
    cpu0 = process.cpuUsage();
    wall0 = performance.now();
    send({ type: 'sample', bytes: viewers.map((v) => v.bytes), packets: viewers.map((v) => v.packets), cpuUs: c.user + c.system, wallMs: w });
  } else if (msg.type === 'stop') {
    void (async () => {
      await Promise.all(viewers.map(async (v) => {
        if (v.resource) await fetch(v.resource, { method: 'DELETE' }).catch(() => undefined);
        await v.pc.close().catch(() => undefined);
      }));
      process.exit(0);
    })();
    setTimeout(() => process.exit(0), 3000).unref();
  }
});
process.on('disconnect', () => process.exit(0));
