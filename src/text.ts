/**
 * @module Bounding text that comes from outside (names agents send, server output) before it is echoed or stored.
 */

/**
 * The first at most `max` UTF-16 code units of `text`, never ending in the first half of a surrogate pair (the cut
 * moves back one unit rather than leave a lone high surrogate).
 */
export function prefix(text: string, max: number): string {
  if (text.length <= max) return text;
  const end = Math.max(0, max);
  const last = text.charCodeAt(end - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? end - 1 : end);
}

/** `text` cut to at most `max` characters, the cut marked with an ellipsis (surrogate-safe: see {@link prefix}). */
export function clip(text: string, max: number): string {
  return text.length > max ? `${prefix(text, max - 1)}…` : text;
}
