// Errors with stable codes (STYLE "Errors with stable codes"): every HazeError carries a
// HAZE_ERR_* code documented in ERROR_CODES, an HTTP status where one applies, and whether
// the error ends the session it happened in.

export const ERROR_CODES = {
  HAZE_ERR_SHORT_READ: 'a parser needed more bytes than the buffer holds',
  HAZE_ERR_MALFORMED: 'bytes that do not follow the format being parsed',
  HAZE_ERR_TOO_LARGE: 'a size field or buffer beyond the configured bound',
  HAZE_ERR_UNSUPPORTED: 'a valid but unsupported codec, feature or message',
  HAZE_ERR_PROTOCOL: 'a peer broke the protocol state machine',
  HAZE_ERR_NOT_FOUND: 'an unknown stream, file or resource',
  HAZE_ERR_OFFLINE: 'a configured stream that is not online',
  HAZE_ERR_REFUSED: 'a push or play refused by the stream configuration',
  HAZE_ERR_BUSY: 'a stream that already has a publisher',
  HAZE_ERR_AUTH: 'missing or wrong credentials',
  HAZE_ERR_INVALID_ARG: 'an invalid command-line flag, API argument or config value',
  HAZE_ERR_TIMEOUT: 'a peer or process that did not answer in time',
  HAZE_ERR_SLOW_READER: 'a viewer that fell further behind than the live bound',
  HAZE_ERR_CLOSED: 'an operation on a closed session or socket',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class HazeError extends Error {
  readonly code: ErrorCode;
  readonly status: number | undefined;
  readonly fatal: boolean;

  constructor(code: ErrorCode, message: string, opts: { status?: number; fatal?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'HazeError';
    this.code = code;
    this.status = opts.status;
    this.fatal = opts.fatal ?? true;
  }
}

export function isHazeError(err: unknown): err is HazeError {
  return err instanceof HazeError;
}

/** A short string for a log line, whatever was thrown. */
export function errorText(err: unknown): string {
  if (err instanceof HazeError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}
