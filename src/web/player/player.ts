// Haze's embeddable meta-player, served as `/player.js` (reference/mistserver.md §6.6, after
// MistServer's embed/player.js): it reads `json_NAME.js`, walks the stream's sources in the
// server's order and, for each, the playback wrappers in priority order, and plays the first
// combination this browser supports. A wrapper that fails hands over to the next combination;
// an offline stream shows a message and starts by itself once the stream is online.
//
// A plain browser script (no modules, no imports): compiled by src/web/player/tsconfig.json with
// the DOM library. The playback libraries (hls.js, dash.js, mpegts.js) are npm packages that
// Haze serves from `player/` next to this script, loaded only when a wrapper needs one.
//
//   mistPlay('NAME', { target: element, forcePlayer, forceType, forceSource, muted, autoplay })
//
// The state is mirrored on the target element (`data-haze-state`, `data-haze-player`,
// `data-haze-source`) and in `window.hazePlayers[NAME]`, for pages and tests to read.

interface HazeSource {
  type: string;
  url: string;
  priority: number;
  simul_tracks: number;
}

interface HazeTrackInfo {
  type: string;
  codec: string;
  codecstring?: string;
  idx: number;
}

interface HazeStreamInfo {
  error?: string;
  type?: 'live' | 'vod';
  width?: number;
  height?: number;
  source?: HazeSource[];
  meta?: { tracks?: Record<string, HazeTrackInfo> };
}

interface HazePlayOptions {
  /** The element to play in (or its id); default: a new element after the current script. */
  target?: HTMLElement | string;
  /** Base URL of Haze's HTTP port; default: where this script was loaded from. */
  host?: string;
  /** Only this wrapper: `html5`, `hlsjs`, `dashjs`, `mse`, `mpegts`. */
  forcePlayer?: string;
  /** Only sources of this type (`html5/application/vnd.apple.mpegurl`, `dash/video/mp4` ...). */
  forceType?: string;
  /** Only the source at this index of the stream info's list. */
  forceSource?: number;
  autoplay?: boolean;
  muted?: boolean;
  controls?: boolean;
}

type HazeState = 'loading' | 'offline' | 'playing' | 'error';

/** One running playback of one source by one wrapper. */
interface Playback {
  destroy(): void;
  /** Seconds behind the live edge as the library estimates it, when it does. */
  latencyS?(): number | undefined;
  /** Seconds since the frame on screen reached the server, from the server's clock in the manifest. */
  behindIngestS?(): number | undefined;
}

interface StartContext {
  video: HTMLVideoElement;
  source: HazeSource;
  info: HazeStreamInfo;
  base: string;
  /** The wrapper gave up: the player moves on to the next combination. */
  fail(reason: string): void;
}

interface Wrapper {
  name: string;
  /** Whether this wrapper can play `source` in this browser. */
  supports(source: HazeSource, info: HazeStreamInfo, video: HTMLVideoElement): boolean;
  start(ctx: StartContext): Promise<Playback>;
}

interface HazePlayerHandle {
  readonly name: string;
  state: HazeState;
  player: string | undefined;
  source: HazeSource | undefined;
  video: HTMLVideoElement;
  /** Every failure so far, newest last (bounded). */
  errors: string[];
  latencyS(): number | undefined;
  behindIngestS(): number | undefined;
  destroy(): void;
}

interface Window {
  mistPlay: (name: string, opts?: HazePlayOptions) => HazePlayerHandle;
  hazePlay: (name: string, opts?: HazePlayOptions) => HazePlayerHandle;
  hazePlayers: Record<string, HazePlayerHandle>;
  hazeOptionsFromQuery: (search: string) => HazePlayOptions;
  // globals of the playback libraries, once loaded
  Hls?: any;
  dashjs?: any;
  mpegts?: any;
}

(function () {
  /** Where this script came from: the stream info and the libraries are next to it. */
  const scriptBase = ((): string => {
    const src = (document.currentScript as HTMLScriptElement | null)?.src;
    return src ? src.slice(0, src.lastIndexOf('/') + 1) : `${location.origin}/`;
  })();

  const OFFLINE_RETRY_MS = [1000, 2000, 3000, 5000];
  /** Playing but the picture has not moved for this long: try the next combination. */
  const STALL_MS = 15_000;
  const MAX_ERRORS = 50;

  const scripts = new Map<string, Promise<void>>();
  function loadScript(url: string): Promise<void> {
    let p = scripts.get(url);
    if (!p) {
      p = new Promise<void>((resolve, reject) => {
        const s = document.createElement('script');
        s.src = url;
        s.async = true;
        s.onload = () => resolve();
        s.onerror = () => {
          scripts.delete(url);
          reject(new Error(`could not load ${url}`));
        };
        document.head.appendChild(s);
      });
      scripts.set(url, p);
    }
    return p;
  }

  const isHls = (type: string): boolean => type.startsWith('html5/application/vnd.apple.mpegurl');
  const hasMse = (): boolean => typeof window.MediaSource === 'function';

  function tracksOf(info: HazeStreamInfo): HazeTrackInfo[] {
    return Object.values(info.meta?.tracks ?? {}).sort((a, b) => a.idx - b.idx);
  }

  /** The first video and first audio track MSE can take as fMP4, with the codecs string it needs. */
  function mseTracks(info: HazeStreamInfo): { video?: HazeTrackInfo; audio?: HazeTrackInfo; mime: string } | undefined {
    let video: HazeTrackInfo | undefined;
    let audio: HazeTrackInfo | undefined;
    for (const t of tracksOf(info)) {
      if (!t.codecstring) continue;
      const kind = t.type === 'video' ? 'video' : t.type === 'audio' ? 'audio' : undefined;
      if (!kind || !MediaSource.isTypeSupported(`${kind}/mp4; codecs="${t.codecstring}"`)) continue;
      if (kind === 'video') video ??= t;
      else audio ??= t;
    }
    if (!video && !audio) return undefined;
    const codecs = [video?.codecstring, audio?.codecstring].filter(Boolean).join(',');
    const mime = `${video ? 'video' : 'audio'}/mp4; codecs="${codecs}"`;
    return MediaSource.isTypeSupported(mime) ? { video, audio, mime } : undefined;
  }

  function withQuery(url: string, query: string): string {
    return url + (url.includes('?') ? '&' : '?') + query;
  }

  // --- wrappers, in MistServer's default priority order (html5, hlsjs, dashjs, then MSE and FLV/TS) ---

  const html5: Wrapper = {
    name: 'html5',
    supports(source, _info, video) {
      if (isHls(source.type)) return video.canPlayType('application/vnd.apple.mpegurl') !== '';
      const m = /^html5\/((?:video|audio)\/[a-z0-9.+-]+)$/.exec(source.type);
      if (!m) return false;
      // With MSE the mse wrapper keeps live MP4 at the live edge; native MP4 is for browsers without it.
      if (m[1] === 'video/mp4' && hasMse()) return false;
      return video.canPlayType(m[1]!) !== '';
    },
    async start({ video, source, fail }) {
      const onError = (): void => fail(`native playback error ${video.error?.code ?? ''} ${video.error?.message ?? ''}`.trim());
      video.addEventListener('error', onError);
      video.src = source.url;
      return {
        destroy() {
          video.removeEventListener('error', onError);
          video.removeAttribute('src');
          video.load();
        },
      };
    },
  };

  const hlsjs: Wrapper = {
    name: 'hlsjs',
    supports: (source) => isHls(source.type) && hasMse(),
    async start({ video, source, base, fail }) {
      await loadScript(`${base}player/hls.js`);
      const Hls = window.Hls;
      if (!Hls?.isSupported()) throw new Error('hls.js is not supported in this browser');
      // CMAF (version 7) playlists carry LL-HLS parts and blocking reloads.
      const lowLatency = source.type.includes('version=7');
      // Catch up (up to 1.5x) when behind the target latency rather than drifting further back.
      const hls = new Hls({ lowLatencyMode: lowLatency, backBufferLength: 30, maxLiveSyncPlaybackRate: 1.5 });
      hls.on(Hls.Events.ERROR, (_event: unknown, data: { fatal?: boolean; type?: string; details?: string }) => {
        if (data.fatal) fail(`hls.js: ${data.type ?? ''} ${data.details ?? ''}`.trim());
      });
      hls.loadSource(source.url);
      hls.attachMedia(video);
      return {
        destroy: () => hls.destroy(),
        latencyS: () => (Number.isFinite(hls.latency) ? hls.latency : undefined),
        behindIngestS: () => {
          const date = hls.playingDate as Date | null;
          return date ? (Date.now() - date.getTime()) / 1000 : undefined;
        },
      };
    },
  };

  const dashjs: Wrapper = {
    name: 'dashjs',
    supports: (source) => source.type === 'dash/video/mp4' && hasMse(),
    async start({ video, source, base, fail }) {
      await loadScript(`${base}player/dash.js`);
      const lib = window.dashjs;
      if (!lib?.MediaPlayer) throw new Error('dash.js did not load');
      const player = lib.MediaPlayer().create();
      player.updateSettings({ streaming: { delay: { liveDelay: 3 }, liveCatchup: { enabled: true } } });
      player.on('error', (e: { error?: { code?: number; message?: string } }) => fail(`dash.js: ${e.error?.code ?? ''} ${e.error?.message ?? ''}`.trim()));
      player.on('playbackError', (e: { error?: { message?: string } }) => fail(`dash.js playback: ${e.error?.message ?? ''}`));
      player.initialize(video, source.url, false);
      // dash.js measures from availabilityStartTime with the server's clock (UTCTiming)
      const liveLatency = (): number | undefined => {
        const l = player.getCurrentLiveLatency();
        return Number.isFinite(l) && l > 0 ? l : undefined;
      };
      return { destroy: () => player.destroy(), latencyS: liveLatency, behindIngestS: liveLatency };
    },
  };

  /**
   * Progressive fMP4 over fetch into Media Source Extensions: the live MP4 output's bytes are
   * appended as they arrive (MSE parses boxes split across appends), and the playhead is kept
   * near the newest frame by seeking or speeding up a little.
   */
  const mse: Wrapper = {
    name: 'mse',
    supports: (source, info) => source.type === 'html5/video/mp4' && hasMse() && mseTracks(info) !== undefined,
    async start({ video, source, info, fail }) {
      const picked = mseTracks(info)!;
      const url = withQuery(source.url, `video=${picked.video ? picked.video.idx : 'none'}&audio=${picked.audio ? picked.audio.idx : 'none'}`);
      const media = new MediaSource();
      const objectUrl = URL.createObjectURL(media);
      const abort = new AbortController();
      let stopped = false;
      const stop = (): void => {
        stopped = true;
        abort.abort();
      };
      video.src = objectUrl;
      await new Promise<void>((resolve) => media.addEventListener('sourceopen', () => resolve(), { once: true }));
      const buffer = media.addSourceBuffer(picked.mime);
      const queue: Uint8Array<ArrayBuffer>[] = [];
      let queuedBytes = 0;
      let started = false;
      const MAX_QUEUED_BYTES = 16 * 1024 * 1024;

      const keepLive = (): void => {
        const ranges = video.buffered;
        if (ranges.length === 0) return;
        const end = ranges.end(ranges.length - 1);
        if (!started) {
          started = true;
          video.currentTime = ranges.start(0);
          return;
        }
        const behind = end - video.currentTime;
        if (behind > 3) video.currentTime = Math.max(ranges.start(ranges.length - 1), end - 0.5);
        else video.playbackRate = behind > 1 ? 1.1 : 1;
        // bounded memory: drop what is well behind the playhead
        const start = ranges.start(0);
        if (!buffer.updating && queue.length === 0 && video.currentTime - start > 30) buffer.remove(start, video.currentTime - 10);
      };
      const pump = (): void => {
        if (stopped || buffer.updating || queue.length === 0) return;
        const chunk = queue.shift()!;
        queuedBytes -= chunk.byteLength;
        try {
          buffer.appendBuffer(chunk);
        } catch (err) {
          stop();
          fail(`MSE append failed: ${(err as Error).message}`);
        }
      };
      buffer.addEventListener('updateend', () => {
        keepLive();
        pump();
      });
      buffer.addEventListener('error', () => fail('MSE source buffer error'));

      void (async () => {
        try {
          const response = await fetch(url, { signal: abort.signal });
          if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
          const reader = response.body.getReader();
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            queue.push(value);
            queuedBytes += value.byteLength;
            if (queuedBytes > MAX_QUEUED_BYTES) throw new Error('the browser does not keep up with the stream');
            pump();
          }
          if (!stopped) fail('the stream ended');
        } catch (err) {
          if (!stopped) fail(`MP4 download: ${(err as Error).message}`);
        }
      })();
      return {
        destroy() {
          stop();
          video.removeAttribute('src');
          video.load();
          URL.revokeObjectURL(objectUrl);
        },
        latencyS: () => (video.buffered.length > 0 ? video.buffered.end(video.buffered.length - 1) - video.currentTime : undefined),
      };
    },
  };

  const mpegtsjs: Wrapper = {
    name: 'mpegts',
    supports: (source) => (source.type === 'flash/7' || source.type === 'html5/video/mpeg') && hasMse(),
    async start({ video, source, base, fail }) {
      await loadScript(`${base}player/mpegts.js`);
      const lib = window.mpegts;
      if (!lib?.isSupported()) throw new Error('mpegts.js is not supported in this browser');
      const player = lib.createPlayer(
        { type: source.type === 'flash/7' ? 'flv' : 'mpegts', isLive: true, url: source.url },
        { enableStashBuffer: false, liveBufferLatencyChasing: true, liveBufferLatencyMaxLatency: 1.5, liveBufferLatencyMinRemain: 0.3 },
      );
      player.on(lib.Events.ERROR, (type: string, detail: string) => fail(`mpegts.js: ${type} ${detail}`));
      player.attachMediaElement(video);
      player.load();
      return {
        destroy: () => player.destroy(),
      };
    },
  };

  const WRAPPERS: readonly Wrapper[] = [html5, hlsjs, dashjs, mse, mpegtsjs];

  function element(target: HazePlayOptions['target']): HTMLElement {
    if (target instanceof HTMLElement) return target;
    if (typeof target === 'string') {
      const el = document.getElementById(target);
      if (el) return el;
    }
    const el = document.createElement('div');
    const script = document.currentScript;
    if (script?.parentNode) script.parentNode.insertBefore(el, script.nextSibling);
    else document.body.appendChild(el);
    return el;
  }

  function play(name: string, opts: HazePlayOptions = {}): HazePlayerHandle {
    const base = opts.host ? (opts.host.endsWith('/') ? opts.host : `${opts.host}/`) : scriptBase;
    const root = element(opts.target);
    root.classList.add('haze-player');
    root.style.position ||= 'relative';
    const video = document.createElement('video');
    video.controls = opts.controls ?? true;
    video.playsInline = true;
    video.muted = opts.muted ?? false;
    video.autoplay = opts.autoplay !== false;
    video.style.cssText = 'width:100%;height:100%;background:#000;display:block';
    const message = document.createElement('div');
    message.setAttribute('role', 'status');
    message.style.cssText =
      'position:absolute;inset:0;display:none;align-items:center;justify-content:center;text-align:center;padding:1em;color:#eee;background:rgba(0,0,0,.75);font:16px/1.4 sans-serif';
    root.replaceChildren(video, message);

    let playback: Playback | undefined;
    let destroyed = false;
    let attempt = 0;
    let retryTimer: number | undefined;
    let stallTimer: number | undefined;
    let offlineRetries = 0;
    const failed = new Set<string>();

    const handle: HazePlayerHandle = {
      name,
      state: 'loading',
      player: undefined,
      source: undefined,
      video,
      errors: [],
      latencyS: () => playback?.latencyS?.(),
      behindIngestS: () => playback?.behindIngestS?.(),
      destroy() {
        destroyed = true;
        clearTimeout(retryTimer);
        clearInterval(stallTimer);
        playback?.destroy();
        playback = undefined;
        root.replaceChildren();
        if (window.hazePlayers[name] === handle) delete window.hazePlayers[name];
      },
    };
    window.hazePlayers[name] = handle;

    const setState = (state: HazeState, text?: string): void => {
      handle.state = state;
      root.dataset['hazeState'] = state;
      message.textContent = text ?? '';
      message.style.display = text ? 'flex' : 'none';
    };
    const note = (reason: string): void => {
      handle.errors.push(reason);
      if (handle.errors.length > MAX_ERRORS) handle.errors.shift();
      console.warn(`[haze player ${name}] ${reason}`);
    };
    /** Undo what a started combination attached to the element. */
    const cleanups: Array<() => void> = [];
    const stopPlayback = (): void => {
      clearInterval(stallTimer);
      for (const fn of cleanups.splice(0)) fn();
      playback?.destroy();
      playback = undefined;
    };
    const retryLater = (ms: number): void => {
      clearTimeout(retryTimer);
      retryTimer = window.setTimeout(() => void load(), ms);
    };

    /** The combinations to try, best first (§6.6: sources in server order, then wrappers). */
    function combos(info: HazeStreamInfo): Array<{ source: HazeSource; wrapper: Wrapper }> {
      const list: Array<{ source: HazeSource; wrapper: Wrapper }> = [];
      (info.source ?? []).forEach((source, i) => {
        if (opts.forceSource !== undefined && opts.forceSource !== i) return;
        if (opts.forceType && source.type !== opts.forceType && !source.type.startsWith(`${opts.forceType};`)) return;
        for (const wrapper of WRAPPERS) {
          if (opts.forcePlayer && wrapper.name !== opts.forcePlayer) continue;
          if (wrapper.supports(source, info, video)) list.push({ source, wrapper });
        }
      });
      return list;
    }

    async function load(): Promise<void> {
      if (destroyed) return;
      const mine = ++attempt;
      let info: HazeStreamInfo;
      try {
        const response = await fetch(`${base}json_${encodeURIComponent(name)}.js`, { cache: 'no-store' });
        info = (await response.json()) as HazeStreamInfo;
      } catch (err) {
        info = { error: `Cannot reach the media server (${(err as Error).message})` };
      }
      if (destroyed || mine !== attempt) return;
      if (info.error) {
        stopPlayback();
        setState('offline', `${info.error}. Playback starts as soon as the stream is online.`);
        retryLater(OFFLINE_RETRY_MS[Math.min(offlineRetries++, OFFLINE_RETRY_MS.length - 1)]!);
        return;
      }
      offlineRetries = 0;
      const next = combos(info).find((c) => !failed.has(`${c.wrapper.name} ${c.source.url}`));
      if (!next) {
        failed.clear();
        setState('error', opts.forcePlayer || opts.forceType ? 'This browser cannot play the forced player or type.' : 'No way to play this stream in this browser was found; retrying.');
        retryLater(5000);
        return;
      }
      await startCombo(next.source, next.wrapper, info, mine);
    }

    async function startCombo(source: HazeSource, wrapper: Wrapper, info: HazeStreamInfo, mine: number): Promise<void> {
      stopPlayback();
      const key = `${wrapper.name} ${source.url}`;
      handle.player = wrapper.name;
      handle.source = source;
      root.dataset['hazePlayer'] = wrapper.name;
      root.dataset['hazeSource'] = source.type;
      setState('loading');
      let gaveUp = false;
      const fail = (reason: string): void => {
        if (gaveUp || destroyed || mine !== attempt) return;
        gaveUp = true;
        note(`${key}: ${reason}`);
        failed.add(key);
        stopPlayback();
        // The stream may have gone offline: the stream info tells, then the next combination.
        void load();
      };
      try {
        playback = await wrapper.start({ video, source, info, base, fail });
      } catch (err) {
        fail((err as Error).message);
        return;
      }
      if (destroyed || mine !== attempt) {
        playback.destroy();
        return;
      }
      // Autoplay through the element once the wrapper's media is attached (dash.js, for one,
      // refreshes a live MPD only after it saw the element's `play` event). Browsers only
      // autoplay muted video without a user gesture: fall back to muted.
      const autoplay = (): void => {
        if (!video.paused || opts.autoplay === false) return;
        video.play().catch((err: DOMException) => {
          if (err.name === 'NotAllowedError' && !video.muted) {
            video.muted = true;
            void video.play().catch(() => undefined);
          }
        });
      };
      video.addEventListener('canplay', autoplay);
      cleanups.push(() => video.removeEventListener('canplay', autoplay));
      let lastTime = -1;
      let lastMove = Date.now();
      stallTimer = window.setInterval(() => {
        if (video.currentTime !== lastTime || video.paused) {
          if (video.currentTime !== lastTime && video.currentTime > 0) {
            failed.clear();
            if (handle.state !== 'playing') setState('playing');
          }
          lastTime = video.currentTime;
          lastMove = Date.now();
        } else if (Date.now() - lastMove > STALL_MS) fail(`no progress for ${STALL_MS / 1000} s`);
      }, 500);
    }

    setState('loading');
    void load();
    return handle;
  }

  /** `NAME.html` query variables (reference §6.6): forcePlayer, forceType, forceSource, muted, autoplay. */
  function optionsFromQuery(search: string): HazePlayOptions {
    const q = new URLSearchParams(search);
    const get = (...names: string[]): string | undefined => names.map((n) => q.get(n)).find((v) => v !== null) ?? undefined;
    const opts: HazePlayOptions = {};
    const player = get('forcePlayer', 'forceplayer');
    if (player) opts.forcePlayer = player;
    const type = get('forceType', 'forcetype');
    if (type) opts.forceType = type;
    const source = get('forceSource', 'forcesource');
    if (source !== undefined && /^\d+$/.test(source)) opts.forceSource = Number(source);
    const muted = get('muted');
    if (muted !== undefined) opts.muted = muted !== '0' && muted !== 'false';
    const autoplay = get('autoplay');
    if (autoplay !== undefined) opts.autoplay = autoplay !== '0' && autoplay !== 'false';
    return opts;
  }

  window.hazePlayers ??= {};
  window.mistPlay = play;
  window.hazePlay = play;
  window.hazeOptionsFromQuery = optionsFromQuery;
})();
