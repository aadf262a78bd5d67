// config.triggers validation and the §4.1 stream matching rules.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileTriggers, matches, triggersToJson, validateHandler, validateTriggers, type TriggerHandler } from '../../src/triggers/trigger-config.js';

function handler(streams: string[]): TriggerHandler {
  const r = validateHandler({ handler: 'http://127.0.0.1/x', sync: true, streams }, 'h');
  assert.ok(r.ok, r.ok ? '' : r.error);
  return r.value;
}

test('the object form normalises; numbers/booleans for default and params become text', () => {
  const r = validateTriggers({
    USER_NEW: [{ handler: 'https://auth.example/mist', sync: true, streams: ['live', '#paid'], default: 'false' }],
    PUSH_REWRITE: [{ handler: '/usr/local/bin/keymap.sh', sync: true }],
    RECORDING_END: [{ handler: 'https://hooks.example/rec', sync: false, default: 0, params: 5 }],
    CONN_OPEN: [],
  });
  assert.ok(r.ok, r.ok ? '' : r.error);
  const u = r.value.USER_NEW![0]!;
  assert.equal(u.handler, 'https://auth.example/mist');
  assert.equal(u.isUrl, true);
  assert.equal(u.sync, true);
  assert.deepEqual(u.streams, ['live', '#paid']);
  assert.equal(u.default, 'false');
  assert.equal(u.params, '');
  const p = r.value.PUSH_REWRITE![0]!;
  assert.equal(p.isUrl, false);
  assert.deepEqual(p.streams, []);
  assert.equal(p.default, '');
  assert.equal(r.value.RECORDING_END![0]!.default, '0');
  assert.equal(r.value.RECORDING_END![0]!.params, '5');
  assert.equal(r.value.CONN_OPEN, undefined);
  assert.deepEqual(triggersToJson(r.value), {
    USER_NEW: [{ handler: 'https://auth.example/mist', sync: true, streams: ['live', '#paid'], default: 'false' }],
    PUSH_REWRITE: [{ handler: '/usr/local/bin/keymap.sh', sync: true, streams: [] }],
    RECORDING_END: [{ handler: 'https://hooks.example/rec', sync: false, streams: [], params: '5', default: '0' }],
  });
});

test('the legacy form [url, sync, [streams]]', () => {
  const r = validateTriggers({ STREAM_BUFFER: [['http://h/buf', false, ['live']], ['/bin/true', 1], ['/bin/true']] });
  assert.ok(r.ok, r.ok ? '' : r.error);
  const [a, b, c] = r.value.STREAM_BUFFER!;
  assert.deepEqual([a!.handler, a!.sync, a!.streams], ['http://h/buf', false, ['live']]);
  assert.deepEqual([b!.handler, b!.sync, b!.streams], ['/bin/true', true, []]);
  assert.equal(c!.sync, false);
});

test('empty and absent configurations', () => {
  assert.deepEqual(validateTriggers(undefined), { ok: true, value: {} });
  assert.deepEqual(validateTriggers(null), { ok: true, value: {} });
  assert.deepEqual(validateTriggers({}), { ok: true, value: {} });
});

test('bad configurations give clear errors naming the place', () => {
  const bad: [unknown, string][] = [
    [[], 'config.triggers must be an object {TRIGGER_NAME: [handlers]}'],
    ['x', 'config.triggers must be an object {TRIGGER_NAME: [handlers]}'],
    [{ NOPE: [] }, 'config.triggers: unknown trigger "NOPE"'],
    [{ USER_NEW: {} }, 'config.triggers.USER_NEW must be an array of handlers'],
    [{ USER_NEW: [5] }, 'config.triggers.USER_NEW[0] must be an object {handler, sync, streams, params, default} or [handler, sync, [streams]]'],
    [{ USER_NEW: [{ sync: true }] }, 'config.triggers.USER_NEW[0].handler must be an http(s) URL or the absolute path of an executable'],
    [{ USER_NEW: [{ handler: 'ftp://x/y' }] }, 'config.triggers.USER_NEW[0].handler: only http:// and https:// URLs are supported (got ftp://)'],
    [{ USER_NEW: [{ handler: 'http://' }] }, 'config.triggers.USER_NEW[0].handler is not a valid URL: http://'],
    [{ USER_NEW: [{ handler: 'script.sh' }] }, 'config.triggers.USER_NEW[0].handler must be an http(s) URL or an absolute path (starting with /), got "script.sh"'],
    [{ USER_NEW: [{ handler: '/bin/x\n' }] }, 'config.triggers.USER_NEW[0].handler contains a control character'],
    [{ USER_NEW: [{ handler: '/bin/x', sync: 'yes' }] }, 'config.triggers.USER_NEW[0].sync must be true or false'],
    [{ USER_NEW: [{ handler: '/bin/x', streams: 'live' }] }, 'config.triggers.USER_NEW[0].streams must be an array of stream names, "!name" or "#tag" entries'],
    [{ USER_NEW: [{ handler: '/bin/x', streams: ['a', 3] }] }, 'config.triggers.USER_NEW[0].streams[1] must be a string'],
    [{ USER_NEW: [{ handler: '/bin/x', streams: ['!'] }] }, 'config.triggers.USER_NEW[0].streams[0] must name a stream or a #tag'],
    [{ USER_NEW: [{ handler: '/bin/x', default: {} }] }, 'config.triggers.USER_NEW[0].default must be a string'],
    [{ USER_NEW: [{ handler: '/bin/x', params: [] }] }, 'config.triggers.USER_NEW[0].params must be a string'],
    [{ USER_NEW: [['/bin/x', true, ['a'], 'extra']] }, 'config.triggers.USER_NEW[0]: the legacy form is [handler, sync, [streams]]'],
    [{ USER_NEW: [{ handler: '/bin/x', streams: Array(300).fill('a') }] }, 'config.triggers.USER_NEW[0].streams has more than 256 entries'],
  ];
  for (const [raw, error] of bad) assert.deepEqual(validateTriggers(raw), { ok: false, error }, JSON.stringify(raw).slice(0, 80));
});

test('compileTriggers is lenient and cached per object', () => {
  const raw = { USER_NEW: [{ handler: 'nope' }, { handler: '/bin/true', sync: true }], NOPE: [{ handler: '/bin/true' }] };
  const a = compileTriggers(raw);
  assert.equal(a.USER_NEW!.length, 1);
  assert.equal(a.USER_NEW![0]!.handler, '/bin/true');
  assert.equal(compileTriggers(raw), a);
  assert.deepEqual(compileTriggers(undefined), {});
});

test('stream matching table (§4.1)', () => {
  // [streams, stream name, tags, expected]
  const table: [string[], string, string[], boolean][] = [
    [[], 'live', [], true],
    [[], 'anything+x', [], true],
    [['live'], 'live', [], true],
    [['live'], 'live+alice', [], true], // base name before +
    [['live'], 'live alice', [], true], // base name before space
    [['live'], 'lives', [], false],
    [['live'], 'liv', [], false],
    [['live'], 'other', [], false],
    [['live+alice'], 'live+alice', [], true],
    [['live+alice'], 'live+bob', [], false],
    [['live+alice'], 'live', [], false],
    [['!live'], 'live', [], false],
    [['!live'], 'live+x', [], false],
    [['!live'], 'other', [], true], // only negations: all others
    [['!live', '!vod'], 'vod', [], false],
    [['!live', '!vod'], 'cam', [], true],
    [['!live+alice'], 'live+alice', [], false],
    [['!live+alice'], 'live+bob', [], true],
    [['live', '!live+bob'], 'live+alice', [], true],
    [['live', '!live+bob'], 'live+bob', [], false],
    [['live', '!live+bob'], 'cam', [], false],
    [['#paid'], 'cam', ['paid'], true],
    [['#paid'], 'cam', ['#paid'], true],
    [['#paid'], 'cam', ['free'], false],
    [['#paid'], 'cam', [], false],
    [['#paid', 'live'], 'live', [], true],
    [['!#free'], 'cam', ['free'], false],
    [['!#free'], 'cam', ['paid'], true],
    [['live', '!#free'], 'live', ['free'], false],
    [['Live'], 'live', [], false], // names are compared exactly
    // a global trigger fires with an empty stream name: every handler matches
    [['live'], '', [], true],
    [['!live'], '', [], true],
    [['#paid'], '', [], true],
  ];
  for (const [streams, name, tags, want] of table) {
    assert.equal(matches(handler(streams), name, tags), want, `${JSON.stringify(streams)} vs "${name}" ${JSON.stringify(tags)}`);
  }
  assert.equal(matches(handler(['live']), 'live+a'), true, 'tags are optional');
});
