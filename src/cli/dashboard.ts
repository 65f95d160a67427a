// `tsvmm dashboard`: a terminal view of every VM and container, with keys to boot, pause, resume,
// snapshot, restore and stop them and a console pane. What it starts runs on after it quits.

import type { CommandBody } from './commands.js';

export const dashboardCommand: CommandBody = {
  handler: async () => {
    if (!process.stdin.isTTY || !process.stdout.isTTY) {
      process.stderr.write('tsvmm: error: the dashboard needs a terminal (try `tsvmm ps` in scripts)\n');
      process.exitCode = 1;
      return;
    }
    // Loaded here, so that the other commands do not pay for blessed.
    const { runDashboard } = await import('../tui/app.js');
    await runDashboard();
    // Sockets or timers of actions still under way must not keep us after the terminal is restored.
    process.exit(0);
  },
};
