// The escape sequences of an interactive console, as QEMU's -serial stdio has them: Ctrl-A then
// a key. Pure: bytes in, bytes for the guest and commands for the VMM out.

export const ESCAPE = 0x01; // Ctrl-A

export type ConsoleCommand = 'quit' | 'help';

export interface EscapeResult {
  /** Bytes that go to the guest. */
  forward: Uint8Array;
  commands: ConsoleCommand[];
}

export class ConsoleEscape {
  #pendingEscape = false;

  feed(input: Uint8Array): EscapeResult {
    const forward: number[] = [];
    const commands: ConsoleCommand[] = [];
    for (const byte of input) {
      if (!this.#pendingEscape) {
        if (byte === ESCAPE) this.#pendingEscape = true;
        else forward.push(byte);
        continue;
      }
      this.#pendingEscape = false;
      switch (String.fromCharCode(byte).toLowerCase()) {
        case 'x':
          commands.push('quit');
          break;
        case 'h':
        case '?':
          commands.push('help');
          break;
        case '\x01':
          forward.push(ESCAPE); // Ctrl-A Ctrl-A sends one Ctrl-A
          break;
        default:
          break; // unknown escapes are swallowed, as in QEMU
      }
    }
    return { forward: Uint8Array.from(forward), commands };
  }
}

/** The keys' help; `quit` says what C-a x does where it is shown. */
export function escapeHelp(quit = 'quit tsvmm (stops the guest)'): string {
  return [
    `C-a x    ${quit}`,
    'C-a h    this help',
    'C-a C-a  send C-a to the guest',
  ].join('\r\n');
}

export const ESCAPE_HELP = escapeHelp();
