// Splitting a command line into arguments the way a POSIX shell does for plain words, as
// MistServer's Util::shellSplit does for a process's `exec` and `flags` (reference §5.6): blanks
// separate words; 'single quotes' keep everything literally; "double quotes" keep everything but
// a backslash before " \ $ or `; a backslash outside quotes keeps the next character. No
// expansion, globbing, pipes or redirections: the command runs without a shell.

import { HazeError } from '../util/errors.js';

/** Longest command line taken (a config value, not a script). */
export const MAX_COMMAND_CHARS = 16 * 1024;
/** Most arguments one command may have. */
export const MAX_ARGUMENTS = 1024;

export function shellSplit(command: string): string[] {
  if (command.length > MAX_COMMAND_CHARS) throw new HazeError('HAZE_ERR_TOO_LARGE', `command is ${command.length} characters, at most ${MAX_COMMAND_CHARS}`);
  const args: string[] = [];
  let word = '';
  // a word exists once any character or quote of it is seen ('' is an empty argument)
  let inWord = false;
  let i = 0;
  const push = (): void => {
    if (!inWord) return;
    if (args.length >= MAX_ARGUMENTS) throw new HazeError('HAZE_ERR_TOO_LARGE', `command has more than ${MAX_ARGUMENTS} arguments`);
    args.push(word);
    word = '';
    inWord = false;
  };
  while (i < command.length) {
    const c = command[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      push();
      i++;
    } else if (c === "'") {
      const end = command.indexOf("'", i + 1);
      if (end < 0) throw new HazeError('HAZE_ERR_MALFORMED', `unterminated ' at character ${i} of the command`);
      word += command.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      inWord = true;
      let j = i + 1;
      for (;;) {
        if (j >= command.length) throw new HazeError('HAZE_ERR_MALFORMED', `unterminated " at character ${i} of the command`);
        const d = command[j]!;
        if (d === '"') break;
        if (d === '\\' && j + 1 < command.length && '"\\$`'.includes(command[j + 1]!)) {
          word += command[j + 1];
          j += 2;
        } else {
          word += d;
          j++;
        }
      }
      i = j + 1;
    } else if (c === '\\') {
      inWord = true;
      // a trailing backslash stands for itself
      word += i + 1 < command.length ? command[i + 1] : '\\';
      i += 2;
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  push();
  return args;
}
