// SDP as WebRTC uses it (RFC 8866 syntax; RFC 8829 JSEP offer/answer; RFC 8843 BUNDLE; RFC
// 8839 ICE attributes; RFC 8122 fingerprint): the parts of a browser's offer Haze reads and the
// answer it writes. Haze answers as an ICE-lite agent (a=ice-lite) with DTLS role passive, one
// host candidate per address on its single UDP port, rtcp-mux, every accepted m-section in one
// BUNDLE group, no RTX/RED/FEC (a NACKed packet is sent again as it was, RFC 4588 §3 allows
// either), and only the RTCP feedback it acts on (nack, nack pli, ccm fir, goog-remb).

import { HazeError } from '../../util/errors.js';

/** A browser offer is a few KB; anything this large is not one. */
export const MAX_SDP_BYTES = 64 * 1024;
const MAX_MEDIA_SECTIONS = 32;
const MAX_CODECS_PER_MEDIA = 128;

export type SdpDirection = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

export interface SdpCodec {
  pt: number;
  /** Encoding name as written (H264, VP8, opus ...). */
  name: string;
  clockRate: number;
  channels: number;
  /** The a=fmtp parameters, as written (empty without). */
  fmtp: string;
  /** a=rtcp-fb values for this payload type (and the `*` wildcard): "nack", "nack pli", "ccm fir" ... */
  feedback: string[];
}

export interface SdpFingerprint {
  algorithm: string;
  value: string;
}

export interface SdpMedia {
  kind: string;
  port: number;
  proto: string;
  formats: string[];
  mid: string | undefined;
  direction: SdpDirection;
  iceUfrag: string | undefined;
  icePwd: string | undefined;
  fingerprint: SdpFingerprint | undefined;
  setup: string | undefined;
  rtcpMux: boolean;
  codecs: SdpCodec[];
  /** SSRCs announced with a=ssrc (the first is the media SSRC; RTX ones come from ssrc-group FID). */
  ssrcs: number[];
  rtxSsrcs: number[];
}

export interface SdpSession {
  media: SdpMedia[];
  /** The mids of the first a=group:BUNDLE, empty without one. */
  bundle: string[];
  iceLite: boolean;
}

function directionOf(v: string): SdpDirection | undefined {
  return v === 'sendrecv' || v === 'sendonly' || v === 'recvonly' || v === 'inactive' ? v : undefined;
}

/**
 * Parses an offer. Media-level ICE and DTLS attributes default to the session-level ones.
 * Throws HAZE_ERR_MALFORMED for text that is not an SDP, HAZE_ERR_TOO_LARGE past the bounds.
 */
export function parseSdp(text: string): SdpSession {
  if (text.length > MAX_SDP_BYTES) throw new HazeError('HAZE_ERR_TOO_LARGE', `an SDP of ${text.length} bytes`);
  const lines = text.split(/\r?\n/);
  if (!lines[0]?.startsWith('v=0')) throw new HazeError('HAZE_ERR_MALFORMED', 'SDP: does not start with v=0');
  const session: { ufrag?: string; pwd?: string; fingerprint?: SdpFingerprint; setup?: string; direction?: SdpDirection } = {};
  const media: SdpMedia[] = [];
  let bundle: string[] | undefined;
  let iceLite = false;
  let cur: SdpMedia | undefined;
  // per-media scratch: codecs by payload type, and feedback for `*`
  let byPt = new Map<number, SdpCodec>();
  let wildcardFb: string[] = [];
  const finish = (): void => {
    if (!cur) return;
    for (const c of cur.codecs) for (const fb of wildcardFb) if (!c.feedback.includes(fb)) c.feedback.push(fb);
  };
  for (const raw of lines) {
    const line = raw.trimEnd();
    if (line.length < 2 || line[1] !== '=') continue;
    const kind = line[0];
    const value = line.slice(2);
    if (kind === 'm') {
      finish();
      if (media.length >= MAX_MEDIA_SECTIONS) throw new HazeError('HAZE_ERR_TOO_LARGE', `SDP: more than ${MAX_MEDIA_SECTIONS} media sections`);
      const parts = value.split(' ');
      if (parts.length < 3) throw new HazeError('HAZE_ERR_MALFORMED', `SDP: bad m= line ${JSON.stringify(value.slice(0, 80))}`);
      const port = Number(parts[1]!.split('/')[0]);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new HazeError('HAZE_ERR_MALFORMED', `SDP: bad port in m= line`);
      const formats = parts.slice(3, 3 + MAX_CODECS_PER_MEDIA);
      cur = {
        kind: parts[0]!,
        port,
        proto: parts[2]!,
        formats,
        mid: undefined,
        direction: session.direction ?? 'sendrecv',
        iceUfrag: session.ufrag,
        icePwd: session.pwd,
        fingerprint: session.fingerprint,
        setup: session.setup,
        rtcpMux: false,
        codecs: [],
        ssrcs: [],
        rtxSsrcs: [],
      };
      byPt = new Map();
      wildcardFb = [];
      for (const f of formats) {
        const pt = Number(f);
        if (Number.isInteger(pt) && pt >= 0 && pt < 128 && !byPt.has(pt)) {
          // static payload types may come without a=rtpmap (0 PCMU, 8 PCMA)
          const c: SdpCodec = { pt, name: pt === 0 ? 'PCMU' : pt === 8 ? 'PCMA' : '', clockRate: pt === 0 || pt === 8 ? 8000 : 0, channels: 1, fmtp: '', feedback: [] };
          byPt.set(pt, c);
          cur.codecs.push(c);
        }
      }
      media.push(cur);
      continue;
    }
    if (kind !== 'a') continue;
    const colon = value.indexOf(':');
    const name = colon < 0 ? value : value.slice(0, colon);
    const arg = colon < 0 ? '' : value.slice(colon + 1);
    if (!cur) {
      // session level
      if (name === 'ice-ufrag') session.ufrag = arg;
      else if (name === 'ice-pwd') session.pwd = arg;
      else if (name === 'fingerprint') session.fingerprint = parseFingerprint(arg);
      else if (name === 'setup') session.setup = arg;
      else if (name === 'ice-lite') iceLite = true;
      else if (name === 'group' && arg.startsWith('BUNDLE') && bundle === undefined) bundle = arg.split(' ').slice(1).filter((m) => m.length > 0);
      else {
        const d = directionOf(name);
        if (d) session.direction = d;
      }
      continue;
    }
    switch (name) {
      case 'mid':
        cur.mid = arg;
        break;
      case 'ice-ufrag':
        cur.iceUfrag = arg;
        break;
      case 'ice-pwd':
        cur.icePwd = arg;
        break;
      case 'fingerprint':
        cur.fingerprint = parseFingerprint(arg);
        break;
      case 'setup':
        cur.setup = arg;
        break;
      case 'rtcp-mux':
        cur.rtcpMux = true;
        break;
      case 'rtpmap': {
        const m = /^(\d+) ([^/\s]+)\/(\d+)(?:\/(\d+))?/.exec(arg);
        const c = m ? byPt.get(Number(m[1])) : undefined;
        if (c && m) {
          c.name = m[2]!;
          c.clockRate = Number(m[3]);
          c.channels = m[4] ? Number(m[4]) : 1;
        }
        break;
      }
      case 'fmtp': {
        const m = /^(\d+) (.*)$/.exec(arg);
        const c = m ? byPt.get(Number(m[1])) : undefined;
        if (c && m) c.fmtp = m[2]!.trim();
        break;
      }
      case 'rtcp-fb': {
        const m = /^(\d+|\*) (.+)$/.exec(arg);
        if (!m) break;
        const fb = m[2]!.trim();
        if (m[1] === '*') wildcardFb.push(fb);
        else {
          const c = byPt.get(Number(m[1]));
          if (c && c.feedback.length < 16) c.feedback.push(fb);
        }
        break;
      }
      case 'ssrc': {
        const ssrc = Number(arg.split(' ')[0]);
        if (Number.isInteger(ssrc) && ssrc >= 0 && ssrc <= 0xffffffff && !cur.ssrcs.includes(ssrc) && !cur.rtxSsrcs.includes(ssrc) && cur.ssrcs.length < 16) cur.ssrcs.push(ssrc);
        break;
      }
      case 'ssrc-group': {
        const parts = arg.split(' ');
        if (parts[0] === 'FID' && parts.length >= 3) {
          const rtx = Number(parts[2]);
          cur.rtxSsrcs.push(rtx);
          cur.ssrcs = cur.ssrcs.filter((s) => s !== rtx);
        }
        break;
      }
      default: {
        const d = directionOf(name);
        if (d) cur.direction = d;
      }
    }
  }
  finish();
  return { media, bundle: bundle ?? [], iceLite };
}

function parseFingerprint(arg: string): SdpFingerprint | undefined {
  const sp = arg.indexOf(' ');
  if (sp <= 0) return undefined;
  return { algorithm: arg.slice(0, sp).toLowerCase(), value: arg.slice(sp + 1).trim().toUpperCase() };
}

/** fmtp `a=b;c=d` as a map (keys lower-cased). */
export function fmtpParams(fmtp: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of fmtp.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  return out;
}

// ---- choosing codecs ------------------------------------------------------------------------

/** Codecs Haze sends (WHEP) by track codec name; MistServer's names on the left. */
const SEND_CODEC_NAMES: Record<string, string> = { H264: 'H264', VP8: 'VP8', VP9: 'VP9', AV1: 'AV1', opus: 'opus' };

/**
 * The payload type of the offer to send `trackCodec` with (WHEP): H.264 needs
 * packetization-mode=1 and prefers the offered profile with the same profile_idc as the
 * stream's SPS (`h264ProfileIdc`), then constrained baseline; VP9 prefers profile-id 0.
 */
export function pickSendCodec(m: SdpMedia, trackCodec: string, h264ProfileIdc?: number): SdpCodec | undefined {
  const want = SEND_CODEC_NAMES[trackCodec];
  if (!want) return undefined;
  const offered = m.codecs.filter((c) => c.name.toLowerCase() === want.toLowerCase());
  if (want !== 'H264') {
    if (want === 'VP9') return offered.find((c) => (fmtpParams(c.fmtp).get('profile-id') ?? '0') === '0') ?? offered[0];
    return offered[0];
  }
  const mode1 = offered.filter((c) => fmtpParams(c.fmtp).get('packetization-mode') === '1');
  const profile = (c: SdpCodec): number => parseInt((fmtpParams(c.fmtp).get('profile-level-id') ?? '42e01f').slice(0, 2), 16);
  const iop = (c: SdpCodec): number => parseInt((fmtpParams(c.fmtp).get('profile-level-id') ?? '42e01f').slice(2, 4), 16);
  return (
    (h264ProfileIdc !== undefined ? mode1.find((c) => profile(c) === h264ProfileIdc) : undefined) ??
    mode1.find((c) => profile(c) === 0x42 && (iop(c) & 0x40) !== 0) ??
    mode1[0]
  );
}

/** Codecs Haze takes in (WHIP), best first: the ones it can turn into its packets. */
export const RECEIVE_VIDEO_CODECS = ['H264', 'VP8'] as const;
export const RECEIVE_AUDIO_CODECS = ['opus'] as const;

/** The payload type to receive (WHIP) from the offer: the first of `names` offered (H.264 only in packetization-mode 1). */
export function pickReceiveCodec(m: SdpMedia, names: readonly string[]): SdpCodec | undefined {
  for (const n of names) {
    const offered = m.codecs.filter((c) => c.name.toLowerCase() === n.toLowerCase());
    const c = n === 'H264' ? (offered.find((c) => fmtpParams(c.fmtp).get('packetization-mode') === '1' && fmtpParams(c.fmtp).get('profile-level-id')?.startsWith('42')) ?? offered.find((c) => fmtpParams(c.fmtp).get('packetization-mode') === '1')) : offered[0];
    if (c) return c;
  }
  return undefined;
}

// ---- the answer -----------------------------------------------------------------------------

export interface AnswerMedia {
  /** The chosen codec, or undefined to reject the m-section (port 0). */
  codec: SdpCodec | undefined;
  direction: SdpDirection;
  /** Feedback Haze acts on, from what the offer listed for the codec. */
  feedback: string[];
  /** fmtp to answer (defaults to the offer's). */
  fmtp?: string;
  /** Our SSRC when we send. */
  ssrc?: number;
  /** a=msid stream and track ids when we send. */
  msid?: { stream: string; track: string };
}

export interface LocalIce {
  ufrag: string;
  pwd: string;
  /** SHA-256 fingerprint of our DTLS certificate, upper-case hex with colons. */
  fingerprint: string;
  /** Host candidates: every address the peer may reach the UDP port on. */
  candidates: { address: string; port: number }[];
  cname: string;
}

/** Feedback types Haze acts on; the answer lists those the offer also has. */
export function supportedFeedback(codec: SdpCodec, receiving: boolean): string[] {
  const ours = receiving ? ['nack', 'nack pli', 'ccm fir', 'goog-remb'] : ['nack', 'nack pli', 'ccm fir'];
  return codec.feedback.filter((f) => ours.includes(f));
}

/** Writes the answer to `offer`, one m-section per offered one, in order (JSEP §5.3). */
export function writeAnswer(offer: SdpSession, answers: readonly AnswerMedia[], local: LocalIce, sessionId: string): string {
  if (answers.length !== offer.media.length) throw new HazeError('HAZE_ERR_INVALID_ARG', 'one answer per offered media section');
  const accepted = offer.media.map((m, i) => (answers[i]!.codec !== undefined && m.mid !== undefined ? m.mid : undefined)).filter((m): m is string => m !== undefined);
  const first = local.candidates[0];
  const cAddr = first ? `IN ${first.address.includes(':') ? 'IP6' : 'IP4'} ${first.address}` : 'IN IP4 0.0.0.0';
  const out: string[] = ['v=0', `o=- ${sessionId} 2 IN IP4 127.0.0.1`, 's=Haze', 't=0 0', 'a=ice-lite'];
  if (accepted.length > 0) out.push(`a=group:BUNDLE ${accepted.join(' ')}`);
  out.push('a=msid-semantic: WMS *');
  offer.media.forEach((m, i) => {
    const a = answers[i]!;
    const codec = a.codec;
    if (!codec) {
      // rejected: port 0, the offered formats kept so the line stays valid
      out.push(`m=${m.kind} 0 ${m.proto} ${m.formats[0] ?? '0'}`, 'c=IN IP4 0.0.0.0');
      if (m.mid !== undefined) out.push(`a=mid:${m.mid}`);
      out.push('a=inactive');
      return;
    }
    out.push(`m=${m.kind} ${first?.port ?? 9} ${m.proto} ${codec.pt}`, `c=${cAddr}`);
    if (m.mid !== undefined) out.push(`a=mid:${m.mid}`);
    out.push(`a=ice-ufrag:${local.ufrag}`, `a=ice-pwd:${local.pwd}`, `a=fingerprint:sha-256 ${local.fingerprint}`, 'a=setup:passive', `a=${a.direction}`, 'a=rtcp-mux', 'a=rtcp-rsize');
    out.push(`a=rtpmap:${codec.pt} ${codec.name}/${codec.clockRate}${codec.channels > 1 ? `/${codec.channels}` : ''}`);
    const fmtp = a.fmtp ?? codec.fmtp;
    if (fmtp) out.push(`a=fmtp:${codec.pt} ${fmtp}`);
    for (const fb of a.feedback) out.push(`a=rtcp-fb:${codec.pt} ${fb}`);
    if (a.ssrc !== undefined) {
      if (a.msid) out.push(`a=msid:${a.msid.stream} ${a.msid.track}`);
      out.push(`a=ssrc:${a.ssrc} cname:${local.cname}`);
      if (a.msid) out.push(`a=ssrc:${a.ssrc} msid:${a.msid.stream} ${a.msid.track}`);
    }
    local.candidates.forEach((c, k) => out.push(`a=candidate:${k + 1} 1 udp ${2130706431 - k} ${c.address} ${c.port} typ host`));
    out.push('a=end-of-candidates');
  });
  return out.join('\r\n') + '\r\n';
}

/** True when some m-section of the offer only sends media to us (a publisher), as MistServer decides on its shared endpoint. */
export function offerPublishes(offer: SdpSession): boolean {
  return offer.media.some((m) => m.port !== 0 && m.direction === 'sendonly');
}
