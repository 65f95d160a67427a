// Where each part of the dashboard goes, computed from the terminal's size, so that every part
// fits at 80x24 and above and the layout follows a resize. Pure: numbers in, rectangles out.
//
// Top to bottom: the header line, the table of instances, the charts (one pane, or two side by
// side), under the two the latest comparison, the console, the button row, the status line.
// When rows are short the console keeps CONSOLE_MIN rows of text first (typing blind is worse
// than a shorter table), then the table keeps two rows, then the charts shrink, then the
// comparison shows what fits.

export interface Rect {
  top: number;
  left: number;
  width: number;
  height: number;
}

export interface Layout {
  header: Rect;
  /** The table's box (border included); `tableRows` instance rows fit under its heading. */
  table: Rect;
  tableRows: number;
  /** The chart pane; in the side-by-side view the left one, with `chartsB` beside it. */
  charts: Rect;
  chartsB?: Rect;
  /** Side by side: the comparison box, how many of its lines fit in it, and how many more rows it would need. */
  comparison?: Rect;
  comparisonRows: number;
  comparisonMissing: number;
  console: Rect;
  /** Console text rows (inside the border): never below 1, CONSOLE_MIN from 80x24 on. */
  consoleRows: number;
  buttons: Rect;
  status: Rect;
}

export interface LayoutInput {
  width: number;
  height: number;
  /** Instances in the table. */
  rows: number;
  /** Lines of text in one chart pane. */
  chartLines: number;
  sideBySide: boolean;
  /** Side by side: lines of the comparison under the two panes. */
  comparisonLines: number;
}

/** Console text rows kept whenever the terminal has the room (it has from 80x24 on). */
export const CONSOLE_MIN = 4;
/** The smallest terminal the dashboard is laid out for; smaller ones get the same, clipped. */
export const MIN_WIDTH = 40;
export const MIN_HEIGHT = 13;

export function computeLayout(input: LayoutInput): Layout {
  const width = Math.max(MIN_WIDTH, Math.floor(input.width));
  const height = Math.max(MIN_HEIGHT, Math.floor(input.height));
  // Header, button row and status line take one row each.
  const body = height - 3;
  const border = 2;

  // What each part wants, and the least it can do with.
  const tableWant = border + 1 + Math.max(2, input.rows);
  const tableMin = border + 1 + Math.min(2, Math.max(1, input.rows));
  const chartsWant = border + input.chartLines;
  const chartsMin = border + 2; // the title and the CPU line
  const consoleMin = border + CONSOLE_MIN;

  // The table gets up to 40 % of the body for its rows; it scrolls beyond that.
  let table = Math.max(tableMin, Math.min(tableWant, Math.floor(body * 0.4)));
  let charts = chartsWant;
  let consoleHeight = body - table - charts;
  if (consoleHeight < consoleMin) {
    // Short terminal: the charts give up rows first, then the table, then the console.
    charts = Math.max(chartsMin, charts - (consoleMin - consoleHeight));
    consoleHeight = body - table - charts;
  }
  if (consoleHeight < consoleMin) {
    table = Math.max(tableMin, table - (consoleMin - consoleHeight));
    consoleHeight = body - table - charts;
  }
  if (consoleHeight < border + 1) {
    // Far below 80x24: one console row still, one table row, the charts' title line.
    charts = border + 1;
    table = Math.max(border + 2, body - charts - (border + 1));
    consoleHeight = body - table - charts;
  }

  let comparison: Rect | undefined;
  let comparisonRows = 0;
  let comparisonMissing = 0;
  if (input.sideBySide && input.comparisonLines > 0) {
    const want = border + input.comparisonLines;
    // At least one line of it: the table gives up rows down to one, then the charts theirs.
    let short = border + 1 - (consoleHeight - consoleMin);
    const fromTable = Math.max(0, Math.min(short, table - (border + 2)));
    table -= fromTable;
    short -= fromTable;
    const fromCharts = Math.max(0, Math.min(short, charts - chartsMin));
    charts -= fromCharts;
    consoleHeight = body - table - charts;
    const box = Math.min(want, consoleHeight - consoleMin);
    if (box >= border + 1) {
      comparison = { top: 1 + table + charts, left: 0, width, height: box };
      comparisonRows = box - border;
      comparisonMissing = want - box;
      consoleHeight -= box;
    }
  }
  const chartsTop = 1 + table;
  const consoleTop = chartsTop + charts + (comparison?.height ?? 0);

  const half = Math.floor(width / 2);
  return {
    header: { top: 0, left: 0, width, height: 1 },
    table: { top: 1, left: 0, width, height: table },
    tableRows: table - border - 1,
    charts: { top: chartsTop, left: 0, width: input.sideBySide ? half : width, height: charts },
    ...(input.sideBySide ? { chartsB: { top: chartsTop, left: half, width: width - half, height: charts } } : {}),
    ...(comparison ? { comparison } : {}),
    comparisonRows,
    comparisonMissing,
    console: { top: consoleTop, left: 0, width, height: consoleHeight },
    consoleRows: consoleHeight - border,
    buttons: { top: height - 2, left: 0, width, height: 1 },
    status: { top: height - 1, left: 0, width, height: 1 },
  };
}

/**
 * The button row: each button's column, the ones that fit in `width` (the help button always,
 * at the end, so that the rest can be found). Buttons never overlap each other or the border.
 */
export function placeButtons(texts: readonly string[], width: number, keep: number): { index: number; left: number }[] {
  const placed: { index: number; left: number }[] = [];
  const kept = texts[keep];
  const reserve = kept === undefined ? 0 : kept.length + 1;
  let left = 0;
  for (const [index, text] of texts.entries()) {
    if (index === keep) continue;
    if (left + text.length + reserve > width) break;
    placed.push({ index, left });
    left += text.length + 1;
  }
  if (kept !== undefined && left + kept.length <= width) placed.push({ index: keep, left });
  return placed;
}
