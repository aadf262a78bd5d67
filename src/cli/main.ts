// The `haze` command (DESIGN §5).

import os from 'node:os';
import { errorText } from '../util/errors.js';
import { parseServeArgs } from './args.js';

const HELP = `haze: a media server (one input, every output)

Usage:
  haze serve [--data DIR] [--config FILE] [--api PORT] [--http PORT] [--rtmp PORT]
             [--rtsp PORT] [--srt PORT] [--dtsc PORT] [--webrtc PORT] [--workers N]
  haze convert IN OUT    (any of flv ts mkv webm mp4 mov m4a dtsc mp3 aac wav to dtsc flv ts mp4 mkv webm mp3 aac ogg wav)
  haze merge --append TARGET.dtsc ADD.dtsc | --mix OUT.dtsc IN.dtsc... | --defrag OUT.dtsc IN.dtsc
  haze analyse FILE|URL [--validate]
  haze balance [--port 8042] [--interface ADDR] [--data DIR] [--server HOST:APIPORT[/MiBps] ...]
               [--passphrase P] [--policy media-aware|round-robin|least-loaded] [--poll-ms 5000]
               [--fallback FULL] [--remote-config]    (the load balancer, docs/balancer.md)
  haze version
  haze help

Defaults: --data ./haze-data, API 4242 (127.0.0.1), HTTP 8080, RTMP 1935, one worker per core.
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'serve': {
      const { runAngel } = await import('../controller/angel.js');
      return runAngel(parseServeArgs(rest, Math.max(1, os.availableParallelism())));
    }
    case '__worker': {
      const { runWorker } = await import('../worker/worker-main.js');
      await runWorker(Number(rest[0]));
      return -1;
    }
    case '__controller': {
      const { runController } = await import('../controller/controller-main.js');
      await runController();
      return -1;
    }
    case 'version':
    case '--version': {
      const { HAZE_VERSION } = await import('../util/version.js');
      console.log(`haze ${HAZE_VERSION}`);
      return 0;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return 0;
    case 'convert': {
      const { runConvert } = await import('./convert.js');
      return runConvert(rest);
    }
    case 'merge': {
      const { runMerge } = await import('./merge.js');
      return runMerge(rest);
    }
    case 'analyse':
    case 'analyze': {
      const { runAnalyse } = await import('./analyse.js');
      return runAnalyse(rest);
    }
    case 'balance': {
      const { parseBalanceArgs } = await import('./balance.js');
      const { runBalancer } = await import('../balancer/balancer-main.js');
      return runBalancer(parseBalanceArgs(rest));
    }
    default:
      console.error(`haze: unknown command ${cmd}\n\n${HELP}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`haze: ${errorText(err)}`);
    process.exitCode = 1;
  },
);
