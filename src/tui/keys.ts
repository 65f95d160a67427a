// What each key does, in each mode of the dashboard. Pure: blessed's key events in, decisions out.

/**
 * A key as blessed reports it (the second argument of 'keypress'). blessed reports Enter (\r)
 * twice, as 'enter' and as 'return'; only 'enter' counts here, so one Enter acts once.
 */
export interface Key {
  name?: string;
  ch?: string;
  full?: string;
  sequence?: string;
  ctrl?: boolean;
  shift?: boolean;
}

export type ListAction =
  | 'up' | 'down' | 'boot-default' | 'boot-form' | 'container' | 'pause-resume' | 'snapshot' | 'restore'
  | 'stop' | 'console' | 'side-by-side' | 'mark' | 'help' | 'quit';

/** The list's keys, for the help screen and the README. */
export const KEY_HELP: ReadonlyArray<readonly [string, string]> = [
  ['Up/Down, j/k, mouse', 'select a VM or container'],
  ['buttons (mouse)', 'the row at the bottom: a click does what its key does'],
  ['b', 'boot the demo guest (guests/build/hello.elf)'],
  ['B', 'boot from a form: kernel, initrd, memory, vCPUs'],
  ['c', 'start a container from a form: rootfs, command'],
  ['p', 'pause or resume the selected one'],
  ['s', 'snapshot the selected VM to a file, with progress'],
  ['r', 'restore a VM from a snapshot file'],
  ['x, d', 'stop the selected one (asks first)'],
  ['Enter', 'type into the console; Ctrl-A X or Esc leaves it'],
  ['v', 'side by side: a VM and a container, or the two marked'],
  ['Space', 'mark or unmark one for the side-by-side view'],
  ['?', 'this help'],
  ['q, Ctrl-C', 'quit (VMs and containers keep running)'],
];

/**
 * The button row under the console: a click does what the key in brackets does (the same
 * ListAction), so the mouse and the keys cannot drift apart.
 */
export const BUTTONS: ReadonlyArray<{ label: string; key: string; action: ListAction }> = [
  { label: 'boot', key: 'b', action: 'boot-default' },
  { label: 'container', key: 'c', action: 'container' },
  { label: 'pause/resume', key: 'p', action: 'pause-resume' },
  { label: 'snapshot', key: 's', action: 'snapshot' },
  { label: 'restore', key: 'r', action: 'restore' },
  { label: 'stop', key: 'x', action: 'stop' },
  { label: 'console', key: 'Enter', action: 'console' },
  { label: 'side by side', key: 'v', action: 'side-by-side' },
  { label: 'help', key: '?', action: 'help' },
];

/** A button's text, e.g. "[b boot]". */
export const buttonText = (b: { label: string; key: string }): string => `[${b.key} ${b.label}]`;

export function listAction(key: Key): ListAction | undefined {
  const name = key.name ?? '';
  if (key.ctrl && name === 'c') return 'quit';
  if (key.ctrl) return undefined;
  switch (name) {
    case 'up': return 'up';
    case 'down': return 'down';
    case 'enter': return 'console';
    case 'space': return 'mark';
    default: break;
  }
  switch (key.ch) {
    case 'k': return 'up';
    case 'j': return 'down';
    case 'b': return 'boot-default';
    case 'B': return 'boot-form';
    case 'c': return 'container';
    case 'p': return 'pause-resume';
    case 's': return 'snapshot';
    case 'r': return 'restore';
    case 'x': case 'd': return 'stop';
    case 'v': return 'side-by-side';
    case ' ': return 'mark';
    case '?': return 'help';
    case 'q': return 'quit';
    default: return undefined;
  }
}

/**
 * The console pane while it has the keyboard: keys go to the guest as the bytes the terminal
 * sent, except Esc and Ctrl-A X, which leave; Ctrl-A Ctrl-A sends one Ctrl-A.
 */
export class ConsoleKeys {
  #afterCtrlA = false;

  feed(key: Key): { forward?: string; leave?: boolean } {
    if (key.name === 'return') return {};
    const sequence = key.sequence ?? key.ch ?? '';
    if (this.#afterCtrlA) {
      this.#afterCtrlA = false;
      if (key.ch === 'x' || key.ch === 'X' || (key.name === 'x' && !key.ctrl)) return { leave: true };
      if (key.ctrl && key.name === 'a') return { forward: '\x01' };
      return { forward: sequence };
    }
    if (key.ctrl && key.name === 'a') {
      this.#afterCtrlA = true;
      return {};
    }
    if (key.name === 'escape' && sequence === '\x1b') return { leave: true };
    return sequence ? { forward: sequence } : {};
  }
}

export interface FormField {
  label: string;
  value: string;
}

export interface Form {
  title: string;
  fields: FormField[];
  focus: number;
}

export function form(title: string, fields: FormField[]): Form {
  return { title, fields: fields.map((f) => ({ ...f })), focus: 0 };
}

/** A form's keys: typing edits the focused field, Tab/Up/Down move, Enter submits, Esc cancels. */
export function formKey(current: Form, key: Key): { form: Form; result?: 'submit' | 'cancel' } {
  const name = key.name ?? '';
  if (name === 'escape' || (key.ctrl && name === 'c')) return { form: current, result: 'cancel' };
  if (name === 'enter') return { form: current, result: 'submit' };
  if (name === 'return') return { form: current };
  const count = current.fields.length;
  if (name === 'tab' || name === 'down') return { form: { ...current, focus: (current.focus + (key.shift ? count - 1 : 1)) % count } };
  if (name === 'up') return { form: { ...current, focus: (current.focus + count - 1) % count } };
  const fields = current.fields.map((f) => ({ ...f }));
  const field = fields[current.focus]!;
  if (name === 'backspace') field.value = field.value.slice(0, -1);
  else if (key.ctrl && name === 'u') field.value = '';
  else if (key.ch && !key.ctrl && key.ch >= ' ' && key.ch !== '\x7f') field.value += key.ch;
  else return { form: current };
  return { form: { ...current, fields } };
}

/** A yes/no question: y says yes; n, Esc or q say no; other keys are ignored. */
export function confirmKey(key: Key): 'yes' | 'no' | undefined {
  if (key.ch === 'y' || key.ch === 'Y') return 'yes';
  if (key.ch === 'n' || key.ch === 'N' || key.name === 'escape' || key.ch === 'q') return 'no';
  return undefined;
}
