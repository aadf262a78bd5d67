// The client side of a dtsc:// pull (reference/mistserver.md §2.6, MistServer's input_dtsc),
// without the socket: bytes from the origin in, tracks, packets and replies out.
//
//   origin -> {"cmd":"hi",...}                       greeting (logged)
//   client -> {"cmd":"play","stream":S,"version":V[, query members]}
//   origin -> DTSC header (tracks renumbered 1..n), then DTP2 packets; a new header whenever
//             the track set changes (tracks it no longer lists are removed)
//   origin -> {"cmd":"ping"}  client -> {"cmd":"ok","msg":"Pong!"}
//   origin -> {"cmd":"error","msg":M} / {"cmd":"end"}  the pull ends (error: a failure)
//   origin -> {"cmd":"reset"}   the next header replaces the metadata
//
// The first header is what makes a pull "connected". A packet of a track no header announced is
// dropped and counted (MistServer treats it as fatal on a push; a puller just cannot place it).

import { getText, type DtmiDecodeLimits } from '../../containers/dtsc/dtmi.js';
import { DtscFrameReader, encodeDtcm } from '../../containers/dtsc/packets.js';
import { plainTrack, readDtscHeader } from '../../containers/dtsc/header.js';
import type { Packet, Track } from '../../media/types.js';
import { HazeError } from '../../util/errors.js';
import { HAZE_VERSION } from '../../util/version.js';

/** Where a pull's media goes (a PullSink satisfies it). */
export interface DtscPullTarget {
  setTrack(track: Track): void;
  removeTrack(id: number): void;
  push(packet: Packet): void;
}

export interface DtscPullSessionOptions {
  /** Largest frame accepted from the origin (default 32 MiB: a keyframe of a high-rate stream). */
  maxFrameBytes?: number;
  /** Most tracks a header may announce (default 64). */
  maxTracks?: number;
}

/** What one chunk from the origin led to, beside the media handed to the target. */
export interface DtscPullStep {
  /** Bytes to send back to the origin (pong answers). */
  replies: Buffer[];
  /** The origin's greeting arrived (its `version`). */
  hello?: string;
  /** The first header arrived with this chunk: the pull is playing. */
  started?: boolean;
  /** The origin ended the pull: `error` (a failure) or `end` (the stream ended). */
  ended?: { error: boolean; reason: string };
}

/** Bounds for decoding the origin's header and command objects. */
const DTMI_LIMITS: DtmiDecodeLimits = { maxDepth: 8, maxValues: 262_144 };

/** The `play` command (members sorted, as MistServer packs them); `query` adds its parameters as members. */
export function dtscPlayCommand(stream: string, query: Iterable<[string, string]> = []): Buffer {
  const cmd: Record<string, unknown> = {};
  for (const [k, v] of query) if (k !== 'cmd' && k !== 'stream' && k !== 'version') cmd[k] = v;
  cmd['cmd'] = 'play';
  cmd['stream'] = stream;
  cmd['version'] = `Haze/${HAZE_VERSION}`;
  return encodeDtcm(cmd);
}

/**
 * One pull's protocol state. `push` throws a HazeError for bytes that break the framing or a
 * header that cannot be read (the caller ends the connection); media goes to the target.
 */
export class DtscPullSession {
  private readonly reader: DtscFrameReader;
  private readonly maxTracks: number;
  private known = new Map<number, Track>();
  private headers = 0;
  /** The last header described a VoD stream (`vod` without `live`): the origin's end is the stream's. */
  vod = false;
  /** Packets of tracks no header announced (dropped). */
  unknownTrackPackets = 0;
  packets = 0;

  constructor(
    private readonly target: DtscPullTarget,
    opts: DtscPullSessionOptions = {},
  ) {
    this.reader = new DtscFrameReader({ maxFrameBytes: opts.maxFrameBytes ?? 32 * 1024 * 1024, limits: DTMI_LIMITS });
    this.maxTracks = opts.maxTracks ?? 64;
  }

  /** Whether a header arrived (the pull is playing). */
  get playing(): boolean {
    return this.headers > 0;
  }

  /** The tracks of the last header. */
  get tracks(): Track[] {
    return [...this.known.values()];
  }

  push(chunk: Buffer): DtscPullStep {
    const step: DtscPullStep = { replies: [] };
    for (const f of this.reader.push(chunk)) {
      if (step.ended) break;
      if (f.kind === 'packet') {
        if (!this.known.has(f.packet.trackId)) {
          this.unknownTrackPackets++;
          continue;
        }
        this.packets++;
        this.target.push(f.packet);
      } else if (f.kind === 'header') {
        this.applyHeader(f.raw);
        if (this.headers++ === 0) step.started = true;
      } else {
        const cmd = getText(f.command, 'cmd');
        if (cmd === 'ping') step.replies.push(encodeDtcm({ cmd: 'ok', msg: 'Pong!' }));
        else if (cmd === 'hi') step.hello = getText(f.command, 'version') ?? '';
        else if (cmd === 'error') step.ended = { error: true, reason: getText(f.command, 'msg') ?? 'error' };
        else if (cmd === 'end') step.ended = { error: false, reason: getText(f.command, 'msg') ?? 'stream ended' };
        // ok, reset (the next header replaces the tracks anyway), sync, and commands of Haze's
        // own worker relay (clock, fragment, live): nothing to do for a pull
      }
    }
    return step;
  }

  /** Applies a header: tracks it no longer lists are removed, the others set. */
  private applyHeader(raw: Buffer): void {
    const meta = readDtscHeader(raw, DTMI_LIMITS);
    this.vod = meta.vod && !meta.live;
    if (meta.tracks.length > this.maxTracks) throw new HazeError('HAZE_ERR_TOO_LARGE', `DTSC header with ${meta.tracks.length} tracks (limit ${this.maxTracks})`);
    const next = new Map<number, Track>();
    for (const t of meta.tracks) next.set(t.id, plainTrack(t));
    for (const id of this.known.keys()) if (!next.has(id)) this.target.removeTrack(id);
    for (const t of next.values()) this.target.setTrack(t);
    this.known = next;
  }
}
