// Where `tsvmm compare` keeps its latest report, so that others (the dashboard's side-by-side
// view) can show it: $TSVMM_COMPARE_RESULTS if set, else $XDG_CACHE_HOME/tsvmm/compare-latest.json,
// else ~/.cache/tsvmm/compare-latest.json. The file is the report as --json prints it.

import { mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import type { CompareReport } from './model.js';
import { writeWhole } from '../meta/write-whole.js';
import { renderJson } from './report.js';

export function latestResultsPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TSVMM_COMPARE_RESULTS) return path.resolve(env.TSVMM_COMPARE_RESULTS);
  const cache = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(homedir(), '.cache');
  return path.join(cache, 'tsvmm', 'compare-latest.json');
}

/** Writes the report (whole, through a temporary file, so a reader never sees half of it); returns the path. */
export function saveLatestResults(report: CompareReport, file = latestResultsPath()): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeWhole(file, renderJson(report));
  return file;
}

/** The latest report, or undefined if there is none; throws if the file is there but is not a report. */
export function loadLatestResults(file = latestResultsPath()): CompareReport | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const report = JSON.parse(text) as CompareReport;
  if (report?.tool !== 'tsvmm compare' || !Array.isArray(report.measurements)) throw new Error(`${file} is not a tsvmm compare report`);
  return report;
}
