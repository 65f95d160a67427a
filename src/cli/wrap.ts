// Text folded to a width between words: the top-level help and the dashboard's key help.
// No imports, so that the CLI's entry can take it statically and stay one small file.

/** `text` in lines of at most `width` characters, broken between words (a longer word stands alone). */
export function wrapWords(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  return [...lines, line];
}
