// The terminal nslab prints to: tables fitted to its width, colour only where it shows, a progress line.
import { stripVTControlCharacters } from 'node:util';

let wide = false;

/** `--wide`: tables keep every cell whole, whatever the terminal's width. */
export function setWide(on: boolean): void {
  wide = on;
}

/**
 * The width tables must fit in: `COLUMNS` when set (as ls(1) and ps(1) honour it), else the
 * terminal's columns when stdout is one, else 80 (a pipe, a file, CI logs); unlimited with `--wide`.
 */
export function terminalWidth(stream: NodeJS.WriteStream = process.stdout): number {
  if (wide) return Number.POSITIVE_INFINITY;
  const env = Number(process.env.COLUMNS);
  if (Number.isInteger(env) && env > 0) return env;
  return stream.isTTY && stream.columns ? stream.columns : 80;
}

/**
 * Whether to colour what goes to `stream`: only a terminal, never with NO_COLOR set to anything
 * non-empty (no-color.org), nor with TERM=dumb.
 */
export function useColor(stream: NodeJS.WriteStream = process.stdout): boolean {
  if (process.env.NO_COLOR) return false;
  if (process.env.TERM === 'dumb') return false;
  return stream.isTTY === true;
}

const SGR = { red: 31, green: 32, yellow: 33, dim: 2, bold: 1 } as const;

/** `text` in `color` (ANSI SGR) when {@link useColor} says so, else unchanged. */
export function paint(text: string, color: keyof typeof SGR, stream: NodeJS.WriteStream = process.stdout): string {
  return useColor(stream) ? `\x1b[${SGR[color]}m${text}\x1b[0m` : text;
}

/**
 * Columns `s` takes in a terminal: ANSI codes take none, East Asian wide characters (the labs'
 * Chinese titles) two (Unicode UAX #11 W/F ranges, the common blocks), combining marks none.
 */
export function displayWidth(s: string): number {
  let w = 0;
  for (const ch of stripVTControlCharacters(s)) {
    const c = ch.codePointAt(0)!;
    if (c < 32 || (c >= 0x300 && c < 0x370) || c === 0x200b) continue;
    w += (c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0xa4cf) || (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) || (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff60) || (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1faff) || (c >= 0x20000 && c <= 0x3fffd) ? 2 : 1;
  }
  return w;
}

/**
 * Column widths that fit `budget` columns: each column's natural width (its widest line), then,
 * while the row is too wide, the widest column gives up one column at a time, down to `min` (the
 * header's width, at most 8, and at least 4). A table that cannot fit keeps those minimums.
 * @param natural widest line of each column
 * @param budget the terminal's width
 * @param overhead columns taken by separators and borders
 * @param min narrowest each column may become
 */
export function fitWidths(natural: number[], budget: number, overhead: number, min: number[]): number[] {
  const w = [...natural];
  let total = w.reduce((a, b) => a + b, 0) + overhead;
  while (total > budget) {
    let k = -1;
    for (let i = 0; i < w.length; i++) if (w[i]! > min[i]! && (k < 0 || w[i]! > w[k]!)) k = i;
    if (k < 0) break;
    w[k]!--;
    total--;
  }
  return w;
}

/** Options of {@link renderTable}. */
export interface TableOptions {
  /** Box-drawing borders (the pingall matrix); default: none, columns apart by 3 blanks, as `docker ps`. */
  borders?: boolean;
}

/**
 * Rows under a header, fitted to {@link terminalWidth}: cells that do not fit are cut with `…` (each
 * line of a multi-line cell on its own); no rule between rows. Rendered by cli-table3.
 * @param head column titles
 * @param rows cells (strings; `\n` for several lines in one cell)
 * @returns the table, each line without trailing blanks, ending in a newline
 */
export async function renderTable(head: string[], rows: string[][], o: TableOptions = {}): Promise<string> {
  const { default: Table } = await import('cli-table3');
  const cols = head.length;
  const natural = head.map((h, i) => Math.max(displayWidth(h), ...rows.map((r) => Math.max(0, ...String(r[i] ?? '').split('\n').map(displayWidth)))));
  // Borders: "│ " before each cell, " │" after the last (cli-table3's padding of 1 on each side).
  const pad = o.borders ? 2 : 0;
  const overhead = o.borders ? cols + 1 : 3 * (cols - 1);
  const min = head.map((h, i) => Math.min(natural[i]!, Math.max(4, Math.min(8, displayWidth(h)))));
  const widths = fitWidths(natural, terminalWidth(), overhead + pad * cols, min).map((w) => w + pad);
  const none = { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '   ' };
  const noRules = { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' };
  const t = new Table({
    head,
    chars: o.borders ? noRules : none,
    colWidths: widths,
    wordWrap: false,
    truncate: '…',
    style: { head: [], border: [], 'padding-left': o.borders ? 1 : 0, 'padding-right': o.borders ? 1 : 0 },
  });
  t.push(...rows.map((r) => head.map((_, i) => String(r[i] ?? ''))));
  return t.toString().split('\n').map((l) => l.trimEnd()).join('\n') + '\n';
}

let shown = false;

/**
 * A progress line on stderr for long work (`[12/34] add veth h1-eth0`), rewritten in place and
 * cleared when the work is done: only when stderr is a terminal (nothing extra in a pipe, a file or
 * CI logs), and never with `--json`. Returns the sink for exec/progress.ts, or null when not shown.
 */
export function progressLine(json: boolean, stream: NodeJS.WriteStream = process.stderr): ((done: number, total: number, what: string) => void) | null {
  if (json || !stream.isTTY) return null;
  return (done, total, what) => {
    if (done >= total) return clearProgress(stream);
    const width = Math.max(20, (stream.columns || 80) - 1);
    let line = `[${done}/${total}] ${what}`;
    if (displayWidth(line) > width) line = `${[...line].slice(0, width - 1).join('')}…`;
    stream.write(`\r\x1b[K${line}`);
    shown = true;
  };
}

/** Clears the progress line, if one is shown (before an error or the result is printed). */
export function clearProgress(stream: NodeJS.WriteStream = process.stderr): void {
  if (!shown) return;
  stream.write('\r\x1b[K');
  shown = false;
}
