// DTLS-SRTP key agreement (RFC 5764) for one peer, on werift's DTLS 1.2 server (werift is
// Haze's named WebRTC library, DESIGN §6): Haze answers with a=setup:passive, so the browser is
// the DTLS client. werift's DtlsServer is given a transport that is one peer's slice of Haze's
// shared UDP port (udp-mux.ts hands it the datagrams whose first byte is 20..63, RFC 7983), so
// werift never owns a socket. Once the handshake is done the peer's certificate is checked
// against the SDP fingerprint and the SRTP master keys are exported (RFC 5764 §4.2).

import { X509Certificate, createHash } from 'node:crypto';
import { CipherContext, DtlsServer, HashAlgorithm, NamedCurveAlgorithm, SignatureAlgorithm, type Transport } from 'werift';
import { HazeError, errorText } from '../../util/errors.js';
import type { SdpFingerprint } from './sdp.js';
import { SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_HMAC_SHA1_80, srtpKeyLengths } from './srtp.js';

export interface DtlsIdentity {
  certPem: string;
  keyPem: string;
  signatureHash: { hash: 4; signature: 3 };
  /** SHA-256 fingerprint for a=fingerprint: upper-case hex bytes joined by colons. */
  fingerprint: string;
}

let identity: Promise<DtlsIdentity> | undefined;

/** The process's self-signed ECDSA P-256 certificate, made once (as browsers do per connection, MistServer per process). */
export function dtlsIdentity(): Promise<DtlsIdentity> {
  identity ??= (async () => {
    const signatureHash = { signature: SignatureAlgorithm.ecdsa_3, hash: HashAlgorithm.sha256_4 } as const;
    const { certPem, keyPem } = await CipherContext.createSelfSignedCertificateWithKey(signatureHash, NamedCurveAlgorithm.secp256r1_23);
    return { certPem, keyPem, signatureHash, fingerprint: new X509Certificate(certPem).fingerprint256 };
  })();
  return identity;
}

/** SRTP master keys from the handshake: ours protect what we send, the peer's what it sends. */
export interface SrtpKeys {
  /** The protection profile agreed (srtp.ts). */
  profile: number;
  localKey: Buffer;
  localSalt: Buffer;
  remoteKey: Buffer;
  remoteSalt: Buffer;
}

export interface DtlsEvents {
  /** The handshake finished and the peer's certificate matches its fingerprint. */
  connected(keys: SrtpKeys): void;
  /** The peer sent a close alert, or the handshake failed. */
  closed(reason: string): void;
}

/** Whether `der` (the peer's certificate) has the fingerprint the SDP announced. */
export function fingerprintMatches(der: Buffer, expected: SdpFingerprint): boolean {
  const algorithm = expected.algorithm.replace('-', '').toLowerCase();
  if (algorithm !== 'sha256' && algorithm !== 'sha384' && algorithm !== 'sha512' && algorithm !== 'sha1') return false;
  const hex = createHash(algorithm).update(der).digest('hex').toUpperCase().match(/../g)!.join(':');
  return hex === expected.value.toUpperCase();
}

/** How often the last flight is sent again for a client that did not get it. */
const MAX_FLIGHT_REPEATS = 8;

/**
 * One peer's DTLS server. werift does not send its last flight (ChangeCipherSpec + Finished)
 * again when the client, which never got it, repeats its own (RFC 6347 §4.2.4): this endpoint
 * keeps what the server sent since the client's last handshake datagram and repeats it then.
 */
export class DtlsEndpoint {
  private readonly server: DtlsServer;
  private readonly transport: Transport;
  private done = false;
  /** Datagrams sent since the client's last handshake datagram: the server's latest flight. */
  private lastFlight: Buffer[] = [];
  private repeats = 0;

  constructor(id: DtlsIdentity, send: (datagram: Buffer) => void, remoteFingerprint: SdpFingerprint, private readonly events: DtlsEvents) {
    this.transport = {
      type: 'udp',
      address: { address: '', family: 'IPv4', port: 0 },
      closed: false,
      // replaced by werift's DtlsSocket with its own handler
      onData: () => {},
      send: async (data: Buffer) => {
        if (!this.done) this.lastFlight.push(data);
        send(data);
      },
      close: async () => {},
    };
    this.server = new DtlsServer({
      transport: this.transport,
      cert: id.certPem,
      key: id.keyPem,
      signatureHash: id.signatureHash,
      // werift takes the first of ours the client offers: GCM is the cheaper one per packet
      srtpProfiles: [SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_HMAC_SHA1_80],
      certificateRequest: true,
      extendedMasterSecret: true,
    });
    this.server.onConnect.once(() => {
      if (this.done) return;
      try {
        const cert = this.server.remoteCertificate;
        if (!cert || !fingerprintMatches(cert, remoteFingerprint)) throw new HazeError('HAZE_ERR_AUTH', 'DTLS: the peer certificate does not match its SDP fingerprint');
        const profile = this.server.srtp.srtpProfile as number | undefined;
        if (profile !== SRTP_AES128_CM_HMAC_SHA1_80 && profile !== SRTP_AEAD_AES_128_GCM) throw new HazeError('HAZE_ERR_UNSUPPORTED', `DTLS: SRTP profile ${String(profile)}`);
        const lengths = srtpKeyLengths(profile);
        const k = this.server.extractSessionKeys(lengths.key, lengths.salt) as { localKey: Buffer; localSalt: Buffer; remoteKey: Buffer; remoteSalt: Buffer };
        this.done = true;
        events.connected({ profile, localKey: Buffer.from(k.localKey), localSalt: Buffer.from(k.localSalt), remoteKey: Buffer.from(k.remoteKey), remoteSalt: Buffer.from(k.remoteSalt) });
      } catch (err) {
        this.fail(errorText(err));
      }
    });
    this.server.onError.once((err) => this.fail(`DTLS: ${errorText(err)}`));
    this.server.onClose.once(() => this.fail('DTLS: the peer closed'));
  }

  private fail(reason: string): void {
    if (this.transport.closed) return;
    this.transport.closed = true;
    this.events.closed(reason);
  }

  /** A DTLS datagram from the peer (werift parses it; a malformed one is dropped, never thrown). */
  receive(datagram: Buffer): void {
    if (this.transport.closed) return;
    // a handshake record (or ChangeCipherSpec) from the client
    const handshake = datagram[0] === 22 || datagram[0] === 20;
    if (handshake && this.done) {
      // the client repeats its last flight: ours was lost on the way
      if (this.repeats++ < MAX_FLIGHT_REPEATS) for (const d of this.lastFlight) this.sendAgain(d);
      return;
    }
    if (handshake) this.lastFlight = [];
    try {
      this.transport.onData(datagram, ['', 0]);
    } catch {
      // werift drops what it cannot parse; a record that makes it throw is dropped here
    }
  }

  private sendAgain(d: Buffer): void {
    void this.transport.send(d).catch(() => {});
  }

  close(): void {
    this.transport.closed = true;
    try {
      this.server.close();
    } catch {
      // already closed
    }
  }
}
