/**
 * @module Bounding text that comes from outside (names agents send, server output) before it is echoed or stored.
 */

/** `text` cut to at most `max` characters, the cut marked with an ellipsis. */
export function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
