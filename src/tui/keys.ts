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
  | 'up' | 'down' | 'page-up' | 'page-down' | 'first' | 'last'
  | 'boot-default' | 'boot-form' | 'container' | 'pause-resume' | 'snapshot' | 'restore'
  | 'stop' | 'console' | 'side-by-side' | 'mark' | 'unmark-all'
  | 'filter' | 'clear-filter' | 'sort-next' | 'sort-previous' | 'sort-cpu' | 'sort-memory' | 'sort-uptime' | 'sort-invert'
  | 'toggle-ended' | 'help' | 'quit';

/**
 * The list's keys, for the help screen and the README. Chosen to be what lazydocker's container
 * panel and htop do with the same key (lazydocker: p pause, s stop, Enter/a attach, / filter,
 * e hide stopped; htop: k and F9 kill, F6 and < > sort, P M T sort by CPU, memory and time,
 * I invert, \ filter, Space tag, U untag all, F1/h/? help, F10/q quit). Keys only tsvmm
 * needs take letters neither uses for something else (b, c, v), or capitals (S, R).
 */
export const KEY_HELP: ReadonlyArray<readonly [string, string]> = [
  ['Up/Down, mouse', 'select a VM or container (PgUp/PgDn, Home/End jump)'],
  ['buttons (mouse)', 'the row at the bottom: a click does what its key does'],
  ['b', 'boot the demo guest (guests/build/hello.elf)'],
  ['B', 'boot from a form: kernel, initrd, memory, vCPUs'],
  ['c', 'start a container from a form: rootfs, command'],
  ['p', 'pause or resume the selected one'],
  ['s, k, F9, x', 'stop the selected one (asks first)'],
  ['S', 'snapshot the selected VM to a file, with progress'],
  ['R', 'restore a VM from a snapshot file'],
  ['Enter, a', 'type into the console; Ctrl-A X or Esc leaves it'],
  ['v', 'side by side: a VM and a container, or the two marked'],
  ['Space, U', 'mark or unmark one for side by side; U unmarks all'],
  ['/, \\', 'filter by name, kind, state or image; Esc clears it'],
  ['F6, <, >', 'sort by the next or previous column'],
  ['P, M, T', 'sort by CPU%, memory, uptime (largest first)'],
  ['I', 'invert the sort order'],
  ['e', 'hide or show the ones that ended'],
  ['?, h, F1', 'this help (Up/Down scroll it)'],
  ['q, F10, Ctrl-C', 'quit (VMs and containers keep running)'],
];

/** Keys the dashboard once used for something else: pressed, they say where that went. */
export const MOVED_KEYS: Readonly<Record<string, string>> = {
  d: 'stop is s now (or k, F9, x)',
  r: 'restore is R now (r is not restart here)',
  j: 'move with Up/Down (k stops, as in htop)',
};

/**
 * The button row under the console: a click does what the key in brackets does (the same
 * ListAction), so the mouse and the keys cannot drift apart.
 */
export const BUTTONS: ReadonlyArray<{ label: string; key: string; action: ListAction }> = [
  { label: 'boot', key: 'b', action: 'boot-default' },
  { label: 'container', key: 'c', action: 'container' },
  { label: 'pause', key: 'p', action: 'pause-resume' },
  { label: 'stop', key: 's', action: 'stop' },
  { label: 'snapshot', key: 'S', action: 'snapshot' },
  { label: 'restore', key: 'R', action: 'restore' },
  { label: 'console', key: 'Enter', action: 'console' },
  { label: 'side by side', key: 'v', action: 'side-by-side' },
  { label: 'filter', key: '/', action: 'filter' },
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
    case 'pageup': return 'page-up';
    case 'pagedown': return 'page-down';
    case 'home': return 'first';
    case 'end': return 'last';
    case 'enter': return 'console';
    case 'space': return 'mark';
    case 'escape': return 'clear-filter';
    case 'f1': return 'help';
    case 'f6': return 'sort-next';
    case 'f9': return 'stop';
    case 'f10': return 'quit';
    default: break;
  }
  switch (key.ch) {
    case 'b': return 'boot-default';
    case 'B': return 'boot-form';
    case 'c': return 'container';
    case 'p': return 'pause-resume';
    case 's': case 'k': case 'x': return 'stop';
    case 'S': return 'snapshot';
    case 'R': return 'restore';
    case 'a': return 'console';
    case 'v': return 'side-by-side';
    case ' ': return 'mark';
    case 'U': return 'unmark-all';
    case '/': case '\\': return 'filter';
    case '>': case '.': return 'sort-next';
    case '<': case ',': return 'sort-previous';
    case 'P': return 'sort-cpu';
    case 'M': return 'sort-memory';
    case 'T': return 'sort-uptime';
    case 'I': return 'sort-invert';
    case 'e': return 'toggle-ended';
    case '?': case 'h': return 'help';
    case 'q': return 'quit';
    default: return undefined;
  }
}

/** Where a key that moved went, for the status line; undefined for other keys. */
export function movedKey(key: Key): string | undefined {
  return key.ch && !key.ctrl ? MOVED_KEYS[key.ch] : undefined;
}

/** The help overlay's keys: Up/Down/PgUp/PgDn/Home/End scroll it; anything else closes it. */
export function helpKey(key: Key): { scroll: number } | { close: true } | Record<string, never> {
  switch (key.name) {
    case 'up': return { scroll: -1 };
    case 'down': return { scroll: 1 };
    case 'pageup': return { scroll: -10 };
    case 'pagedown': return { scroll: 10 };
    case 'home': return { scroll: -1000 };
    case 'end': return { scroll: 1000 };
    case 'return': return {};
    default: return { close: true };
  }
}

/** A one-line text field (the filter): typing edits; Enter keeps it, Esc clears it. */
export function lineKey(value: string, key: Key): { value: string; result?: 'keep' | 'clear' } {
  const name = key.name ?? '';
  if (name === 'escape' || (key.ctrl && name === 'c')) return { value: '', result: 'clear' };
  if (name === 'enter') return { value, result: 'keep' };
  if (name === 'return') return { value };
  if (name === 'backspace') return { value: value.slice(0, -1) };
  if (key.ctrl && name === 'u') return { value: '' };
  if (key.ch && !key.ctrl && key.ch >= ' ' && key.ch !== '\x7f') return { value: value + key.ch };
  return { value };
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
