// `tsvmm compare`: the same workloads natively, in a container and in a VM, side by side (start
// latency, host memory, CPU-bound work, exits/system calls, I/O, density, snapshots). Prints a
// table; --json prints the report as JSON instead; --html FILE also writes a self-contained page.
// Either way the report is saved as JSON where the dashboard finds it (compare/latest.ts).

import type { ArgumentsCamelCase, Argv } from 'yargs';
import type { CommandBody } from './commands.js';
import { MEASUREMENTS, resolveOptions, runComparison, type MeasurementName } from '../compare/harness.js';
import { checkOutputFile } from '../compare/output-file.js';
import { writeWhole } from '../meta/write-whole.js';
import { latestResultsPath, saveLatestResults } from '../compare/latest.js';
import { renderHtml, renderJson, renderTable } from '../compare/report.js';
import { numberOption } from './number-option.js';

interface CompareArgs {
  quick: boolean;
  runs?: number;
  budget?: string;
  only: string[];
  json: boolean;
  html?: string;
  quiet: boolean;
}

export const compareCommand: CommandBody<CompareArgs> = {
  builder: (yargs: Argv) => yargs
    .option('quick', { type: 'boolean', default: false, describe: 'A short run: fewer runs, smaller sizes (under a minute)' })
    .option('runs', numberOption('runs', { describe: 'Runs per figure (default 7; 3 with --quick)' }))
    .option('budget', { type: 'string', describe: 'Host memory the density test may fill, e.g. 1G (default 1G; 256M with --quick)' })
    .option('only', { type: 'string', array: true, default: [], choices: [...MEASUREMENTS], describe: 'Only these measurements' })
    .option('json', { type: 'boolean', default: false, describe: 'Print the report as JSON on stdout instead of the table' })
    .option('html', { type: 'string', describe: 'Also write a self-contained HTML report (charts inline) to FILE' })
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'No progress lines on stderr' })
    .example('$0 compare --quick', 'a short comparison on this machine')
    .example('$0 compare --json > report.json --html report.html', 'the full comparison, as JSON and HTML')
    .epilog('Containers need root; VMs need /dev/kvm. What cannot run here is reported as n/a, with the reason. '
      + 'The results are also saved to $TSVMM_COMPARE_RESULTS, or else $XDG_CACHE_HOME/tsvmm/compare-latest.json (~/.cache/tsvmm/), for the dashboard.') as unknown as Argv<CompareArgs>,
  handler: async (args: ArgumentsCamelCase<CompareArgs>) => {
    const log = args.quiet ? () => {} : (line: string) => process.stderr.write(`compare: ${line}\n`);
    const request = {
      quick: args.quick,
      ...(args.runs !== undefined ? { runs: args.runs } : {}),
      ...(args.budget !== undefined ? { budget: args.budget } : {}),
      only: args.only as MeasurementName[],
      log,
    };
    // Every argument and output path is checked before minutes of measuring, not after.
    resolveOptions(request);
    const html = args.html === undefined ? undefined : checkOutputFile('--html', args.html);
    const report = await runComparison(request);
    if (html) {
      writeWhole(html, renderHtml(report));
      log(`wrote ${html}`);
    }
    // The latest results, for the dashboard's side-by-side view; not saving them does not fail the run.
    try {
      log(`saved the results to ${saveLatestResults(report)}`);
    } catch (error) {
      log(`could not save the results to ${latestResultsPath()}: ${(error as Error).message}`);
    }
    process.stdout.write(args.json ? renderJson(report) : renderTable(report));
  },
};
