// WHIP publisher of the glass-to-glass benchmark: a werift RTCPeerConnection with one sendonly
// H.264 track (draft-ietf-wish-whip: POST the offer once ICE gathering is complete, 201 with the
// answer). The stamped frames are packetized with the repo's H.264 RTP packetizer (RFC 6184:
// single NAL units, STAP-A, FU-A; parameter sets in front of each keyframe) and written to the
// track as RTP; werift sets SSRC and payload type and encrypts. 90 kHz timestamps from the
// frames' media time, so the receiver sees the clip's own pacing.

import { MediaStreamTrack, RTCPeerConnection, RTCRtpCodecParameters, RtpHeader, RtpPacket } from 'werift';
import { h264Packetizer } from '../../src/protocols/rtp/h264.js';
import type { NalPacketizer } from '../../src/protocols/rtp/nal-payload.js';
import type { G2gPublisher } from './g2g-publish.js';
import type { Clip, PacedFrame } from './g2g-source.js';

export const H264_WERIFT_CODEC = (): RTCRtpCodecParameters =>
  new RTCRtpCodecParameters({ mimeType: 'video/H264', clockRate: 90000, parameters: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f', rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }] });

export class WhipPublisher implements G2gPublisher {
  readonly label = 'werift WHIP';
  error: string | undefined;
  private pc: RTCPeerConnection | undefined;
  private track: MediaStreamTrack | undefined;
  private packetizer: NalPacketizer | undefined;
  private seq = Math.floor(Math.random() * 65536);
  private resource: string | undefined;

  constructor(private readonly url: string) {}

  async start(clip: Clip): Promise<void> {
    const pc = new RTCPeerConnection({ iceAdditionalHostAddresses: ['127.0.0.1'], iceUseIpv6: false, codecs: { video: [H264_WERIFT_CODEC()] } });
    this.pc = pc;
    const track = new MediaStreamTrack({ kind: 'video' });
    this.track = track;
    pc.addTransceiver(track, { direction: 'sendonly' });
    await pc.setLocalDescription(await pc.createOffer());
    for (let i = 0; i < 60 && pc.iceGatheringState !== 'complete'; i++) await new Promise((r) => setTimeout(r, 50));
    const res = await fetch(this.url, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: pc.localDescription!.sdp });
    const answer = await res.text();
    if (res.status !== 201 && res.status !== 200) throw new Error(`POST ${this.url}: HTTP ${res.status} ${answer.slice(0, 200)}`);
    const loc = res.headers.get('location');
    if (loc) this.resource = new URL(loc, this.url).toString();
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    for (let i = 0; i < 200 && pc.connectionState !== 'connected'; i++) await new Promise((r) => setTimeout(r, 50));
    if (pc.connectionState !== 'connected') throw new Error(`WHIP peer connection ${pc.connectionState}`);
    pc.connectionStateChange.subscribe((s) => {
      if (s === 'failed' || s === 'closed') this.error ??= `WHIP peer connection ${s}`;
    });
    this.packetizer = h264Packetizer(clip.sequenceHeader.subarray(5), 1200);
  }

  send(f: PacedFrame): void {
    if (!this.track || !this.packetizer || this.error) return;
    const payloads = this.packetizer.packetize({ trackId: 1, timeMs: f.timeMs, offsetMs: 0, keyframe: f.keyframe, data: f.body.subarray(5) });
    const ts = (f.timeMs * 90) >>> 0;
    for (const p of payloads) {
      this.seq = (this.seq + 1) & 0xffff;
      const header = new RtpHeader({ payloadType: 96, sequenceNumber: this.seq, timestamp: ts, marker: p.marker, ssrc: 1 });
      this.track.writeRtp(new RtpPacket(header, Buffer.concat(p.parts)));
    }
  }

  async stop(): Promise<void> {
    if (this.resource) await fetch(this.resource, { method: 'DELETE' }).catch(() => undefined);
    await this.pc?.close().catch(() => undefined);
  }
}
