// A child process's stderr as lines, bounded: a line longer than `maxChars` is cut there (the
// rest up to its newline is dropped), so a process that writes without newlines cannot grow the
// buffer. \r also ends a line (ffmpeg's progress lines rewrite themselves with \r). Pure.

export const MAX_LINE_CHARS = 500;

export class LineSplitter {
  private partial = '';
  /** Inside a line already cut at maxChars: characters are dropped until its end. */
  private skipping = false;

  constructor(private readonly maxChars = MAX_LINE_CHARS) {}

  /** The lines completed by `chunk` (empty lines left out). */
  push(chunk: Buffer | string): string[] {
    const text = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    const lines: string[] = [];
    let start = 0;
    for (let i = 0; i <= text.length; i++) {
      const end = i === text.length;
      const c = end ? '' : text[i];
      if (!end && c !== '\n' && c !== '\r') continue;
      const piece = text.slice(start, i);
      start = i + 1;
      if (end) {
        this.add(piece, lines, false);
        break;
      }
      this.add(piece, lines, true);
    }
    return lines;
  }

  /** The last unfinished line, if any (the process ended). */
  flush(): string[] {
    const rest = this.partial.trim();
    this.partial = '';
    this.skipping = false;
    return rest ? [rest] : [];
  }

  private add(piece: string, lines: string[], complete: boolean): void {
    if (!this.skipping) {
      const room = this.maxChars - this.partial.length;
      if (piece.length > room) {
        lines.push(this.partial + piece.slice(0, room) + '…');
        this.partial = '';
        this.skipping = !complete;
      } else {
        this.partial += piece;
        if (complete) {
          const line = this.partial.trim();
          if (line) lines.push(line);
          this.partial = '';
        }
      }
    } else if (complete) {
      this.skipping = false;
    }
  }
}
