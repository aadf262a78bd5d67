// The access log's two forms (MistServer's `ACCS:` log line and its file line), a file moved
// away by log rotation followed by a fresh one, and session ids under the session modes.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AccessLog, accessLogLine, accessLogMessage, type FinishedSession } from '../../src/stats/access-log.js';
import { sessionIdOf, setSessionModes, streamInfoKind } from '../../src/stats/session-id.js';
import { Logger } from '../../src/util/log.js';
import { tmpDir } from '../helpers.js';

const session = (over: Partial<FinishedSession> = {}): FinishedSession => ({
  sessionId: 'f'.repeat(64),
  stream: 'live+a',
  connectors: 'HLS,MP4',
  host: '203.0.113.5',
  durationS: 10,
  bytesUp: 2048,
  bytesDown: 1024 * 1024,
  tags: ['UA:curl/8', 'vip'],
  endMs: new Date(2026, 10, 24, 9, 5, 7).getTime(),
  ...over,
});

describe('access log', () => {
  it('writes MistServer\'s log line and file line', () => {
    assert.equal(accessLogMessage(session()), `ACCS: Session ${'f'.repeat(64)} live+a (HLS,MP4) from 203.0.113.5 ended after 10s, avg 0KB/s up 102KB/s down. Tags: [UA:curl/8, vip]`);
    assert.equal(accessLogLine(session()), `2026-11-24 09:05:07, ${'f'.repeat(64)}, live+a, HLS,MP4, 203.0.113.5, 10, 0, 102, UA:curl/8 vip\n`);
    // a zero-second session averages over one second rather than dividing by zero
    assert.match(accessLogLine(session({ durationS: 0 })), /, 0, 2, 1024, /);
  });

  it('appends to a file and follows a rotation (the moved file keeps its lines, a new one starts)', async () => {
    const dir = tmpDir('haze-accs-');
    const file = path.join(dir, 'access.log');
    const log = new AccessLog(() => file, new Logger());
    log.write(session({ stream: 'one' }));
    log.write(session({ stream: 'two' }));
    await log.flushed();
    fs.renameSync(file, `${file}.1`);
    log.write(session({ stream: 'three' }));
    await log.flushed();
    assert.deepEqual(fs.readFileSync(`${file}.1`, 'utf8').split('\n').filter(Boolean).map((l) => l.split(', ')[2]), ['one', 'two']);
    assert.deepEqual(fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => l.split(', ')[2]), ['three']);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('an unwritable path loses its lines with a warning, never throws, and the log goes on once the path works', async () => {
    const dir = tmpDir('haze-accs-');
    let target = path.join(dir, 'missing', 'access.log');
    const log = new AccessLog(() => target, new Logger());
    log.write(session({ stream: 'lost' }));
    await log.flushed();
    assert.equal(fs.existsSync(target), false);
    target = path.join(dir, 'access.log');
    log.write(session({ stream: 'kept' }));
    await log.flushed();
    assert.deepEqual(fs.readFileSync(target, 'utf8').split('\n').filter(Boolean).map((l) => l.split(', ')[2]), ['kept']);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('session ids', () => {
  const sha = (text: string): string => createHash('sha256').update(text).digest('hex');

  it('hash the parts the mode selects, with MistServer\'s prefixes', () => {
    setSessionModes({});
    assert.equal(sessionIdOf('viewer', 's', '1.2.3.4', 'tk', 'HLS'), sha('s\n1.2.3.4\ntk'));
    assert.equal(sessionIdOf('input', 's', '1.2.3.4', '', 'INPUT:RTMP'), 'I' + sha('s\n1.2.3.4\n\nINPUT:RTMP'));
    assert.equal(sessionIdOf('output', 's', 'h', '', 'OUTPUT:RTMP'), 'O' + sha('s\nh\n\nOUTPUT:RTMP'));
    // viewer mode 15: the connector too, so HLS and MP4 of one viewer are two sessions
    setSessionModes({ viewer: 15 });
    assert.notEqual(sessionIdOf('viewer', 's', 'h', 't', 'HLS'), sessionIdOf('viewer', 's', 'h', 't', 'MP4'));
    // mode 8: one session per stream
    setSessionModes({ viewer: 8 });
    assert.equal(sessionIdOf('viewer', 's', 'a', 'x', 'HLS'), sessionIdOf('viewer', 's', 'b', 'y', 'FLV'));
    setSessionModes({ viewer: 99, streamInfo: 3 });
    assert.equal(sessionIdOf('viewer', 's', 'h', 't', 'HLS'), sha('s\nh\nt'), 'an invalid mode keeps the default');
    assert.equal(streamInfoKind(), undefined);
    setSessionModes({});
    assert.equal(streamInfoKind(), 'viewer');
  });
});
