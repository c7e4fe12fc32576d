// How people look in the room: their avatars' initials, and messages grouped by sender.
// Local UI only: nothing here talks to the server.

// "Ada Lovelace" → "AL", "grace" → "G", "李雷" → "李", "  " → "?". Counted in graphemes, so
// an emoji or an accented letter typed as two code points is one initial, not half of one.
const segmenter =
  typeof Intl !== "undefined" && Intl.Segmenter ? new Intl.Segmenter(undefined, { granularity: "grapheme" }) : null;

function firstGrapheme(word) {
  if (segmenter) {
    for (const { segment } of segmenter.segment(word)) return segment;
  }
  return Array.from(word)[0] ?? "";
}

export function initials(name) {
  const words = String(name ?? "")
    .split(/[\s\p{P}\p{S}]+/u)
    .filter(Boolean);
  if (words.length === 0) return "?";
  const first = firstGrapheme(words[0]);
  const last = words.length > 1 ? firstGrapheme(words.at(-1)) : "";
  return (first + last).toLocaleUpperCase();
}

// Consecutive messages of one sender belong to one group while they are within 5 minutes of
// the group's first message (so the header's time is never more than 5 minutes off any row
// under it) and on the same local day (a day separator always starts a group).
export const GROUP_WITHIN_MS = 5 * 60 * 1000;

// Each row gets `data-group="start"` (name, avatar and time shown) or "continued" (compact,
// its time on hover or focus), drawn by CSS. Derived from the rows as they stand, like the
// day separators, so it stays right whatever was prepended, appended, deleted or edited.
export function markGroups(list) {
  let opened = null;
  for (const row of list.children) {
    const sender = row.dataset.senderId ?? "";
    const at = Date.parse(row.dataset.at ?? "");
    const day = Number.isNaN(at) ? "" : new Date(at).toDateString();
    // The "New messages" divider starts a group too: what was read stays above it.
    const continues =
      opened !== null &&
      row.dataset.unreadFrom !== "true" &&
      sender !== "" &&
      sender === opened.sender &&
      day === opened.day &&
      at >= opened.at &&
      at - opened.at <= GROUP_WITHIN_MS;
    if (!continues) opened = { sender, at, day };
    const group = continues ? "continued" : "start";
    if (row.dataset.group !== group) row.dataset.group = group;
  }
}
