#!/usr/bin/env bash
# Haze fan-out benchmark (and churn soak) against nginx-rtmp and node-media-server.
#   npm run bench                 fan-out, N=100,500,1000,2000, 20 s per step
#   BENCH_QUICK=1 npm run bench   N=50,200, 8 s per step (checks the harness, ~3 min)
#   npm run bench -- churn        churn soak against Haze (BENCH_CHURN_SECONDS, default 600)
#   npm run bench -- hls          HLS / LL-HLS fan-out, Haze vs nginx-rtmp, N=100,500,1000 (~5.5 min)
#   BENCH_QUICK=1 npm run bench -- hls   N=50,200, 8 s per step (~3 min)
#   npm run bench -- latency      latency behind the live edge in headless Chromium (~4 min)
#   npm run bench -- vod          conversion throughput on ~1 GB vs ffmpeg, VoD time to first
#                                 byte, memory of 200 VoD viewers (~5 min)
#   npm run bench -- glass        glass-to-glass latency per protocol (SEI-stamped frames), Haze vs
#                                 nginx-rtmp / an ffmpeg relay (~5 min)
#   npm run bench -- webrtc-viewers   WHEP viewers per core of a 2 Mbit/s H.264 stream
#   npm run bench -- stats        cost of the statistics with 1,000 sessions: controller CPU and
#                                 memory per session, workers' memory, API latency (~2 min)
# Other settings: see the head of bench/fanout.ts, bench/churn.ts, bench/hls.ts and bench/stats.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE="${1:-${BENCH_MODE:-fanout}}"

# Thousands of sockets in one process.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "bench: open files limit $(ulimit -n)"

# Build when a bench or source file is newer than its output.
if [ ! -f dist/bench/fanout.js ] || [ -n "$(find src bench -name '*.ts' -newer dist/bench/fanout.js -print -quit)" ]; then
  echo "bench: building"
  # tsc exits non-zero on type errors elsewhere in the tree but still emits; the checks below
  # catch a missing output.
  mkdir -p bench/.cache
  npx tsc -p tsconfig.json >"$ROOT/bench/.cache/tsc.log" 2>&1 || echo "bench: tsc reported errors (see bench/.cache/tsc.log), continuing with what it emitted"
fi
for f in dist/bench/stats.js dist/bench/vod.js dist/bench/fanout.js dist/bench/churn.js dist/bench/hls.js dist/bench/latency.js dist/bench/glass-latency.js dist/bench/webrtc-viewers.js dist/bench/lib/whep-loadgen.js dist/bench/lib/publisher.js dist/bench/lib/loadgen.js dist/bench/lib/hls-loadgen.js; do
  [ -f "$f" ] || { echo "bench: $f missing after build" >&2; exit 1; }
done
[ "$MODE" = balancer ] && exec node dist/bench/balancer-decisions.js  # in process: no peers, no source (bench/results/balancer.md)

# Peers. nginx with the RTMP module from Debian.
if [ "$MODE" != vod ] && [ "$MODE" != stats ] && { [ ! -f /usr/lib/nginx/modules/ngx_rtmp_module.so ] || ! command -v nginx >/dev/null; }; then
  echo "bench: installing nginx-light and libnginx-mod-rtmp"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nginx-light libnginx-mod-rtmp >/dev/null
fi
# node-media-server from npm into bench/.peers (not committed), current major version 4 (the HLS
# mode does not use it).
if [ "$MODE" != hls ] && [ "$MODE" != latency ] && [ "$MODE" != glass ] && [ "$MODE" != webrtc-viewers ] && [ "$MODE" != vod ] && [ "$MODE" != stats ] && [ ! -f bench/.peers/node_modules/node-media-server/bin/app.js ]; then
  echo "bench: installing node-media-server@4 into bench/.peers"
  mkdir -p bench/.peers
  [ -f bench/.peers/package.json ] || echo '{ "name": "haze-bench-peers", "private": true }' >bench/.peers/package.json
  (cd bench/.peers && npm install --no-audit --no-fund --loglevel=error node-media-server@4)
fi
command -v ffmpeg >/dev/null || { echo "bench: ffmpeg is needed to make the source" >&2; exit 1; }

case "$MODE" in
  churn) exec node dist/bench/churn.js ;;
  hls) exec node dist/bench/hls.js ;;
  latency) bash scripts/install-test-deps.sh; exec node dist/bench/latency.js ;;
  glass) bash scripts/install-test-deps.sh; exec node dist/bench/glass-latency.js ;;
  webrtc-viewers) bash scripts/install-test-deps.sh; exec node dist/bench/webrtc-viewers.js ;;
  vod) exec node dist/bench/vod.js ;;
  stats) exec node dist/bench/stats.js ;;
  fanout|"") node dist/bench/fanout.js ;;
  *) echo "bench: unknown mode '$MODE' (fanout, churn, hls, latency, glass, webrtc-viewers, vod or stats)" >&2; exit 2 ;;
esac
