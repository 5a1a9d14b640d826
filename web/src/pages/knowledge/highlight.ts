export interface Segment {
  text: string;
  match: boolean;
}

const encoder = new TextEncoder();

/**
 * The UTF-16 index (what JavaScript strings count) of each UTF-8 byte offset the server gives,
 * for offsets 0..=byteLength. An offset inside a character moves to the next boundary.
 */
function byteToIndex(text: string): (byte: number) => number {
  const starts: number[] = []; // starts[i] = byte offset of UTF-16 index i
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    starts.push(bytes);
    const code = text.codePointAt(i) ?? 0;
    if (code > 0xffff) {
      // A surrogate pair: one 4-byte character over two indices.
      starts.push(bytes);
      bytes += 4;
      i++;
    } else {
      bytes += encoder.encode(String.fromCharCode(code)).length;
    }
  }
  starts.push(bytes);
  return (byte) => {
    // The first index whose start is at or after `byte`.
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((starts[mid] ?? 0) < byte) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

/**
 * `text` cut into plain and matched runs, from the `[start, end)` UTF-8 byte ranges the search
 * API gives. Ranges out of order, overlapping or out of bounds are sorted, merged and clipped;
 * the segments' texts always join back to `text`. Rendered as text nodes and `<mark>`s, never as
 * HTML.
 */
export function highlightSegments(text: string, ranges: number[][]): Segment[] {
  const toIndex = byteToIndex(text);
  const spans = ranges
    .filter((range) => range.length === 2)
    .map(([start = 0, end = 0]) => [toIndex(Math.max(0, start)), toIndex(Math.max(0, end))] as const)
    .filter(([start, end]) => end > start)
    .sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const [start, end] of spans) {
    const last = merged.at(-1);
    if (last && start <= last[1]) last[1] = Math.max(last[1], end);
    else merged.push([start, Math.min(end, text.length)]);
  }
  const segments: Segment[] = [];
  let at = 0;
  for (const [start, end] of merged) {
    if (start >= text.length) break;
    if (start > at) segments.push({ text: text.slice(at, start), match: false });
    segments.push({ text: text.slice(start, end), match: true });
    at = end;
  }
  if (at < text.length) segments.push({ text: text.slice(at), match: false });
  return segments;
}
