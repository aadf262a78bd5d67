// WebRTC signalling (src/protocols/webrtc/signalling.ts, worker/webrtc-handler.ts): the
// WebSocket commands, the ICE server Link headers, and a worker that does not own the UDP port
// passing offers and DELETEs to the one that does (its control socket, faked here).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { iceServerLinks, parseSignalling, type WebRtcOfferRequest } from '../../src/protocols/webrtc/signalling.js';
import { WebRtcService, iceServers, webrtcSignalling } from '../../src/worker/webrtc-handler.js';

test('WebSocket signalling commands', () => {
  assert.deepEqual(parseSignalling('{"type":"offer_sdp","offer_sdp":"v=0"}'), { type: 'offer_sdp', sdp: 'v=0' });
  assert.deepEqual(parseSignalling('{"type":"stop"}'), { type: 'stop' });
  assert.deepEqual(parseSignalling('{"type":"seek","seek_time":5}'), { type: 'other', name: 'seek' });
  for (const bad of ['', 'null', '[]', '{"x":1}', '{"type":"offer_sdp"}', '{"type":"offer_sdp","offer_sdp":""}']) assert.throws(() => parseSignalling(bad), { name: 'HazeError' }, bad);
});

test('ICE servers from the WebRTC connector become Link headers (RFC 9725 §4.4)', () => {
  const config = { get: () => ({ config: { protocols: [{ connector: 'WebRTC', iceservers: JSON.stringify([{ urls: ['stun:stun.example:3478'] }, { urls: 'turn:turn.example', username: 'u', credential: 'p' }]) }] } }) };
  const servers = iceServers(config);
  assert.equal(servers.length, 2);
  assert.deepEqual(iceServerLinks(servers), ['<stun:stun.example:3478>; rel="ice-server"', '<turn:turn.example>; rel="ice-server"; username="u"; credential="p"']);
  assert.deepEqual(iceServerLinks([{ urls: 'stun:x\r\nInjected: 1' }]), []);
  assert.deepEqual(iceServers({ get: () => ({}) }), []);
});

test('a worker without the UDP port forwards offers and ends to the owner', async () => {
  const service = new WebRtcService({} as never);
  assert.equal(service.serving, false);
  const asked: unknown[] = [];
  const answers: unknown[] = [{ id: '0123456789abcdef', kind: 'whep', stream: 'live+x', sdp: 'v=0\r\n' }, { ended: true }, { error: 'Stream not found: nope', status: 404 }];
  const sig = webrtcSignalling(service, '/run/worker-1.sock', { get: () => ({}) }, async (socket, request) => {
    asked.push([socket, request]);
    return answers.shift();
  });
  const req: WebRtcOfferRequest = { kind: 'whep', name: 'live+x', sdp: 'v=0', peer: '127.0.0.1', localAddress: '127.0.0.1', host: '127.0.0.1', requestUrl: 'http://h/whep/live+x', query: '', token: '' };
  assert.deepEqual(await sig.offer(req), { id: '0123456789abcdef', kind: 'whep', stream: 'live+x', sdp: 'v=0\r\n' });
  assert.equal(await sig.end('0123456789abcdef', 'bye'), true);
  await assert.rejects(sig.offer({ ...req, name: 'nope' }), (err: Error & { status?: number }) => err.status === 404 && /not found/.test(err.message));
  assert.deepEqual(asked[0], ['/run/worker-1.sock', { op: 'webrtc.offer', request: req }]);
  assert.deepEqual(asked[1], ['/run/worker-1.sock', { op: 'webrtc.end', id: '0123456789abcdef', reason: 'bye' }]);
  // the owner not answering is a 503, not a crash
  const down = webrtcSignalling(service, '/nowhere', { get: () => ({}) }, async () => {
    throw new Error('ECONNREFUSED');
  });
  await assert.rejects(down.offer(req), (err: Error & { status?: number }) => err.status === 503);
});
