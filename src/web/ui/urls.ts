// Every play and publish URL of a stream, from the ports the server listens on in this run
// (`capabilities.listening`), the connectors configured, and the public addresses: the HTTP
// connector's `pubaddr` (a reverse proxy's base URL) replaces `http://HOST:PORT/` for HTTP
// URLs; HOST is the address this page was opened with.

export interface ProtocolEntry {
  connector: string;
  port?: number;
  pubaddr?: string | string[];
}

export interface StreamUrl {
  label: string;
  url: string;
}

export interface StreamUrls {
  play: StreamUrl[];
  publish: StreamUrl[];
  /** the player page, for the preview and the embed code */
  page: string;
  embed: string;
}

const HTTP_PLAY: [connector: string, label: string, path: (n: string) => string][] = [
  ['HLS', 'HLS', (n) => `hls/${n}/index.m3u8`],
  ['CMAF', 'LL-HLS (CMAF)', (n) => `cmaf/${n}/index.m3u8`],
  ['CMAF', 'DASH', (n) => `cmaf/${n}/index.mpd`],
  ['FLV', 'FLV', (n) => `${n}.flv`],
  ['MP4', 'MP4', (n) => `${n}.mp4`],
  ['HTTPTS', 'MPEG-TS', (n) => `${n}.ts`],
  ['EBML', 'WebM (VP8, VP9, AV1 streams)', (n) => `${n}.webm`],
  ['EBML', 'Matroska', (n) => `${n}.mkv`],
  ['WebRTC', 'WebRTC (WHEP)', (n) => `whep/${n}`],
  ['HTTP', 'Stream info (JSON)', (n) => `json_${n}.js`],
];

/** The HTTP connector's public base URLs, or `http://HOST:PORT/`. */
export function httpBases(protocols: ProtocolEntry[], ports: Record<string, number>, host: string): string[] {
  const httpEntry = protocols.find((p) => p.connector === 'HTTP');
  const pub = httpEntry?.pubaddr;
  const list = (Array.isArray(pub) ? pub : pub ? [pub] : []).filter((u) => /^https?:\/\//.test(u)).map((u) => (u.endsWith('/') ? u : `${u}/`));
  if (list.length) return list;
  const port = ports['HTTP'];
  return port ? [`http://${host}:${port}/`] : [];
}

/** A name in a URL path: `+` and the safe characters of stream names stay as they are. */
const inPath = (name: string): string => encodeURIComponent(name).replace(/%2B/gi, '+');

export function streamUrls(name: string, live: boolean, protocols: ProtocolEntry[], ports: Record<string, number>, pageHost: string): StreamUrls {
  const host = pageHost.includes(':') && !pageHost.startsWith('[') ? `[${pageHost}]` : pageHost;
  const has = (c: string): boolean => protocols.some((p) => p.connector === c);
  const bases = httpBases(protocols, ports, host);
  const n = inPath(name);
  const play: StreamUrl[] = [];
  const publish: StreamUrl[] = [];
  for (const base of bases) {
    const suffix = bases.length > 1 ? ` (${new URL(base).host})` : '';
    play.push({ label: `Player page${suffix}`, url: `${base}${n}.html` });
    for (const [c, label, path] of HTTP_PLAY) if (has(c) || (c === 'HTTP' && bases.length)) play.push({ label: `${label}${suffix}`, url: `${base}${path(n)}` });
  }
  if (ports['RTMP']) play.push({ label: 'RTMP', url: `rtmp://${host}:${ports['RTMP']}/live/${n}` });
  if (ports['RTSP']) play.push({ label: 'RTSP', url: `rtsp://${host}:${ports['RTSP']}/${n}` });
  if (ports['TSSRT']) play.push({ label: 'SRT', url: `srt://${host}:${ports['TSSRT']}?streamid=${n}` });
  if (ports['DTSC']) play.push({ label: 'DTSC (server to server)', url: `dtsc://${host}:${ports['DTSC']}/${n}` });
  if (live) {
    const pub = n;
    if (ports['RTMP']) publish.push({ label: 'RTMP', url: `rtmp://${host}:${ports['RTMP']}/live/${pub}` });
    if (ports['TSSRT']) publish.push({ label: 'SRT', url: `srt://${host}:${ports['TSSRT']}?streamid=#!::r=${pub},m=publish` });
    if (ports['RTSP']) publish.push({ label: 'RTSP (ANNOUNCE/RECORD)', url: `rtsp://${host}:${ports['RTSP']}/${pub}` });
    if (bases[0] && has('WebRTC')) publish.push({ label: 'WebRTC (WHIP)', url: `${bases[0]}whip/${pub}` });
    if (ports['DTSC']) publish.push({ label: 'DTSC push', url: `dtsc://${host}:${ports['DTSC']}/${pub}` });
  }
  const base = bases[0] ?? '';
  const id = `haze_${name.replace(/[^A-Za-z0-9_]/g, '_')}`;
  const embed = base
    ? `<div id="${id}"></div>\n<script src="${base}player.js"></script>\n<script>mistPlay(${JSON.stringify(name)}, { target: document.getElementById(${JSON.stringify(id)}) });</script>`
    : '';
  return { play, publish, page: base ? `${base}${n}.html` : '', embed };
}
