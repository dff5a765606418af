// Shared drawing of card faces. The coffee card is a cup drawn in SVG: Debian's Chromium (and
// many Linux desktops) have no emoji font, so "☕" showed as a tiny faint glyph.

/** A coffee cup on a 24×24 grid, stroked with currentColor: steam, cup, handle, saucer. */
export const CUP_PATHS: readonly string[] = [
  "M8.5 2.8c-1 1.1 1 2.1 0 3.3M12.5 2.8c-1 1.1 1 2.1 0 3.3",
  "M4 9.5h12.5v4.2a5.3 5.3 0 0 1-5.3 5.3H9.3A5.3 5.3 0 0 1 4 13.7z",
  "M16.5 11h1.2a2.6 2.6 0 0 1 0 5.2h-1.9",
  "M2.5 21.5h16",
];
