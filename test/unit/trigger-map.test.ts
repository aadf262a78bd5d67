// The trigger map and payload text against reference/mistserver.md §4.2 (field order written
// out here independently of the map, so a reordering in the map fails).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isTriggerName, payloadText, TRIGGER_NAMES, TRIGGERS, type TriggerName, type TriggerPayload } from '../../src/triggers/trigger-map.js';

const CONN = ['stream', 'host', 'connector', 'requestUrl'];
const END = ['stream', 'target', 'connector', 'bytes', 'secondsActive', 'startUnix', 'stopUnix', 'mediaMs', 'firstPacketMs', 'lastPacketMs', 'machineReason', 'humanReason'];

/** §4.2, in order: name -> [kind, global, fields]. */
const EXPECTED: Record<string, [string, boolean, string[]]> = {
  SYSTEM_START: ['bool', true, ['version']],
  SYSTEM_STOP: ['bool', true, ['reason']],
  OUTPUT_START: ['notify', true, ['protocolConfig']],
  OUTPUT_STOP: ['notify', true, ['protocolConfig']],
  STREAM_ADD: ['bool', false, ['stream', 'config']],
  STREAM_CONFIG: ['bool', false, ['stream', 'config']],
  STREAM_REMOVE: ['bool', false, ['stream']],
  STREAM_LOAD: ['bool', false, ['stream']],
  STREAM_SOURCE: ['rewrite', false, ['stream']],
  STREAM_READY: ['bool', false, ['stream', 'input']],
  STREAM_UNLOAD: ['bool', false, ['stream', 'input', 'cancelable', 'reason']],
  STREAM_PUSH: ['bool', false, CONN],
  STREAM_BUFFER: ['notify', false, ['stream', 'state', 'health']],
  STREAM_END: ['notify', false, ['stream', 'downloadedBytes', 'uploadedBytes', 'totalViewers', 'totalInputs', 'totalOutputs', 'viewerSeconds']],
  LIVE_TRACK_LIST: ['notify', false, ['stream', 'tracks']],
  LIVE_BANDWIDTH: ['bool', false, ['stream', 'bytesPerSecond']],
  INPUT_ABORT: ['notify', false, ['stream', 'source', 'binary', 'pid', 'machineReason', 'humanReason']],
  RTMP_PUSH_REWRITE: ['rewrite', true, ['rtmpUrl', 'host']],
  PUSH_REWRITE: ['rewrite', true, ['pushUrl', 'host', 'stream']],
  PUSH_OUT_START: ['rewrite', false, ['stream', 'target']],
  PUSH_END: ['notify', false, ['pushId', 'stream', 'originalTarget', 'actualTarget', 'logLines', 'status']],
  RECORDING_END: ['notify', false, END],
  OUTPUT_END: ['notify', false, END],
  CONN_OPEN: ['bool', false, CONN],
  CONN_CLOSE: ['notify', false, CONN],
  CONN_PLAY: ['bool', false, CONN],
  CONN_STOP: ['notify', false, CONN],
  PLAY_REWRITE: ['rewrite', false, CONN],
  DEFAULT_STREAM: ['rewrite', false, ['defaultStream', 'stream', 'host', 'connector', 'requestUrl']],
  USER_NEW: ['bool', false, ['stream', 'host', 'token', 'connector', 'requestUrl', 'sessionId', 'tokenValid']],
  USER_END: ['notify', false, ['token', 'streams', 'connectors', 'hosts', 'durationS', 'bytesUp', 'bytesDown', 'tags', 'hostSeconds', 'connectorSeconds', 'streamSeconds', 'sessionId']],
};

test('the map holds exactly the triggers of §4.2 except LIVEPEER_SEGMENT_REJECTED, with their kind, globality and field order', () => {
  assert.deepEqual([...TRIGGER_NAMES].sort(), Object.keys(EXPECTED).sort());
  assert.equal(isTriggerName('LIVEPEER_SEGMENT_REJECTED'), false);
  assert.equal(isTriggerName('toString'), false);
  for (const name of TRIGGER_NAMES) {
    const [kind, global, fields] = EXPECTED[name]!;
    const spec = TRIGGERS[name];
    assert.equal(spec.kind, kind, name);
    assert.equal(spec.global, global, name);
    assert.deepEqual([...spec.fields], fields, name);
    assert.ok(spec.when.length > 0 && !spec.when.includes('\n'), `${name}: one-line "when"`);
  }
});

const ODD = new Set(['STREAM_UNLOAD', 'LIVE_TRACK_LIST']);

test('payload text of every trigger: the fields joined by \\n in order', () => {
  for (const name of TRIGGER_NAMES) {
    if (ODD.has(name)) continue;
    const fields = EXPECTED[name]![2];
    const payload: Record<string, string> = {};
    fields.forEach((f, i) => (payload[f] = `${f}-${i}`));
    const text = payloadText(name, payload as unknown as TriggerPayload<TriggerName>);
    assert.equal(text, fields.map((f, i) => `${f}-${i}`).join('\n'), name);
  }
});

test('payloads as Haze sends them', () => {
  // reference Appendix A.5
  assert.equal(
    payloadText('USER_NEW', {
      stream: 'live',
      host: '203.0.113.5',
      token: 'tkn1',
      connector: 'HLS',
      requestUrl: 'http://host:8080/hls/live/index.m3u8',
      sessionId: 'sess9',
      tokenValid: 'false',
    }),
    'live\n203.0.113.5\ntkn1\nHLS\nhttp://host:8080/hls/live/index.m3u8\nsess9\nfalse',
  );
  // the re-check after invalidate_sessions sends the first 6 fields only
  assert.equal(
    payloadText('USER_NEW', { stream: 'live', host: '::1', token: 't', connector: 'RTMP', requestUrl: 'rtmp://h/live', sessionId: 's' }),
    'live\n::1\nt\nRTMP\nrtmp://h/live\ns',
  );
  assert.equal(payloadText('RTMP_PUSH_REWRITE', { rtmpUrl: 'rtmp://example.com/live/abc123', host: '198.51.100.7' }), 'rtmp://example.com/live/abc123\n198.51.100.7');
  assert.equal(payloadText('STREAM_UNLOAD', { stream: 'live+a', input: 'Buffer', cancelable: 'cancelable', reason: 'no viewers' }), 'live+a\nBuffer\ncancelableno viewers');
  assert.equal(payloadText('STREAM_UNLOAD', { stream: 'vod', input: 'MP4', cancelable: 'uncancelable', reason: 'shutdown' }), 'vod\nMP4\nuncancelableshutdown');
  assert.equal(payloadText('LIVE_TRACK_LIST', { stream: 'live', tracks: '{"1":{"codec":"H264"}}' }), 'live\n{"1":{"codec":"H264"}}\n');
  assert.equal(payloadText('STREAM_BUFFER', { stream: 'live', state: 'FULL', health: '{"buffer":5000}' }), 'live\nFULL\n{"buffer":5000}');
  assert.equal(payloadText('STREAM_BUFFER', { stream: 'live', state: 'EMPTY' }), 'live\nEMPTY');
  assert.equal(payloadText('CONN_STOP', { stream: 'vod', host: '127.0.0.1', connector: 'HTTP', requestUrl: '' }), 'vod\n127.0.0.1\nHTTP\n');
  assert.equal(payloadText('SYSTEM_START', { version: '' }), '');
});

test('a line break inside a value cannot shift the later fields (no forged tokenValid)', () => {
  const text = payloadText('USER_NEW', {
    stream: 'live',
    host: '10.0.0.1',
    token: 'x',
    connector: 'HLS',
    requestUrl: '/hls/live/index.m3u8?a=\n1\r\ntrue',
    sessionId: 's',
    tokenValid: 'false',
  });
  const lines = text.split('\n');
  assert.equal(lines.length, 7);
  assert.equal(lines[6], 'false');
  assert.equal(lines[4], '/hls/live/index.m3u8?a= 1  true');
});

test('payload types come from the map', () => {
  // compile-time checks: a missing or unknown field is a type error
  // @ts-expect-error host is required
  payloadText('RTMP_PUSH_REWRITE', { rtmpUrl: 'x' });
  // @ts-expect-error no such field
  payloadText('STREAM_LOAD', { stream: 'x', nope: 'y' });
  const p: TriggerPayload<'PUSH_REWRITE'> = { pushUrl: 'a', host: 'b', stream: 'c' };
  assert.equal(payloadText('PUSH_REWRITE', p), 'a\nb\nc');
});
