#!/usr/bin/env bash
# Installs the programs the test suite runs against (real peers, DESIGN §7) when they are
# missing: ffmpeg/ffprobe, GStreamer, xmllint (DASH manifests), rtmpdump (RTMP play from a
# position), srt-live-transmit (srt-tools: a second SRT peer), nginx with the RTMP module (a second RTMP server to re-push to) and Chromium (the
# player tests, driven by playwright-core) from Debian. Needs root (or sudo) on Debian 12.
set -euo pipefail

need=()
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v gst-launch-1.0 >/dev/null 2>&1 || need+=(gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav)
command -v xmllint >/dev/null 2>&1 || need+=(libxml2-utils)
command -v rtmpdump >/dev/null 2>&1 || need+=(rtmpdump)
command -v srt-live-transmit >/dev/null 2>&1 || need+=(srt-tools)
command -v free >/dev/null 2>&1 || need+=(procps)
{ [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1; } || need+=(nginx-light)
[ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ] || need+=(libnginx-mod-rtmp)
[ -x /usr/bin/chromium ] || need+=(chromium)
# GStreamer's RTSP server (through python3-gi): the source of the rtsp:// pull tests
/usr/bin/python3 -c "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0')" >/dev/null 2>&1 || need+=(python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-rtsp-server-1.0)
[ ${#need[@]} -eq 0 ] && exit 0

echo "installing test dependencies: ${need[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
