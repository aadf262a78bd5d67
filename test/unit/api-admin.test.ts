// The administration calls the web UI uses (src/controller/api-admin.ts): capabilities.triggers,
// config_backup / config_restore, ui_settings and the account calls, through handleApiCommand
// as a client sends them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { API_CALLS, handleApiCommand, type ApiHost, type ApiRequestContext } from '../../src/controller/api.js';
import { challengeAnswer, challengeFor, createAuthState, md5Hex, type AuthState } from '../../src/controller/auth.js';
import { ConfigStore } from '../../src/controller/config-store.js';
import type { TriggerDispatcher } from '../../src/triggers/dispatch.js';
import { TRIGGER_NAMES, TRIGGERS, type TriggerSpec } from '../../src/triggers/trigger-map.js';
import { tmpDir } from '../helpers.js';

type Answer = Record<string, any>;
const REMOTE = '203.0.113.9';

function setup(opts: { file?: string; triggers?: ApiHost['triggers'] } = {}) {
  const store = ConfigStore.open(opts.file);
  const host: ApiHost = { config: store, instanceId: 'iid-admin', streamStats: async () => ({}), logs: () => [], ...(opts.triggers ? { triggers: opts.triggers } : {}) };
  const ctx: ApiRequestContext = { peer: '127.0.0.1', headers: {}, auth: createAuthState() };
  const call = (req: Record<string, unknown>, c: ApiRequestContext = ctx): Promise<Answer> => handleApiCommand({ minimal: 1, ...req }, c, host);
  return { store, host, call };
}

function remote(auth: AuthState = createAuthState()): ApiRequestContext {
  return { peer: REMOTE, headers: { host: 'haze.example:4242' }, auth };
}

test('the new calls are API calls (no "unknown call" error)', async () => {
  const { call } = setup();
  for (const name of ['config_backup', 'config_restore', 'ui_settings', 'account_list', 'account_set', 'account_delete']) assert.ok(API_CALLS.includes(name), name);
  const r = await call({ config_backup: true, ui_settings: true, account_list: true });
  assert.equal(r['error'], undefined);
});

test('capabilities.triggers describes every trigger of the trigger map, from the map', async () => {
  const { call } = setup();
  const t = (await call({ capabilities: true }))['capabilities'].triggers as Record<string, Answer>;
  assert.deepEqual(Object.keys(t), [...TRIGGER_NAMES]);
  for (const name of TRIGGER_NAMES) {
    const spec: TriggerSpec = TRIGGERS[name];
    const d = t[name]!;
    assert.equal(d['when'], spec.when, name);
    assert.equal(d['stream_specific'], !spec.global, name);
    assert.equal(d['kind'], spec.kind, name);
    assert.deepEqual(d['fields'], [...spec.fields], name);
    assert.equal(d['payload'], spec.fields.join('\n'), name);
    assert.deepEqual(d['optional'], spec.optional ? [...spec.optional] : undefined, name);
    assert.equal(d['response'], spec.kind === 'notify' ? 'ignored' : 'when-blocking', name);
    assert.equal(d['response_action'], spec.defaultBehaviour ?? '', name);
    assert.equal(d['note'], spec.note, name);
  }
  // a few facts of MistServer's list (reference §4.2), so a broken map shows here too
  assert.equal(t['USER_NEW']!['payload'], 'stream\nhost\ntoken\nconnector\nrequestUrl\nsessionId\ntokenValid');
  assert.deepEqual(t['USER_NEW']!['optional'], ['tokenValid']);
  assert.equal(t['PUSH_REWRITE']!['stream_specific'], false);
  assert.equal(t['CONN_CLOSE']!['response'], 'ignored');
  assert.equal(t['PLAY_REWRITE']!['response'], 'when-blocking');
  assert.match(t['STREAM_ADD']!['response_action'], /not added/);
  // capabilities for one source has no trigger list
  assert.equal((await call({ capabilities: 'push://' }))['capabilities'].triggers, undefined);
});

test('backup -> change -> restore undoes the change, in memory and on disk', async () => {
  const file = path.join(tmpDir(), 'config.json');
  const { store, call } = setup({ file });
  // a config with something in every part the UI edits
  let r = await call({
    addstream: { cam: { source: 'push://', DVR: 30000, tags: ['a'] } },
    config: { debug: 5, serverid: 'before' },
    ui_settings: { theme: 'dark' },
    account_set: { username: 'admin', password: 'pw1' },
    streamkey_add: { K3y: 'cam' },
  });
  assert.equal(r['error'], undefined);
  const backup = (await call({ config_backup: true }))['config_backup'];
  assert.deepEqual(backup, JSON.parse(fs.readFileSync(file, 'utf8')), 'the backup is the config as saved');
  assert.equal(backup.account.admin.password, md5Hex('pw1'));
  assert.equal(backup.streams.cam.DVR, 30000);

  r = await call({
    addstream: { other: { source: 'push://' }, cam: { source: 'push://10.0.0.1' } },
    deletestream: 'demo',
    config: { debug: 9, serverid: 'after' },
    ui_settings: { theme: 'light' },
    streamkey_del: 'K3y',
  });
  assert.equal(r['error'], undefined);
  assert.notDeepEqual(structuredClone(store.get()), backup);

  // the backup travels as JSON (a file the user downloaded)
  r = await call({ config_restore: JSON.parse(JSON.stringify(backup)), config: {} });
  assert.equal(r['error'], undefined);
  assert.deepEqual(r['config_restore'], { ok: true, streams: 3 });
  assert.deepEqual(structuredClone(store.get()), backup);
  assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), backup, 'saved');
  assert.equal(r['config'].serverid, 'before', 'the answer shows the restored config');
  // a backup taken in the same request is the config before the restore
  await call({ config: { debug: 2 } });
  r = await call({ config_backup: true, config_restore: backup });
  assert.equal(r['config_backup'].config.debug, 2);
  assert.equal(store.get().config.debug, 5);
  store.close();
});

test('a bad restore changes nothing and names the problem', async () => {
  const file = path.join(tmpDir(), 'config.json');
  const { store, call } = setup({ file });
  await call({ account_set: { username: 'admin', password: 'pw' }, addstream: { cam: { source: 'push://' } } });
  const good = (await call({ config_backup: true }))['config_backup'];
  const text = fs.readFileSync(file, 'utf8');
  const before = store.get();
  const bads: [unknown, RegExp][] = [
    ['x', /expected the config object/],
    [[good], /expected the config object/],
    [{ ...good, streams: { cam: { DVR: 5 } } }, /streams\.cam.*source/],
    [{ ...good, streams: { ...good.streams, 'Bad Name': { source: 'push://' } } }, /canonical|stream name/],
    [{ ...good, config: { ...good.config, debug: 99 } }, /config\.debug/],
    [{ ...good, config: { ...good.config, protocols: 'HTTP' } }, /protocols/],
    [{ ...good, config: { ...good.config, triggers: { NOPE: [] } } }, /NOPE/],
    [{ ...good, account: { admin: { password: 5 } } }, /account\.admin/],
    [{ ...good, ui_settings: [] }, /ui_settings/],
  ];
  for (const [bad, why] of bads) {
    const r = await call({ config_restore: bad });
    assert.match(r['error'], why, JSON.stringify(bad).slice(0, 80));
    assert.match(r['error'], /^config_restore: .*nothing changed/);
    assert.equal(r['config_restore'], undefined);
    assert.equal(store.get(), before, 'same config object');
    assert.equal(fs.readFileSync(file, 'utf8'), text, 'file untouched');
  }
  store.close();
});

test('a restore without accounts keeps the current ones; with accounts it replaces them', async () => {
  const { store, call } = setup();
  await call({ account_set: { username: 'admin', password: 'pw' } });
  const backup = (await call({ config_backup: true }))['config_backup'];
  const { account: _dropped, ...noAccounts } = backup;
  let r = await call({ config_restore: noAccounts });
  assert.deepEqual(r['config_restore'], { ok: true, streams: 2 });
  assert.deepEqual(Object.keys(store.get().account), ['admin']);
  r = await call({ config_restore: { ...backup, account: {} } });
  assert.deepEqual(Object.keys(store.get().account), ['admin'], 'an empty account object counts as none');
  r = await call({ config_restore: { ...backup, account: { ops: { password: md5Hex('x') } } } });
  assert.equal(r['error'], undefined);
  assert.deepEqual(Object.keys(store.get().account), ['ops']);
  // a minimal backup: everything not named takes the default, streams included
  r = await call({ config_restore: { streams: { only: { source: 'push://' } } } });
  assert.deepEqual(r['config_restore'], { ok: true, streams: 1 });
  assert.deepEqual(Object.keys(store.get().streams), ['only']);
  assert.deepEqual(Object.keys(store.get().account), ['ops']);
});

test('restored streams go through the STREAM_ADD / STREAM_CONFIG / STREAM_REMOVE vetting of `streams`', async () => {
  const fired: string[] = [];
  // a blocking handler that refuses adding "blocked" and removing "demo"
  const triggers = {
    fire: async (name: string, stream: string) => {
      fired.push(`${name} ${stream}`);
      const refused = (name === 'STREAM_ADD' && stream === 'blocked') || (name === 'STREAM_REMOVE' && stream === 'demo');
      return { response: refused ? 'false' : 'true', allowed: !refused, handled: true };
    },
  } as unknown as TriggerDispatcher;
  const { store, call } = setup({ triggers });
  const live = structuredClone(store.get().streams['live']);
  const r = await call({ config_restore: { streams: { live: { ...live, DVR: 20000 }, fresh: { source: 'push://' }, blocked: { source: 'push://' } } } });
  assert.deepEqual(fired.sort(), ['STREAM_ADD blocked', 'STREAM_ADD fresh', 'STREAM_CONFIG live', 'STREAM_REMOVE demo']);
  assert.match(r['error'], /STREAM_ADD refused the new stream blocked/);
  assert.match(r['error'], /STREAM_REMOVE kept stream demo/);
  assert.deepEqual(r['config_restore'], { ok: true, streams: 3 });
  assert.deepEqual(Object.keys(store.get().streams).sort(), ['demo', 'fresh', 'live']);
  assert.equal(store.get().streams['live']!.DVR, 20000);
  // unchanged streams are not vetted again
  fired.length = 0;
  await call({ config_restore: structuredClone(store.get()) });
  assert.deepEqual(fired, []);
});

test('ui_settings stores an object verbatim (bounded) and reads it back', async () => {
  const file = path.join(tmpDir(), 'config.json');
  const { store, call } = setup({ file });
  assert.deepEqual((await call({ ui_settings: true }))['ui_settings'], {});
  const settings = { theme: 'dark', charts: [{ id: 1, fields: ['cpu', 'mem'] }], nested: { a: { b: null } }, 'x-odd key': 'é' };
  let r = await call({ ui_settings: settings });
  assert.deepEqual(r['ui_settings'], settings);
  assert.equal(r['error'], undefined);
  assert.deepEqual((await call({ ui_settings: true }))['ui_settings'], settings);
  assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')).ui_settings, settings, 'saved');
  // too large, too deep, or not an object: an error, the stored one stays and is echoed
  const big = { blob: 'x'.repeat(64 * 1024) };
  let deep: Record<string, unknown> = {};
  for (let i = 0; i < 100; i++) deep = { d: deep };
  for (const [bad, why] of [
    [big, /larger than 65536 bytes/],
    [deep, /nested deeper/],
    [[1, 2], /expected an object/],
    ['dark', /expected an object/],
  ] as const) {
    r = await call({ ui_settings: bad });
    assert.match(r['error'], why);
    assert.deepEqual(r['ui_settings'], settings);
  }
  assert.deepEqual(store.get().ui_settings, settings);
  // just under the bound is fine
  const fits = { blob: 'y'.repeat(64 * 1024 - 20) };
  r = await call({ ui_settings: fits });
  assert.equal(r['error'], undefined);
  assert.equal(store.get().ui_settings['blob'], fits.blob);
  store.close();
});

test('accounts: list, set (md5 stored), validation, and the last one is never deleted', async () => {
  const { store, call } = setup();
  assert.deepEqual((await call({ account_list: true }))['account_list'], []);
  let r = await call({ account_set: { username: 'admin', password: 'secret' }, account_list: true });
  assert.equal(r['account_set'], 'admin');
  assert.deepEqual(r['account_list'], ['admin']);
  assert.equal(store.get().account['admin']!.password, md5Hex('secret'));
  // changing a password keeps other members of the account
  store.update((c) => {
    c.account['admin'] = { ...c.account['admin']!, note: 'kept' };
  });
  await call({ account_set: { username: 'admin', password: 'other' } });
  assert.deepEqual(store.get().account['admin'], { password: md5Hex('other'), note: 'kept' });

  const before = store.get();
  for (const [bad, why] of [
    [{ username: '', password: 'x' }, /username/],
    [{ username: 'has space', password: 'x' }, /username/],
    [{ username: 'a'.repeat(65), password: 'x' }, /username/],
    [{ username: '__proto__', password: 'x' }, /username/],
    [{ username: 'ok', password: '' }, /password/],
    [{ username: 'ok', password: 'p'.repeat(1025) }, /password/],
    [{ username: 'ok' }, /password/],
    ['admin', /expected \{username, password\}/],
  ] as const) {
    r = await call({ account_set: bad });
    assert.match(r['error'], why);
    assert.equal(r['account_set'], undefined);
    assert.equal(store.get(), before, 'nothing changed');
  }

  r = await call({ account_delete: 'admin', account_list: true });
  assert.match(r['error'], /last account/);
  assert.deepEqual(r['account_list'], ['admin']);
  assert.match((await call({ account_delete: 'nobody' }))['error'], /no account named "nobody"/);
  assert.match((await call({ account_delete: ['admin'] }))['error'], /expected an account name/);
  r = await call({ account_set: { username: 'ops@site.example', password: 'p2' }, account_list: true });
  assert.deepEqual(r['account_list'], ['admin', 'ops@site.example']);
  r = await call({ account_delete: 'admin', account_list: true });
  assert.equal(r['error'], undefined);
  assert.equal(r['account_delete'], 'admin');
  assert.deepEqual(r['account_list'], ['ops@site.example']);
  assert.match((await call({ account_delete: 'ops@site.example' }))['error'], /last account/);
});

test("changing the logged-in user's password keeps that connection authorised; logins then need the new one", async () => {
  const { call } = setup();
  await call({ account_set: { username: 'admin', password: 'old' } });
  const challenge = challengeFor(REMOTE);
  const conn = remote();
  let r = await call({ authorize: { username: 'admin', password: challengeAnswer('old', challenge) } }, conn);
  assert.deepEqual(r['authorize'], { status: 'OK' });
  r = await call({ account_set: { username: 'admin', password: 'new' } }, conn);
  assert.equal(r['account_set'], 'admin');
  r = await call({ account_list: true }, conn);
  assert.deepEqual(r['authorize'], { status: 'OK' }, 'still logged in');
  assert.deepEqual(r['account_list'], ['admin']);
  // another connection: the old password no longer works, the new one does
  r = await call({ authorize: { username: 'admin', password: challengeAnswer('old', challenge) }, account_list: true }, remote());
  assert.equal(r['authorize'].status, 'CHALL');
  assert.equal(r['account_list'], undefined, 'unauthorised requests run no call');
  r = await call({ authorize: { username: 'admin', password: challengeAnswer('new', challenge) } }, remote());
  assert.deepEqual(r['authorize'], { status: 'OK' });
  // deleting the account a connection logged in with ends that login
  await call({ account_set: { username: 'ops', password: 'x' } });
  await call({ account_delete: 'admin' });
  assert.equal((await call({}, conn))['authorize'].status, 'CHALL');
});

test('fuzz: any JSON to the admin calls gives an answer or an error, never an internal error, a partial restore or no account', async () => {
  const { store, call } = setup();
  await call({ account_set: { username: 'admin', password: 'pw' } });
  const backup = (await call({ config_backup: true }))['config_backup'];
  const calls = ['config_restore', 'ui_settings', 'account_set', 'account_delete', 'account_list', 'config_backup'];
  const check = async (req: Record<string, unknown>): Promise<void> => {
    const before = store.get();
    const r = await call(req);
    assert.equal(r['LTS'], 1);
    assert.doesNotMatch(String(r['error'] ?? ''), /internal error/);
    if ('config_restore' in req && r['config_restore'] === undefined) assert.equal(store.get(), before, 'a refused restore changes nothing');
    assert.ok(Object.keys(store.get().account).length >= 1, 'an account is left');
  };
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...calls), fc.jsonValue({ maxDepth: 4 }), async (name, value) => check({ [name]: value })),
    { numRuns: 300 },
  );
  // a valid backup with one member anywhere in it replaced
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom<(b: Answer) => Answer>((b) => b, (b) => b['config'], (b) => b['streams'], (b) => b['streams']['demo'], (b) => b['account']),
      fc.constantFrom('source', 'DVR', 'tags', 'debug', 'protocols', 'triggers', 'streams', 'config', 'account', 'admin', 'ui_settings', 'jwks', 'x'),
      fc.jsonValue({ maxDepth: 3 }),
      async (at, key, value) => {
        const b = structuredClone(backup);
        at(b)[key] = value;
        await check({ config_restore: b });
      },
    ),
    { numRuns: 300 },
  );
});
