// The dashboard on a terminal: blessed widgets over the model, the key map and the actions.
// Kept thin; what can be decided without a terminal lives in model.ts, keys.ts and format.ts.
// The terminal's streams are parameters, so a test can run it on fakes.

import blessed from 'blessed';
import { openConsole, type ConsoleStream } from '../api/control-client.js';
import type { TerminalSize } from '../api/protocol.js';
import { listInstances, readOutcome } from '../api/runtime-dir.js';
import { status as instanceStatus } from '../api/control-client.js';
import { wrapWords } from '../cli/wrap.js';
import { loadLatestResults } from '../compare/latest.js';
import type { CompareReport } from '../compare/model.js';
import * as defaultActions from './actions.js';
import { comparisonLines } from './compare-view.js';
import { CHART_LINES, ConsoleBuffer, EMPTY_MESSAGE, chartScales, headerLine, rowLine, statsLines } from './format.js';
import {
  BUTTONS, ConsoleKeys, KEY_HELP, buttonText, confirmKey, form, formKey, helpKey, lineKey, listAction, movedKey,
  type Form, type Key, type ListAction,
} from './keys.js';
import { computeLayout, placeButtons, type Layout, type Rect } from './layout.js';
import {
  DEFAULT_ARRANGEMENT, DashboardModel, SORT_KEYS, SORT_TITLES, arrange, sortsDescending,
  type Arrangement, type InstanceSource, type Row, type SortKey,
} from './model.js';

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
  | { kind: 'help'; offset: number }
  | { kind: 'filter' }
  | { kind: 'form'; form: Form; submit: (values: string[]) => void }
  | { kind: 'confirm'; question: string; yes: () => void };

export const liveSource: InstanceSource = { list: () => listInstances(), status: (name) => instanceStatus(name, 1000), outcome: (name) => readOutcome(name) };

/** `text` cut to `width` characters (a box's content must not wrap into the next row). */
function clip(text: string, width: number): string {
  const chars = [...text];
  return chars.length <= width ? text : `${chars.slice(0, Math.max(0, width - 1)).join('')}~`;
}

/** Console lines folded at `width`, as a terminal would show them. */
function fold(lines: string[], width: number): string[] {
  const w = Math.max(1, width);
  return lines.flatMap((line) => {
    const chars = [...line];
    if (chars.length <= w) return [line];
    const parts: string[] = [];
    for (let i = 0; i < chars.length; i += w) parts.push(chars.slice(i, i + w).join(''));
    return parts;
  });
}

function place(element: blessed.Widgets.BlessedElement, rect: Rect): void {
  element.top = rect.top;
  element.left = rect.left;
  element.width = rect.width;
  element.height = rect.height;
}

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

  // Every widget is placed by draw() from computeLayout (layout.ts), on each render and resize.
  const header = blessed.box({ parent: screen, tags: false, style: { fg: 'black', bg: 'cyan' } });
  const table = blessed.box({ parent: screen, border: 'line', label: ' VMs and containers ', tags: false });
  // blessed places children from their parent's outer corner, so the widgets inside the table's
  // border are placed on the screen, one row and column in.
  const heading = blessed.box({ parent: screen, height: 1, tags: false, style: { bold: true } });
  const list = blessed.list({
    parent: screen, mouse: true, keys: false, tags: false,
    style: { selected: { bg: 'blue', fg: 'white' } },
  });
  const empty = blessed.box({ parent: screen, height: 2, content: EMPTY_MESSAGE, tags: false });
  const chartsA = blessed.box({ parent: screen, border: 'line', label: ' charts ', tags: false });
  const chartsB = blessed.box({ parent: screen, border: 'line', label: ' compare ', tags: false, hidden: true });
  // Under the two side by side: the latest `tsvmm compare` for the same kinds (compare-view.ts).
  const comparison = blessed.box({ parent: screen, border: 'line', label: ' VM vs container on this machine ', tags: false, hidden: true });
  const consolePane = blessed.box({ parent: screen, border: 'line', label: ' console ', tags: false });
  // The button row: a click does what the button's key does (keys.ts's BUTTONS).
  const buttons = BUTTONS.map((b) => {
    const button = blessed.box({
      parent: screen, height: 1, width: buttonText(b).length, content: buttonText(b), mouse: true, tags: false,
      style: { fg: 'black', bg: 'white', hover: { bg: 'cyan' } },
    });
    button.on('click', () => clicked(b.action));
    return button;
  });
  const statusLine = blessed.box({ parent: screen, height: 1, tags: false });
  const overlay = blessed.box({ parent: screen, border: 'line', tags: false, hidden: true, style: { border: { fg: 'yellow' } } });

  let mode: Mode = { kind: 'list' };
  let selected: string | undefined;
  /** An instance just started: selected as soon as a poll lists it. */
  let wanted: string | undefined;
  let sideBySide = false;
  let arrangement: Arrangement = { ...DEFAULT_ARRANGEMENT };
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
  let consoleStream: ConsoleStream | undefined;
  let layout: Layout | undefined;
  /** The console pane's inside, for a container's pty, and the size it was last told. */
  const paneSize = (): TerminalSize => ({ rows: Math.max(1, layout?.consoleRows ?? 1), cols: Math.max(1, (layout?.console.width ?? 3) - 2) });
  let toldSize: TerminalSize | undefined;
  let finished: () => void = () => {};
  const done = new Promise<void>((resolve) => { finished = resolve; });

  /** The rows the table shows: filtered and sorted. */
  const rows = (): Row[] => arrange(model.rows, arrangement);
  const current = (): Row | undefined => rows().find((r) => r.name === selected);
  const say = (text: string) => { message = text; render(); };
  const fail = (what: string) => (error: unknown) => say(`${what}: ${(error as Error).message ?? String(error)}`);

  function connectConsole(): void {
    if (consoleName === selected) return;
    consoleStream?.socket.destroy();
    consoleStream = undefined;
    consoleBuffer.clear();
    consoleName = selected;
    if (!selected) return;
    const name = selected;
    toldSize = paneSize();
    attach(name, toldSize).then((stream) => {
      const { socket } = stream;
      if (consoleName !== name) {
        socket.destroy();
        return;
      }
      consoleStream = stream;
      render();
      socket.on('data', (chunk: Buffer) => { consoleBuffer.push(chunk); render(); });
      socket.on('error', () => {});
      socket.on('close', () => {
        if (consoleStream?.socket !== socket) return;
        // What it printed stays in the pane, under a line that says the console went away.
        consoleStream = undefined;
        consoleBuffer.push(`\n(console closed: ${name} ended)\n`);
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

  function tableLabel(shown: number): string {
    const parts = [' VMs and containers'];
    if (arrangement.sort !== 'started' || arrangement.descending) parts.push(`sorted by ${SORT_TITLES[arrangement.sort]} ${arrangement.descending ? '↓' : '↑'}`);
    if (arrangement.filter) parts.push(`filter "${arrangement.filter}": ${shown} of ${model.rows.length}`);
    if (!arrangement.showEnded) parts.push('ended hidden (e)');
    return `${parts.join(' · ')} `;
  }

  function draw(): void {
    const all = rows();
    if (wanted && all.some((r) => r.name === wanted)) {
      selected = wanted;
      wanted = undefined;
    }
    if (selected === undefined || !all.some((r) => r.name === selected)) selected = all[0]?.name;
    const index = all.findIndex((r) => r.name === selected);
    const live = model.rows.filter((r) => r.state !== 'ended');
    const running = live.filter((r) => r.state === 'running').length;
    const comparisonText = sideBySide ? comparisonLines(latest.report, latest.error) : [];
    const width = Math.max(1, (screen.width as number) || 80);
    const height = Math.max(1, (screen.height as number) || 24);
    const L = computeLayout({ width, height, rows: all.length, chartLines: CHART_LINES, sideBySide, comparisonLines: comparisonText.length });
    layout = L;

    place(header, L.header);
    header.setContent(clip(` tsvmm dashboard   ${live.length} instance${live.length === 1 ? '' : 's'}, ${running} running   ? help  q quit`, L.header.width));

    place(table, L.table);
    table.setLabel(clip(tableLabel(all.length), L.table.width - 4));
    const inner = L.table.width - 2;
    place(heading, { top: L.table.top + 1, left: 1, width: inner, height: 1 });
    heading.setContent(` ${headerLine(inner - 1)}`);
    place(list, { top: L.table.top + 2, left: 1, width: inner, height: Math.max(1, L.tableRows) });
    list.setItems(all.map((r) => ` ${rowLine(r, marked.includes(r.name), inner - 1)}`) as never);
    if (index >= 0) list.select(index);
    place(empty, { top: L.table.top + 2, left: 2, width: Math.max(1, inner - 2), height: Math.max(1, L.tableRows) });
    if (all.length) empty.hide();
    else {
      empty.setContent(model.rows.length && arrangement.filter ? `Nothing matches the filter "${arrangement.filter}" (Esc clears it).` : EMPTY_MESSAGE);
      empty.show();
    }

    const sel = current();
    // Side by side, both panes draw charts of one width (the narrower pane's), so their time axes line up.
    const chartText = (row: Row | undefined, none: string, pane: Rect, scales?: ReturnType<typeof chartScales>) =>
      (row ? statsLines(row, Math.min(pane.width, L.chartsB?.width ?? pane.width) - 2, scales) : [none]).slice(0, Math.max(0, pane.height - 2)).map((l) => clip(l, pane.width - 2)).join('\n');
    place(chartsA, L.charts);
    if (sideBySide && L.chartsB) {
      const [a, b] = comparePair();
      // One scale for both panes, so that their bars compare; the time axes line up (format.ts).
      const scales = chartScales([a, b].filter((r): r is Row => r !== undefined));
      place(chartsB, L.chartsB);
      chartsB.show();
      chartsA.setLabel(' side by side ');
      chartsB.setLabel(' same scales ');
      chartsA.setContent(chartText(a, '(no VM)', L.charts, scales));
      chartsB.setContent(chartText(b, '(no container)', L.chartsB, scales));
    } else {
      chartsB.hide();
      chartsA.setLabel(' charts ');
      chartsA.setContent(sel ? chartText(sel, '', L.charts) : '');
    }
    if (L.comparison) {
      place(comparison, L.comparison);
      let lines = comparisonText;
      if (lines.length > L.comparisonRows) {
        const hidden = lines.length - (L.comparisonRows - 1);
        lines = [...lines.slice(0, L.comparisonRows - 1), `... ${hidden} more line${hidden === 1 ? '' : 's'}: a terminal of ${height + L.comparisonMissing} rows shows them all`];
      }
      comparison.setContent(lines.map((l) => clip(l, L.comparison!.width - 2)).join('\n'));
      comparison.show();
    } else {
      comparison.hide();
    }

    connectConsole();
    place(consolePane, L.console);
    const focused = mode.kind === 'console';
    const label = consoleName
      ? ` console: ${consoleName} ${focused ? '(typing goes to it; Ctrl-A X or Esc leaves)' : consoleStream ? '(Enter to type)' : ''}`
      : ' console';
    consolePane.setLabel(clip(`${label.trimEnd()} `, L.console.width - 4));
    consolePane.style.border = { fg: focused ? 'green' : 'default' };
    // A pty learns the pane's size whenever it changes (a resize, the side-by-side view).
    const size = paneSize();
    if (consoleStream && (size.rows !== toldSize?.rows || size.cols !== toldSize.cols)) {
      toldSize = size;
      consoleStream.resize(size).catch(() => {});
    }
    consolePane.setContent(fold(consoleBuffer.tail(L.consoleRows), L.console.width - 2).slice(-L.consoleRows).join('\n'));

    const texts = BUTTONS.map(buttonText);
    const placed = placeButtons(texts, L.buttons.width, BUTTONS.findIndex((b) => b.action === 'help'));
    for (const [i, button] of buttons.entries()) {
      const at = placed.find((p) => p.index === i);
      // What does not fit a narrow terminal is left out (its key still works; ? lists them all).
      if (at) {
        place(button, { top: L.buttons.top, left: at.left, width: texts[i]!.length, height: 1 });
        button.show();
      } else button.hide();
    }

    place(statusLine, L.status);
    const status = mode.kind === 'filter' ? `filter: ${arrangement.filter}_   Enter keeps it, Esc clears it` : message;
    statusLine.setContent(clip(` ${status}`, L.status.width));
    renderOverlay(width, height);
    screen.render();
  }

  function renderOverlay(width: number, height: number): void {
    let lines: string[];
    let label: string;
    if (mode.kind === 'help') {
      // Each key on its line, its description folded under itself where the terminal is narrow.
      const columns = Math.max(10, Math.min(width - 2, 86) - 2 - 17);
      const all = KEY_HELP.flatMap(([k, what]) => wrapWords(what, columns).map((part, i) => ` ${(i === 0 ? k : '').padEnd(16)}${part}`));
      const footer = ['', ' Up/Down scroll; any other key closes'];
      const room = Math.max(1, height - 3 - 2 - footer.length);
      const offset = Math.max(0, Math.min(mode.offset, all.length - room));
      mode.offset = offset;
      const shown = all.slice(offset, offset + room);
      label = all.length > room ? ` keys ${offset + 1}-${offset + shown.length} of ${all.length} ` : ' keys ';
      lines = [...shown, ...footer];
    } else if (mode.kind === 'form') {
      const f = mode.form;
      label = ` ${f.title} `;
      lines = [
        ...f.fields.map((field, i) => `${i === f.focus ? '>' : ' '} ${field.label.padEnd(10)} ${field.value}${i === f.focus ? '_' : ''}`),
        '', '  Tab moves, Enter starts, Esc cancels',
      ];
    } else if (mode.kind === 'confirm') {
      label = ' confirm ';
      lines = [`  ${mode.question} (y/n)`];
    } else {
      overlay.hide();
      return;
    }
    const w = Math.min(width - 2, Math.max(40, ...lines.map((l) => [...l].length + 3)), 86);
    // Between the header and the button row, which stays clickable.
    const h = Math.max(3, Math.min(height - 3, lines.length + 2));
    place(overlay, { top: 1 + Math.max(0, Math.floor((height - 3 - h) / 2)), left: Math.max(0, Math.floor((width - w) / 2)), width: w, height: h });
    overlay.setLabel(label);
    // Lines too long for a narrow terminal are cut at the end, except a form's, which shows the
    // end of what is typed.
    const fit = (l: string) => ([...l].length <= w - 2 ? l : mode.kind === 'form' ? `~${[...l].slice(-(w - 3)).join('')}` : clip(l, w - 2));
    overlay.setContent(lines.slice(0, h - 2).map(fit).join('\n'));
    overlay.show();
  }

  function moveTo(index: number): void {
    const all = rows();
    if (!all.length) return;
    selected = all[Math.max(0, Math.min(all.length - 1, index))]!.name;
    render();
  }
  const position = () => rows().findIndex((r) => r.name === selected);

  const refresh = () => { void model.poll().then(render, () => render()); };

  function started(what: string) {
    return (name: string) => {
      if (name) wanted = name;
      say(`${what} ${name}`);
      refresh();
    };
  }

  function sortBy(key: SortKey): void {
    arrangement = { ...arrangement, sort: key, descending: sortsDescending(key) };
    say(`sorted by ${SORT_TITLES[key]}`);
  }

  function doList(action: ListAction | undefined, key?: Key): void {
    const sel = current();
    switch (action) {
      case undefined: {
        const moved = key && movedKey(key);
        if (moved) say(moved);
        break;
      }
      case 'up': moveTo(position() - 1); break;
      case 'down': moveTo(position() + 1); break;
      case 'page-up': moveTo(position() - Math.max(1, layout?.tableRows ?? 1)); break;
      case 'page-down': moveTo(position() + Math.max(1, layout?.tableRows ?? 1)); break;
      case 'first': moveTo(0); break;
      case 'last': moveTo(rows().length - 1); break;
      case 'quit': quit(); break;
      case 'help': mode = { kind: 'help', offset: 0 }; render(); break;
      case 'filter': mode = { kind: 'filter' }; render(); break;
      case 'clear-filter':
        if (arrangement.filter) {
          arrangement = { ...arrangement, filter: '' };
          say('filter cleared');
        }
        break;
      case 'sort-next':
      case 'sort-previous': {
        const at = SORT_KEYS.indexOf(arrangement.sort);
        const step = action === 'sort-next' ? 1 : SORT_KEYS.length - 1;
        sortBy(SORT_KEYS[(at + step) % SORT_KEYS.length]!);
        break;
      }
      case 'sort-cpu': sortBy('cpu'); break;
      case 'sort-memory': sortBy('memory'); break;
      case 'sort-uptime': sortBy('uptime'); break;
      case 'sort-invert':
        arrangement = { ...arrangement, descending: !arrangement.descending };
        say(`sorted by ${SORT_TITLES[arrangement.sort]}, ${arrangement.descending ? 'largest' : 'smallest'} first`);
        break;
      case 'toggle-ended':
        arrangement = { ...arrangement, showEnded: !arrangement.showEnded };
        say(arrangement.showEnded ? 'showing the ones that ended' : 'hiding the ones that ended');
        break;
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
      case 'unmark-all':
        marked.splice(0);
        render();
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
        if (sel.state !== 'running' && sel.state !== 'paused') {
          say(`${sel.name} is ${sel.state}`);
          return;
        }
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
        if (sel.state === 'ended') {
          say(`${sel.name} has ended: ${sel.outcome ?? ''}`);
          return;
        }
        mode = {
          kind: 'confirm', question: `Stop ${sel.kind === 'vm' ? 'VM' : 'container'} ${sel.name}?`,
          yes: () => {
            model.stopping(sel.name);
            say(`stopping ${sel.name}...`);
            // The answer only says it was asked; the row says "stopping" until it has ended.
            actions.stop(sel.name).then(refresh, fail(`stop ${sel.name}`));
          },
        };
        render();
        break;
      case 'console':
        if (!consoleStream) {
          say(sel ? `no console for ${sel.name}${sel.state === 'ended' ? ' (it has ended)' : ''}` : 'nothing selected');
          return;
        }
        mode = { kind: 'console' };
        render();
        break;
    }
  }

  screen.on('keypress', (ch: string | undefined, key: Key | undefined) => {
    const k: Key = { ...(key ?? {}), ch: ch ?? key?.ch };
    switch (mode.kind) {
      case 'list':
        doList(listAction(k), k);
        break;
      case 'help': {
        const what = helpKey(k);
        if ('close' in what) mode = { kind: 'list' };
        else if ('scroll' in what) mode.offset = Math.max(0, mode.offset + what.scroll);
        render();
        break;
      }
      case 'filter': {
        const { value, result } = lineKey(arrangement.filter, k);
        arrangement = { ...arrangement, filter: value };
        if (result) mode = { kind: 'list' };
        render();
        break;
      }
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
        } else if (forward && consoleStream) {
          if (current()?.kind === 'container' && !consoleStream.terminal) {
            // A container without a pty has a pipe for a console: nothing turns Enter into a
            // newline or echoes what is typed, so we do both. (A pty does that itself.)
            const line = forward.replace(/\r/g, '\n');
            consoleBuffer.push(line);
            consoleStream.socket.write(line);
            render();
          } else consoleStream.socket.write(forward);
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
  // After a resize, every cell is written again: blessed's diff against what it drew at the old
  // size leaves stale characters behind in some terminals (tmux among them).
  screen.on('resize', () => {
    screen.realloc();
    render();
  });

  let quitting = false;
  function quit(): void {
    if (quitting) return;
    quitting = true;
    model.stop();
    consoleName = '\0';
    consoleStream?.socket.destroy();
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
