import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigStore, type ConfigChange } from '../../src/controller/config-store.js';
import { defaultConfig } from '../../src/controller/default-config.js';
import { isHazeError } from '../../src/util/errors.js';
import { tmpDir, sleep } from '../helpers.js';

function waitForChange(store: ConfigStore, timeoutMs = 3000): Promise<ConfigChange> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error('no change event'));
    }, timeoutMs);
    const off = store.on('change', (c) => {
      clearTimeout(timer);
      off();
      resolve(c);
    });
  });
}

test('a missing file gives the embedded default; the first update creates the file', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'sub', 'config.json');
  const store = ConfigStore.open(file);
  assert.equal(store.fromDefault, true);
  assert.deepEqual(store.get(), defaultConfig());
  assert.ok(!fs.existsSync(file), 'opening writes nothing');
  store.update((c) => {
    c.streams['cam'] = { name: 'cam', source: 'push://' };
  });
  assert.ok(fs.existsSync(file));
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(fs.readdirSync(path.dirname(file)), ['config.json'], 'no tmp file left behind');
  store.close();
});

test('update persists atomically; reopening from disk gives an equal config', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'config.json');
  const store = ConfigStore.open(file);
  const changes: ConfigChange[] = [];
  store.on('change', (c) => changes.push(c));
  store.update((c) => {
    c.account['admin'] = { password: 'd41d8cd98f00b204e9800998ecf8427e' };
    c.streams['vod'] = { name: 'vod', source: '/media/a.mp4', DVR: 20000 };
    c.config.debug = 5;
  });
  assert.equal(changes.length, 1);
  assert.equal(changes[0]!.origin, 'update');
  assert.equal(changes[0]!.config, store.get());
  // an update that changes nothing neither saves nor emits
  const mtime = fs.statSync(file).mtimeMs;
  store.update(() => {});
  assert.equal(changes.length, 1);
  assert.equal(fs.statSync(file).mtimeMs, mtime);

  const again = ConfigStore.open(file);
  assert.equal(again.fromDefault, false);
  assert.deepEqual(again.get(), store.get());
  assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).streams.vod.DVR, 20000);
  store.close();
  again.close();
});

test('the current config is frozen; invalid updates throw and change nothing', () => {
  const store = ConfigStore.open(undefined);
  assert.throws(() => {
    (store.get().streams as Record<string, unknown>)['x'] = 1;
  }, TypeError);
  const before = store.get();
  assert.throws(
    () =>
      store.update((c) => {
        c.streams['bad'] = { name: 'bad', source: '' };
      }),
    (err: unknown) => isHazeError(err) && err.code === 'HAZE_ERR_INVALID_ARG' && /source/.test(err.message),
  );
  assert.equal(store.get(), before);
  // memory-only store: save does nothing, update still works
  store.save();
  store.update((c) => {
    c.config.serverid = 'x';
  });
  assert.equal(store.get().config.serverid, 'x');
});

test('an unreadable or invalid file is an error, never silently replaced', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, '{"streams": {');
  assert.throws(() => ConfigStore.open(file), (err: unknown) => isHazeError(err) && /not valid JSON/.test(err.message) && err.message.includes(file));
  assert.equal(fs.readFileSync(file, 'utf8'), '{"streams": {', 'left as it was');
  fs.writeFileSync(file, JSON.stringify({ streams: { live: { DVR: 3 } } }));
  assert.throws(() => ConfigStore.open(file), (err: unknown) => isHazeError(err) && /invalid/.test(err.message) && /source/.test(err.message));
  fs.writeFileSync(file, '[]');
  assert.throws(() => ConfigStore.open(file), (err: unknown) => isHazeError(err) && /object/.test(err.message));
  fs.rmSync(file);
  fs.mkdirSync(file);
  assert.throws(() => ConfigStore.open(file), (err: unknown) => isHazeError(err) && /regular file/.test(err.message));
});

test('a MistServer-style file loads, keeping keys Haze does not use', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'config.json');
  const mist = {
    account: { admin: { password: '21232f297a57a5a743894a0e4a801fc3' } },
    config: { controller: { port: 4242, interface: '0.0.0.0', username: 'root' }, protocols: [{ connector: 'HTTP' }, { connector: 'RTMP', port: 1935 }], debug: 4, limits: null },
    streams: { live: { name: 'live', source: 'push://', DVR: 50000, processes: [] } },
    autopushes: [],
  };
  fs.writeFileSync(file, JSON.stringify(mist));
  const store = ConfigStore.open(file);
  assert.equal(store.get().config.controller.interface, '0.0.0.0');
  assert.equal(store.get().config['limits'], null);
  assert.deepEqual(store.get()['autopushes'], []);
  assert.equal(store.get().config.sessionViewerMode, 14, 'missing keys take the defaults');
});

test('watch() picks up an edit by another program and ignores the store\'s own writes', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'config.json');
  const store = ConfigStore.open(file);
  store.save();
  store.watch();
  const seen: ConfigChange[] = [];
  store.on('change', (c) => seen.push(c));

  // own write: an 'update' change and no 'disk' one
  store.update((c) => {
    c.config.serverid = 'own';
  });
  await sleep(300);
  assert.deepEqual(
    seen.map((c) => c.origin),
    ['update'],
  );

  // in-place edit by another program
  const edited = JSON.parse(fs.readFileSync(file, 'utf8'));
  edited.streams.extra = { name: 'extra', source: 'push://' };
  let next = waitForChange(store);
  fs.writeFileSync(file, JSON.stringify(edited, null, 2));
  let change = await next;
  assert.equal(change.origin, 'disk');
  assert.ok('extra' in store.get().streams);

  // an editor's save: write elsewhere, rename over
  edited.config.serverid = 'renamed';
  next = waitForChange(store);
  fs.writeFileSync(path.join(dir, 'edit.tmp'), JSON.stringify(edited));
  fs.renameSync(path.join(dir, 'edit.tmp'), file);
  change = await next;
  assert.equal(change.config.config.serverid, 'renamed');

  // a broken edit is ignored: the running config stays
  const count = seen.length;
  fs.writeFileSync(file, '{ broken');
  await sleep(300);
  assert.equal(seen.length, count);
  assert.equal(store.get().config.serverid, 'renamed');

  store.close();
  store.close();
  // after close nothing is followed
  fs.writeFileSync(file, JSON.stringify({ ...edited, config: { ...edited.config, serverid: 'late' } }));
  await sleep(300);
  assert.equal(store.get().config.serverid, 'renamed');
});

test('writeEffective: port flags applied, accounts left out, the config file untouched', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'config.json');
  const runDir = path.join(dir, 'run');
  const store = ConfigStore.open(file);
  store.update((c) => {
    c.account['admin'] = { password: 'secret-hash' };
  });
  const before = fs.readFileSync(file, 'utf8');
  const out = store.writeEffective(runDir, { rtmp: 19350, api: 4343 });
  assert.equal(out, path.join(runDir, 'effective.json'));
  assert.equal(fs.statSync(out).mode & 0o777, 0o600);
  const eff = JSON.parse(fs.readFileSync(out, 'utf8'));
  assert.equal(eff.config.protocols.find((p: { connector: string }) => p.connector === 'RTMP').port, 19350);
  assert.equal(eff.config.controller.port, 4343);
  assert.deepEqual(eff.account, {});
  assert.equal(eff.effective_ports.RTMP, 19350);
  assert.equal(eff.effective_ports.controller, 4343);
  assert.ok(!fs.readFileSync(out, 'utf8').includes('secret-hash'));
  assert.equal(fs.readFileSync(file, 'utf8'), before, 'overrides are not written back');
  assert.equal(store.get().config.protocols.find((p) => p.connector === 'RTMP')!.port, 1935);
  assert.deepEqual(fs.readdirSync(runDir), ['effective.json']);
});
