// The dashboard on a terminal: blessed widgets over the model, the key map and the actions.
// Kept thin; what can be decided without a terminal lives in model.ts, keys.ts and format.ts.
// The terminal's streams are parameters, so a test can run it on fakes.

import type net from 'node:net';
import blessed from 'blessed';
import { openConsole, type ConsoleStream } from '../api/control-client.js';
import type { TerminalSize } from '../api/protocol.js';
import { listInstances } from '../api/runtime-dir.js';
import { status as instanceStatus } from '../api/control-client.js';
import { loadLatestResults } from '../compare/latest.js';
import type { CompareReport } from '../compare/model.js';
import * as defaultActions from './actions.js';
import { comparisonLines } from './compare-view.js';
import { ConsoleBuffer, EMPTY_MESSAGE, headerLine, rowLine, statsLines } from './format.js';
import { BUTTONS, ConsoleKeys, KEY_HELP, buttonText, confirmKey, form, formKey, listAction, type Form, type Key, type ListAction } from './keys.js';
import { DashboardModel, type InstanceSource, type Row } from './model.js';

export interface DashboardOptions {
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream;
  source?: InstanceSource;
  actions?: typeof defaultActions;
  /** Attaches to a console (default: the control socket's openConsole), telling a pty the pane's size. */
  attach?: (name: string, size?: TerminalSize) => Promise<ConsoleStream>;
  intervalMs?: number;
}

type Mode =
  | { kind: 'list' }
  | { kind: 'console' }
  | { kind: 'help' }
  | { kind: 'form'; form: Form; submit: (values: string[]) => void }
  | { kind: 'confirm'; question: string; yes: () => void };

export const liveSource: InstanceSource = { list: () => listInstances(), status: (name) => instanceStatus(name, 1000) };

function progressBar(done: number, total: number): string {
  const fraction = total > 0 ? Math.min(1, done / total) : 0;
  const bar = '#'.repeat(Math.round(fraction * 20)).padEnd(20, '.');
  return `[${bar}] ${(fraction * 100).toFixed(0).padStart(3)}% ${(done / 2 ** 20).toFixed(0)}/${(total / 2 ** 20).toFixed(0)} MiB`;
}

/** Runs the dashboard until the user quits; resolves once the terminal is restored. */
export function runDashboard(options: DashboardOptions = {}): Promise<void> {
  const actions = options.actions ?? defaultActions;
  const attach = options.attach ?? openConsole;
  const model = new DashboardModel(options.source ?? liveSource);
  const screen = blessed.screen({
    input: (options.input ?? process.stdin) as never, output: (options.output ?? process.stdout) as never,
    smartCSR: true, fullUnicode: true, forceUnicode: true, title: 'tsvmm dashboard', warnings: false, autoPadding: false,
  });

  // Box lines as UTF-8 rather than the DEC line-drawing set, which tmux's capture-pane shows as letters.
  (screen as unknown as { tput: { brokenACS: boolean } }).tput.brokenACS = true;

  const header = blessed.box({ parent: screen, top: 0, left: 0, width: '100%', height: 1, tags: false, style: { fg: 'black', bg: 'cyan' } });
  blessed.box({ parent: screen, top: 1, left: 0, width: '100%', height: 12, border: 'line', label: ' VMs and containers ' });
  // blessed places children from their parent's outer corner, so the widgets inside the table's
  // border are placed on the screen, one row and column in.
  blessed.box({ parent: screen, top: 2, left: 1, width: '100%-2', height: 1, content: ` ${headerLine()}`, style: { bold: true } });
  const list = blessed.list({
    parent: screen, top: 3, left: 1, width: '100%-2', height: 9, mouse: true, keys: false, tags: false,
    style: { selected: { bg: 'blue', fg: 'white' } },
  });
  const empty = blessed.box({ parent: screen, top: 4, left: 2, width: '100%-4', height: 2, content: EMPTY_MESSAGE, tags: false });
  const chartsA = blessed.box({ parent: screen, top: 13, left: 0, width: '100%', height: 7, border: 'line', label: ' charts ', tags: false });
  const chartsB = blessed.box({ parent: screen, top: 13, left: '50%', width: '50%', height: 7, border: 'line', label: ' compare ', tags: false, hidden: true });
  // Under the two side by side: the latest `tsvmm compare` for the same kinds (compare-view.ts).
  const comparison = blessed.box({ parent: screen, top: 20, left: 0, width: '100%', height: 3, border: 'line', label: ' VM vs container on this machine ', tags: false, hidden: true });
  const consolePane = blessed.box({ parent: screen, top: 20, left: 0, width: '100%', height: '100%-22', border: 'line', label: ' console ', tags: false });
  // The button row: a click does what the button's key does (keys.ts's BUTTONS).
  const buttons = BUTTONS.map((b) => {
    const button = blessed.box({
      parent: screen, bottom: 1, left: 0, width: buttonText(b).length, height: 1, content: buttonText(b), mouse: true, tags: false,
      style: { fg: 'black', bg: 'white', hover: { bg: 'cyan' } },
    });
    button.on('click', () => clicked(b.action));
    return button;
  });
  const statusLine = blessed.box({ parent: screen, bottom: 0, left: 0, width: '100%', height: 1, tags: false });
  const overlay = blessed.box({
    parent: screen, top: 'center', left: 'center', width: '80%', height: 'shrink', border: 'line', tags: false, hidden: true,
    style: { border: { fg: 'yellow' } },
  });

  let mode: Mode = { kind: 'list' };
  let selected: string | undefined;
  /** An instance just started: selected as soon as a poll lists it. */
  let wanted: string | undefined;
  let sideBySide = false;
  let latest: { report?: CompareReport; error?: string } = {};
  /** Reads the latest comparison again (each time the side-by-side view opens). */
  function loadComparison(): void {
    try {
      latest = { report: loadLatestResults() };
    } catch (error) {
      latest = { error: (error as Error).message };
    }
  }
  const marked: string[] = [];
  let message = '';
  const consoleBuffer = new ConsoleBuffer();
  const consoleKeys = new ConsoleKeys();
  let consoleName: string | undefined;
  let consoleSocket: net.Socket | undefined;
  let consoleStream: ConsoleStream | undefined;
  /** The console pane's inside, for a container's pty. */
  const paneSize = (): TerminalSize => ({ rows: Math.max(1, Number(consolePane.height) - 2), cols: Math.max(1, Number(consolePane.width) - 2) });
  let finished: () => void = () => {};
  const done = new Promise<void>((resolve) => { finished = resolve; });

  const rows = (): Row[] => model.rows;
  const current = (): Row | undefined => rows().find((r) => r.name === selected);
  const say = (text: string) => { message = text; render(); };
  const fail = (what: string) => (error: unknown) => say(`${what}: ${(error as Error).message ?? String(error)}`);

  function connectConsole(): void {
    if (consoleName === selected) return;
    consoleSocket?.destroy();
    consoleSocket = undefined;
    consoleStream = undefined;
    consoleBuffer.clear();
    consoleName = selected;
    if (!selected) return;
    const name = selected;
    attach(name, paneSize()).then((stream) => {
      const { socket } = stream;
      if (consoleName !== name) {
        socket.destroy();
        return;
      }
      consoleSocket = socket;
      consoleStream = stream;
      render();
      socket.on('data', (chunk: Buffer) => { consoleBuffer.push(chunk); render(); });
      socket.on('error', () => {});
      socket.on('close', () => {
        if (consoleSocket !== socket) return;
        consoleSocket = undefined;
        consoleStream = undefined;
        consoleName = undefined;
        if (mode.kind === 'console') mode = { kind: 'list' };
        render();
      });
    }, (error: unknown) => {
      if (consoleName === name) consoleBuffer.push(`(no console: ${(error as Error).message})\n`);
      render();
    });
  }

  function comparePair(): [Row | undefined, Row | undefined] {
    const all = rows();
    const chosen = marked.map((n) => all.find((r) => r.name === n)).filter((r): r is Row => r !== undefined);
    if (chosen.length >= 2) return [chosen[0], chosen[1]];
    const sel = current();
    const vm = sel?.kind === 'vm' ? sel : all.find((r) => r.kind === 'vm');
    const ctr = sel?.kind === 'container' ? sel : all.find((r) => r.kind === 'container');
    return [vm, ctr];
  }

  let rendering = false;
  function render(): void {
    rendering = true;
    try {
      draw();
    } finally {
      rendering = false;
    }
  }

  function draw(): void {
    const all = rows();
    if (wanted && all.some((r) => r.name === wanted)) {
      selected = wanted;
      wanted = undefined;
    }
    if (selected === undefined || !all.some((r) => r.name === selected)) selected = all[0]?.name;
    const index = all.findIndex((r) => r.name === selected);
    const running = all.filter((r) => r.state === 'running').length;
    header.setContent(` tsvmm dashboard   ${all.length} instance${all.length === 1 ? '' : 's'}, ${running} running   ? help  q quit`);
    list.setItems(all.map((r) => ` ${rowLine(r, marked.includes(r.name))}`) as never);
    if (index >= 0) list.select(index);
    if (all.length) empty.hide();
    else empty.show();

    const width = (screen.width as number) || 80;
    const sel = current();
    if (sideBySide) {
      const [a, b] = comparePair();
      chartsA.width = '50%';
      chartsB.show();
      chartsA.setLabel(' side by side ');
      chartsA.setContent((a ? statsLines(a, Math.floor(width / 2) - 2) : ['(no VM)']).join('\n'));
      chartsB.setContent((b ? statsLines(b, Math.floor(width / 2) - 2) : ['(no container)']).join('\n'));
      const lines = comparisonLines(latest.report, latest.error);
      comparison.height = lines.length + 2;
      comparison.setContent(lines.join('\n'));
      comparison.show();
      consolePane.top = 20 + lines.length + 2;
      consolePane.height = `100%-${22 + lines.length + 2}`;
    } else {
      chartsA.width = '100%';
      chartsB.hide();
      comparison.hide();
      consolePane.top = 20;
      consolePane.height = '100%-22';
      chartsA.setLabel(' charts ');
      chartsA.setContent(sel ? statsLines(sel, width - 2).join('\n') : '');
    }

    connectConsole();
    const focused = mode.kind === 'console';
    consolePane.setLabel(consoleName
      ? ` console: ${consoleName} ${focused ? '(typing goes to the guest; Ctrl-A X or Esc leaves)' : consoleSocket ? '(Enter to type)' : '(connecting...)'} `
      : ' console ');
    consolePane.style.border = { fg: focused ? 'green' : 'default' };
    // blessed's getter gives the computed height in rows, whatever was set.
    const height = Math.max(1, ((consolePane.height as unknown as number) || 10) - 2);
    consolePane.setContent(consoleBuffer.tail(height).join('\n'));

    let left = 1;
    for (const [i, button] of buttons.entries()) {
      const text = buttonText(BUTTONS[i]!);
      button.left = left;
      // What does not fit a narrow terminal is left out (its key still works).
      if (left + text.length <= width) button.show();
      else button.hide();
      left += text.length + 1;
    }

    statusLine.setContent(` ${message}`);
    renderOverlay();
    screen.render();
  }

  function renderOverlay(): void {
    if (mode.kind === 'help') {
      overlay.setLabel(' keys ');
      overlay.setContent([...KEY_HELP.map(([k, what]) => ` ${k.padEnd(21)}${what}`), '', ' press any key to close'].join('\n'));
      overlay.show();
    } else if (mode.kind === 'form') {
      const f = mode.form;
      overlay.setLabel(` ${f.title} `);
      overlay.setContent([
        ...f.fields.map((field, i) => `${i === f.focus ? '>' : ' '} ${field.label.padEnd(10)} ${field.value}${i === f.focus ? '_' : ''}`),
        '', '  Tab moves, Enter starts, Esc cancels',
      ].join('\n'));
      overlay.show();
    } else if (mode.kind === 'confirm') {
      overlay.setLabel(' confirm ');
      overlay.setContent(`  ${mode.question} (y/n)`);
      overlay.show();
    } else {
      overlay.hide();
    }
  }

  function move(delta: number): void {
    const all = rows();
    if (!all.length) return;
    const index = Math.max(0, Math.min(all.length - 1, all.findIndex((r) => r.name === selected) + delta));
    selected = all[index]!.name;
    render();
  }

  const refresh = () => { void model.poll().then(render, () => render()); };

  function started(what: string) {
    return (name: string) => {
      if (name) wanted = name;
      say(`${what} ${name}`);
      refresh();
    };
  }

  function doList(action: ReturnType<typeof listAction>): void {
    const sel = current();
    switch (action) {
      case 'up': move(-1); break;
      case 'down': move(1); break;
      case 'quit': quit(); break;
      case 'help': mode = { kind: 'help' }; render(); break;
      case 'side-by-side':
        sideBySide = !sideBySide;
        if (sideBySide) loadComparison();
        render();
        break;
      case 'mark':
        if (sel) {
          const at = marked.indexOf(sel.name);
          if (at >= 0) marked.splice(at, 1);
          else marked.push(sel.name);
          if (marked.length > 2) marked.shift();
          render();
        }
        break;
      case 'boot-default':
        say('booting the demo guest...');
        actions.boot({}).then(started('booted'), fail('boot failed'));
        break;
      case 'boot-form':
        mode = {
          kind: 'form',
          form: form('boot a guest', [{ label: 'kernel', value: '' }, { label: 'initrd', value: '' }, { label: 'memory', value: '256M' }, { label: 'vCPUs', value: '1' }]),
          submit: ([kernel, initrd, memory, cpus]) => {
            say(`booting ${kernel || 'the demo guest'}...`);
            actions.boot({ kernel, initrd, memory, cpus }).then(started('booted'), fail('boot failed'));
          },
        };
        render();
        break;
      case 'container':
        mode = {
          kind: 'form',
          form: form('start a container', [{ label: 'rootfs', value: actions.defaultRootfs() }, { label: 'command', value: 'sh' }]),
          submit: ([rootfs, command]) => {
            if (!rootfs) {
              say('start failed: say which root filesystem (scripts/build-busybox-rootfs.sh builds one)');
              return;
            }
            say('starting a container...');
            actions.startContainer(rootfs, command ?? 'sh').then(started('started'), fail('container failed'));
          },
        };
        render();
        break;
      case 'restore':
        mode = {
          kind: 'form',
          form: form('restore a VM from a snapshot', [{ label: 'file', value: '' }]),
          submit: ([file]) => {
            if (!file) return;
            say(`restoring ${file}...`);
            actions.restore(file).then(started('restored'), fail('restore failed'));
          },
        };
        render();
        break;
      case 'pause-resume':
        if (!sel) return;
        say(`${sel.state === 'paused' ? 'resuming' : 'pausing'} ${sel.name}...`);
        actions.pauseOrResume(sel.name, sel.state).then((s) => { say(`${sel.name}: ${s.state}`); refresh(); }, fail(sel.name));
        break;
      case 'snapshot':
        if (!sel) return;
        if (sel.kind !== 'vm') {
          say('snapshots are for VMs');
          return;
        }
        mode = {
          kind: 'form',
          form: form(`snapshot ${sel.name}`, [{ label: 'file', value: `${sel.name}.snap` }]),
          submit: ([file]) => {
            if (!file) return;
            say(`saving ${sel.name}...`);
            actions.snapshot(sel.name, file, (d, t) => say(`saving ${sel.name} ${progressBar(d, t)}`))
              .then((path) => say(`saved ${sel.name} to ${path}`), fail('snapshot failed'));
          },
        };
        render();
        break;
      case 'stop':
        if (!sel) return;
        mode = {
          kind: 'confirm', question: `Stop ${sel.kind === 'vm' ? 'VM' : 'container'} ${sel.name}?`,
          yes: () => {
            say(`stopping ${sel.name}...`);
            actions.stop(sel.name).then(() => { say(`stopped ${sel.name}`); refresh(); }, fail(`stop ${sel.name}`));
          },
        };
        render();
        break;
      case 'console':
        if (!consoleSocket) {
          say(sel ? `no console for ${sel.name}` : 'nothing selected');
          return;
        }
        mode = { kind: 'console' };
        render();
        break;
      default:
        break;
    }
  }

  screen.on('keypress', (ch: string | undefined, key: Key | undefined) => {
    const k: Key = { ...(key ?? {}), ch: ch ?? key?.ch };
    switch (mode.kind) {
      case 'list':
        doList(listAction(k));
        break;
      case 'help':
        mode = { kind: 'list' };
        render();
        break;
      case 'confirm': {
        const answer = confirmKey(k);
        if (!answer) return;
        const yes = mode.yes;
        mode = { kind: 'list' };
        if (answer === 'yes') yes();
        else say('');
        render();
        break;
      }
      case 'form': {
        const { form: next, result } = formKey(mode.form, k);
        const submit = mode.submit;
        if (result === 'cancel') mode = { kind: 'list' };
        else if (result === 'submit') {
          mode = { kind: 'list' };
          submit(next.fields.map((f) => f.value));
        } else mode = { ...mode, form: next };
        render();
        break;
      }
      case 'console': {
        const { forward, leave } = consoleKeys.feed(k);
        if (leave) {
          mode = { kind: 'list' };
          render();
        } else if (forward && consoleSocket) {
          if (current()?.kind === 'container' && !consoleStream?.terminal) {
            // A container without a pty has a pipe for a console: nothing turns Enter into a
            // newline or echoes what is typed, so we do both. (A pty does that itself.)
            const line = forward.replace(/\r/g, '\n');
            consoleBuffer.push(line);
            consoleSocket.write(line);
            render();
          } else consoleSocket.write(forward);
        }
        break;
      }
    }
  });

  /** A button's click: in the list, what its key does; over the help, closes it like a key. */
  function clicked(action: ListAction): void {
    if (mode.kind === 'help') {
      mode = { kind: 'list' };
      render();
    } else if (mode.kind === 'list') doList(action);
  }

  // A click on a row (setItems and select() in draw() report their own, which are not news).
  list.on('select item', (_item: unknown, index: number) => {
    if (rendering) return;
    const name = rows()[index]?.name;
    if (name && name !== selected) {
      selected = name;
      render();
    }
  });
  screen.on('resize', () => {
    render();
    consoleStream?.resize(paneSize()).catch(() => {});
  });

  let quitting = false;
  function quit(): void {
    if (quitting) return;
    quitting = true;
    model.stop();
    consoleName = '\0';
    consoleSocket?.destroy();
    for (const signal of ['SIGTERM', 'SIGHUP'] as const) process.off(signal, quit);
    screen.destroy();
    finished();
  }
  for (const signal of ['SIGTERM', 'SIGHUP'] as const) process.on(signal, quit);

  model.onChange(() => render());
  render();
  model.start(options.intervalMs ?? 1000);
  return done;
}
