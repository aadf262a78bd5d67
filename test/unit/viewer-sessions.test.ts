// Viewer sessions shared by workers through a folder (worker/viewer-sessions.ts): two instances
// stand for two workers of one server. The owner reports a session once, after every worker has
// been idle for the end delay, with the sums of all shares; a dead owner's session is taken over;
// the number of sessions tracked is capped. Delays are shortened (the server uses 15 s / 1 s / 5 s).

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { sleep, tmpDir } from '../helpers.js';
import { log } from '../../src/util/log.js';
import { unionMs, ViewerSessions, type SessionIdentity, type SessionSummary } from '../../src/worker/viewer-sessions.js';
import type { ConnectionBytes } from '../../src/stats/tracker.js';
import { userEndPayload } from '../../src/worker/viewer-access.js';
import { payloadText } from '../../src/triggers/trigger-map.js';

const END_MS = 400;
const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function workers(n: number, opts: { maxSessions?: number } = {}): { dir: string; sessions: ViewerSessions[]; ended: SessionSummary[][] } {
  const dir = tmpDir('haze-vs-');
  dirs.push(dir);
  const ended: SessionSummary[][] = [];
  const sessions: ViewerSessions[] = [];
  for (let i = 0; i < n; i++) {
    const mine: SessionSummary[] = [];
    ended.push(mine);
    sessions.push(new ViewerSessions({ dir, worker: i, log, onEnd: (s) => mine.push(s), endAfterMs: END_MS, flushMs: 50, heartbeatMs: 150, ...opts }));
  }
  return { dir, sessions, ended };
}

function identity(stream: string, connector: string, token = 't'): SessionIdentity {
  const host = '192.0.2.7';
  return { sessionId: createHash('sha256').update(`${stream}\n${host}\n${token}`).digest('hex'), stream, host, token, connector };
}

const fixed = (down: number, up: number) => (): ConnectionBytes => ({ down, up });

async function until(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('viewer sessions', () => {
  it('ends a session after the delay with its totals, once', async () => {
    const { sessions, ended } = workers(1);
    const id = identity('live+a', 'HLS');
    const t0 = Date.now();
    const c1 = sessions[0]!.connect(id, fixed(1000, 100));
    const c2 = sessions[0]!.connect({ ...id, connector: 'FLV' }, fixed(500, 50));
    await sleep(300);
    c1.end();
    c1.end(); // idempotent
    c2.end();
    const closedAt = Date.now();
    await until(() => ended[0]!.length > 0, 3000, 'the end');
    const s = ended[0]![0]!;
    assert.ok(Date.now() - closedAt >= END_MS - 20, 'not before the delay');
    assert.equal(s.sessionId, id.sessionId);
    assert.equal(s.stream, 'live+a');
    assert.equal(s.token, 't');
    assert.equal(s.bytesDown, 1500);
    assert.equal(s.bytesUp, 150);
    assert.equal(s.durationS, Math.round((closedAt - t0) / 1000));
    assert.deepEqual([...s.connectorSeconds.keys()], ['FLV', 'HLS']);
    assert.deepEqual([...s.hostSeconds.keys()], ['192.0.2.7']);
    assert.deepEqual([...s.streamSeconds.keys()], ['live+a']);
    // the USER_END body: MistServer's field order, lists in key order
    const body = payloadText('USER_END', userEndPayload(s)).split('\n');
    assert.deepEqual(body, ['t', 'live+a', 'FLV,HLS', '192.0.2.7', String(s.durationS), '150', '1500', '', String(s.hostSeconds.get('192.0.2.7')), `${s.connectorSeconds.get('FLV')},${s.connectorSeconds.get('HLS')}`, String(s.streamSeconds.get('live+a')), id.sessionId]);
    await sleep(END_MS + 200);
    assert.equal(ended[0]!.length, 1);
    assert.equal(sessions[0]!.size, 0);
  });

  it('a session over two workers ends once, at its owner, when both were idle for the delay', async () => {
    const { dir, sessions, ended } = workers(2);
    const id = identity('live+b', 'HLS');
    const a = sessions[0]!.connect(id, fixed(2000, 200));
    await sleep(100); // worker 0 claimed the session
    const b = sessions[1]!.connect(id, fixed(3000, 300));
    a.end();
    // worker 1 keeps a connection open well past the owner's delay
    await sleep(END_MS * 3);
    assert.equal(ended[0]!.length + ended[1]!.length, 0, 'alive while a worker has a connection');
    assert.ok(fs.existsSync(path.join(dir, id.sessionId, 'owner')));
    const bClosed = Date.now();
    b.end();
    await until(() => ended[0]!.length > 0, 5000, 'the owner ending the session');
    assert.ok(Date.now() - bClosed >= END_MS - 50, 'counted from the last worker activity');
    const s = ended[0]![0]!;
    assert.equal(s.bytesDown, 5000);
    assert.equal(s.bytesUp, 500);
    assert.ok(s.durationS >= 1, `duration ${s.durationS}`);
    assert.ok(!fs.existsSync(path.join(dir, id.sessionId)), 'the folder is removed');
    await sleep(END_MS * 2);
    assert.equal(ended[1]!.length, 0, 'never at the other worker');
    assert.equal(ended[0]!.length, 1);
    // the viewer comes back: a new session
    const again = sessions[1]!.connect(id, fixed(10, 1));
    again.end();
    await until(() => ended[1]!.length > 0, 5000, 'the second session');
    assert.equal(ended[1]![0]!.bytesDown, 10);
  });

  it('a worker whose contribution was dropped while idle continues its totals', async () => {
    const { sessions, ended } = workers(2);
    const id = identity('live+c', 'FLV');
    const owner = sessions[0]!.connect(id, fixed(1, 1)); // stays open: the session lives
    await sleep(100);
    sessions[1]!.connect(id, fixed(100, 10)).end();
    await until(() => sessions[1]!.size === 0, 5000, 'worker 1 dropping its idle record');
    sessions[1]!.connect(id, fixed(200, 20)).end();
    await sleep(200);
    owner.end();
    await until(() => ended[0]!.length > 0, 5000, 'the end');
    assert.equal(ended[0]![0]!.bytesDown, 301);
    assert.equal(ended[0]![0]!.bytesUp, 31);
  });

  it('takes over a session whose owner died', async () => {
    const { dir, sessions, ended } = workers(1);
    const id = identity('live+d', 'RTMP');
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    fs.mkdirSync(path.join(dir, id.sessionId), { recursive: true });
    fs.writeFileSync(path.join(dir, id.sessionId, 'owner'), `${dead} 5\n`);
    sessions[0]!.connect(id, fixed(42, 4)).end();
    await until(() => ended[0]!.length > 0, 5000, 'the takeover');
    assert.equal(ended[0]![0]!.bytesDown, 42);
  });

  it('tracks a bounded number of sessions', async () => {
    const { sessions, ended } = workers(1, { maxSessions: 2 });
    const conns = ['x', 'y', 'z'].map((tkn) => sessions[0]!.connect(identity('live+e', 'HLS', tkn), fixed(1, 1)));
    assert.equal(sessions[0]!.size, 2);
    for (const c of conns) c.end();
    await until(() => ended[0]!.length === 2, 5000, 'two ends');
    await sleep(END_MS + 100);
    assert.equal(ended[0]!.length, 2);
    sessions[0]!.close();
  });

  it('unionMs adds up overlapping intervals once', () => {
    assert.equal(unionMs([[[0, 1000], [2000, 3000]], [[500, 2500]]]), 3000);
    assert.equal(unionMs([[], [[10, 20]]]), 10);
    assert.equal(unionMs([]), 0);
  });
});
