// The MPEG-TS network source strings (src/inputs/pull/ts-source.ts): tsudp:// URLs (unicast,
// multicast, IPv6, interfaces, what is refused), which http(s) URLs are TS pulls, the ts-exec
// command; the tsudp push target; fuzzing: any string parses or gives HAZE_ERR_INVALID_ARG.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isMulticastHost, parseTsUdpUrl, tsExecCommand, tsHttpUrl } from '../../src/inputs/pull/ts-source.js';
import { parsePushTarget } from '../../src/pushes/push-target.js';
import { HazeError } from '../../src/util/errors.js';

describe('tsudp URLs', () => {
  const cases: [string, ReturnType<typeof parseTsUdpUrl>][] = [
    ['tsudp://127.0.0.1:5000', { host: '127.0.0.1', port: 5000, multicast: false, family: 4, ifaces: [] }],
    ['tsudp://:5000', { host: '', port: 5000, multicast: false, family: 4, ifaces: [] }],
    ['TSUDP://239.1.2.3:1234/192.168.1.5', { host: '239.1.2.3', port: 1234, multicast: true, family: 4, ifaces: ['192.168.1.5'] }],
    ['tsudp://224.0.0.1:65535/eth0, eth1,', { host: '224.0.0.1', port: 65535, multicast: true, family: 4, ifaces: ['eth0', 'eth1'] }],
    ['tsudp://[ff02::1]:9000/lo', { host: 'ff02::1', port: 9000, multicast: true, family: 6, ifaces: ['lo'] }],
    ['tsudp://[::1]:9000', { host: '::1', port: 9000, multicast: false, family: 6, ifaces: [] }],
    ['tsudp://encoder.local:7000', { host: 'encoder.local', port: 7000, multicast: false, family: 4, ifaces: [] }],
    ['tsudp://10.0.0.1:7000?ignored=1', { host: '10.0.0.1', port: 7000, multicast: false, family: 4, ifaces: [] }],
  ];
  for (const [url, want] of cases) {
    it(`parses ${url}`, () => assert.deepEqual(parseTsUdpUrl(url), want));
  }

  for (const bad of ['tsudp://1.2.3.4', 'tsudp://1.2.3.4:0', 'tsudp://1.2.3.4:70000', 'tsudp://1.2.3.4:x', 'tsudp://[::1:5', 'tsudp://[1.2.3.4]:5', 'tsudp://a b:5', 'tsudp://1.2.3.4:5/e th0', 'udp://1.2.3.4:5', `tsudp://h:1/${'x'.repeat(3000)}`]) {
    it(`refuses ${bad.slice(0, 40)}`, () => assert.throws(() => parseTsUdpUrl(bad), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_INVALID_ARG'));
  }

  it('knows multicast groups', () => {
    for (const h of ['224.0.0.0', '239.255.255.255', 'ff05::2']) assert.equal(isMulticastHost(h), true, h);
    for (const h of ['223.255.255.255', '240.0.0.1', '127.0.0.1', '::1', 'fe80::1', 'ffhost', '']) assert.equal(isMulticastHost(h), false, h);
  });

  it('fuzz: any string parses or throws HAZE_ERR_INVALID_ARG', () => {
    const text = fc.oneof(fc.string({ maxLength: 80 }), fc.string({ maxLength: 60 }).map((s) => `tsudp://${s}`), fc.tuple(fc.ipV4(), fc.integer({ min: -5, max: 70000 }), fc.string({ maxLength: 20 })).map(([h, p, r]) => `tsudp://${h}:${p}${r}`));
    fc.assert(
      fc.property(text, (s) => {
        try {
          const a = parseTsUdpUrl(s);
          assert.ok(a.port >= 1 && a.port <= 65535);
          assert.equal(a.multicast, isMulticastHost(a.host));
        } catch (err) {
          assert.ok(err instanceof HazeError && err.code === 'HAZE_ERR_INVALID_ARG', String(err));
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('TS over HTTP and ts-exec sources', () => {
  it('takes http(s) URLs of .ts paths and the -ts schemes, nothing else', () => {
    assert.equal(tsHttpUrl('http://origin:8080/live.ts'), 'http://origin:8080/live.ts');
    assert.equal(tsHttpUrl('https://cdn.example/a/b.TS?token=1'), 'https://cdn.example/a/b.TS?token=1');
    assert.equal(tsHttpUrl('http-ts://origin/stream'), 'http://origin/stream');
    assert.equal(tsHttpUrl('HTTPS-TS://origin/x.m3u8'), 'https://origin/x.m3u8');
    for (const no of ['http://origin/live.m3u8', 'http://origin/a.ts/index.m3u8', 'http://origin.ts', 'http://origin/movie.mp4', '/local/file.ts', 'tsudp://1.2.3.4:5', 'ts-exec:cat x.ts']) assert.equal(tsHttpUrl(no), undefined, no);
  });

  it('takes the command of ts-exec:', () => {
    assert.equal(tsExecCommand('ts-exec:ffmpeg -re -i "a b.mp4" -f mpegts -'), 'ffmpeg -re -i "a b.mp4" -f mpegts -');
    assert.equal(tsExecCommand('ts-exec:   '), undefined);
    assert.equal(tsExecCommand('mkv-exec:ffmpeg'), undefined);
  });
});

describe('tsudp push targets', () => {
  it('parses unicast and multicast targets with push parameters', () => {
    const t = parsePushTarget('tsudp://127.0.0.1:5000?video=0&ttl=4');
    assert.equal(t.kind, 'tsudp');
    assert.equal(t.connector, 'TS');
    assert.equal(t.url, 'tsudp://127.0.0.1:5000');
    assert.equal(t.params.video, '0');
    assert.equal(t.params.raw['ttl'], '4');
    assert.equal(parsePushTarget('tsudp://239.0.0.1:5000/eth0').url, 'tsudp://239.0.0.1:5000/eth0');
  });

  it('refuses a target without a host or a port, and still refuses tsrtp/tstcp', () => {
    assert.throws(() => parsePushTarget('tsudp://:5000'), /needs a host/);
    assert.throws(() => parsePushTarget('tsudp://1.2.3.4'), /port is required/);
    assert.throws(() => parsePushTarget('tsrtp://1.2.3.4:5000'), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_UNSUPPORTED');
    assert.throws(() => parsePushTarget('tstcp://1.2.3.4:5000'), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_UNSUPPORTED');
  });
});
