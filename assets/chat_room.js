// The room page's browser-side behaviour: scrolling, the history sentinel, the composer
// keys and what the reader has seen. Everything here is local UI; the only messages to the
// server are the events it is given by name (load older history, edit my last message,
// stop a reply, read up to a message).
//
// Scrolling rules:
// - opening a room (or a reset) shows the bottom;
// - older messages inserted above keep the message the reader was looking at in place;
// - a new message at the bottom scrolls into view only when the reader is at the bottom,
//   otherwise the "new messages" pill appears; the reader's own messages always scroll.
import { useEffect } from "react";
import { eventLoop } from "$/utils/context-registry";
import { ReflexEvent } from "$/utils/state";
import { markGroups } from "./looks.js";
import { unreadStore } from "./unread.js";

// How close to the bottom (px) still counts as "at the bottom".
const BOTTOM_SLACK = 48;
// The reader's position is sent once they have stayed at the bottom this long (ms).
const READ_DEBOUNCE_MS = 1000;

function send(eventName, payload = {}) {
  eventLoop.addEvents([ReflexEvent(eventName, payload)]);
}

// The id of the newest message row shown (rows are `messages-<id>`), or 0.
function newestShownId(list) {
  const id = list.lastElementChild?.id ?? "";
  const number = Number(id.slice(id.lastIndexOf("-") + 1));
  return Number.isInteger(number) && number > 0 ? number : 0;
}

// The reader has seen the bottom when the page is visible and scrolled to it: the room's
// count clears in this tab at once, and the position goes to the server (all the user's
// tabs) once they have stayed there for a moment, never for a hidden tab.
function readingTracker(scroller, list, markRead) {
  let sent = 0;
  let timer = null;
  const check = () => {
    if (document.visibilityState !== "visible" || !isAtBottom(scroller)) return;
    const newest = newestShownId(list);
    if (newest <= sent) return;
    unreadStore.markSeen(newest);
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (document.visibilityState !== "visible" || !isAtBottom(scroller)) return;
      sent = Math.max(sent, newest);
      send(markRead, { message_id: newest });
    }, READ_DEBOUNCE_MS);
  };
  document.addEventListener("visibilitychange", check);
  return {
    check,
    detach: () => {
      clearTimeout(timer);
      document.removeEventListener("visibilitychange", check);
    },
  };
}

function isAtBottom(scroller) {
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight <= BOTTOM_SLACK;
}

function scrollToBottom(scroller) {
  scroller.scrollTop = scroller.scrollHeight;
}

// "3,712 / 4,000" once a draft nears the limit; past it, why it will not be sent. Counted
// in code points after trimming, as the server counts.
function lengthNote(text, maxLength, countFrom) {
  const length = [...text.trim()].length;
  if (length <= countFrom) return { note: "", over: false };
  const count = `${length.toLocaleString("en")} / ${maxLength.toLocaleString("en")}`;
  if (length <= maxLength) return { note: count, over: false };
  const limit = maxLength.toLocaleString("en");
  return { note: `${count}: a message can be at most ${limit} characters.`, over: true };
}

// "Today", "Yesterday", else "Monday, 30 November", with the year when it is not this one.
export function dayLabel(date, now = new Date()) {
  const startOfDay = (moment) => new Date(moment.getFullYear(), moment.getMonth(), moment.getDate());
  const daysAgo = Math.round((startOfDay(now) - startOfDay(date)) / 86_400_000);
  if (daysAgo === 0) return "Today";
  if (daysAgo === 1) return "Yesterday";
  const weekday = date.toLocaleDateString("en-GB", { weekday: "long" });
  const dayAndMonth = date.toLocaleDateString("en-GB", { day: "numeric", month: "long" });
  const year = date.getFullYear() === now.getFullYear() ? "" : ` ${date.getFullYear()}`;
  return `${weekday}, ${dayAndMonth}${year}`;
}

// The first row of each local day gets `data-day` (its separator, drawn by CSS); the others
// lose it. Derived from the rows as they stand, so it stays right whatever was prepended,
// appended or deleted.
function markDays(list) {
  const now = new Date();
  let previousDay = "";
  for (const row of list.children) {
    const sentAt = new Date(row.dataset.at);
    const day = sentAt.toDateString();
    if (day !== previousDay) {
      row.dataset.day = dayLabel(sentAt, now);
    } else {
      delete row.dataset.day;
    }
    previousDay = day;
  }
}

// The message list is one Tab stop (a roving tabindex): the row holding it has tabIndex 0,
// the others -1, and the arrow keys, Home and End move it. A focused row shows its Edit and
// Delete (hidden ones are no Tab stops), so Tab from a row reaches them.
const ROW = "li.message-row";

function rovingFocus(list) {
  let holder = null;
  const rows = () => [...list.querySelectorAll(ROW)];
  const hold = (row) => {
    if (holder && holder !== row) holder.tabIndex = -1;
    holder = row;
    if (row) row.tabIndex = 0;
  };
  // After any change: the holder stays if it is still there, else the newest row.
  const refresh = () => {
    if (!holder || !list.contains(holder)) hold(rows().at(-1) ?? null);
  };
  const onFocusIn = (event) => {
    const row = event.target.closest?.(ROW);
    if (row) hold(row);
  };
  const onKeyDown = (event) => {
    if (!event.target.matches?.(ROW)) return;
    const all = rows();
    const at = all.indexOf(event.target);
    const next = { ArrowUp: all[at - 1], ArrowDown: all[at + 1], Home: all[0], End: all.at(-1) }[
      event.key
    ];
    if (next === undefined) return;
    event.preventDefault();
    next.focus();
  };
  list.addEventListener("focusin", onFocusIn);
  list.addEventListener("keydown", onKeyDown);
  refresh();
  return {
    refresh,
    detach: () => {
      list.removeEventListener("focusin", onFocusIn);
      list.removeEventListener("keydown", onKeyDown);
    },
  };
}

// A code block's copy button copies the block's text and says "Copied" for a moment.
const COPIED_FOR_MS = 1500;

async function copyCode(button) {
  const code = button.parentElement?.querySelector("code");
  if (!code) return;
  const say = (label) => {
    button.setAttribute("aria-label", label);
    button.title = label;
  };
  try {
    await navigator.clipboard.writeText(code.textContent ?? "");
  } catch {
    say("Copying failed");
    return;
  }
  button.dataset.copied = "true";
  say("Copied");
  setTimeout(() => {
    delete button.dataset.copied;
    say("Copy code");
  }, COPIED_FOR_MS);
}

function attach({
  scrollerId,
  listId,
  sentinelId,
  pillId,
  composerId,
  counterId,
  maxLength,
  countFrom,
  loadOlder,
  editLast,
  stopReply,
  markRead,
  announcerId,
}) {
  const scroller = document.getElementById(scrollerId);
  const list = document.getElementById(listId);
  if (!scroller || !list) return undefined;
  const sentinel = document.getElementById(sentinelId);
  const pill = document.getElementById(pillId);
  const composer = document.getElementById(composerId);

  // What the page looked like before the latest DOM change, read in scroll events and
  // after each change: a MutationObserver runs after React commits but before paint.
  let before = {
    first: list.firstElementChild,
    last: list.lastElementChild,
    height: scroller.scrollHeight,
    top: scroller.scrollTop,
    atBottom: true,
  };
  let loadingOlder = false;

  const remember = () => {
    before = {
      first: list.firstElementChild,
      last: list.lastElementChild,
      height: scroller.scrollHeight,
      top: scroller.scrollTop,
      atBottom: isAtBottom(scroller),
    };
  };
  const setPill = (visible) => {
    if (pill) pill.hidden = !visible;
  };

  const roving = rovingFocus(list);
  const reading = readingTracker(scroller, list, markRead);
  const onCopyClick = (event) => {
    const button = event.target.closest?.(".copy-code");
    if (button) copyCode(button);
  };
  list.addEventListener("click", onCopyClick);
  const onMutation = () => {
    markDays(list);
    // Before the scroll position is kept: grouping changes the rows' heights.
    markGroups(list);
    roving.refresh();
    const first = list.firstElementChild;
    const last = list.lastElementChild;
    const kept = (node) => node !== null && list.contains(node);
    if (!kept(before.first) && !kept(before.last)) {
      // First paint of a room, or another room's messages: start at the bottom.
      scrollToBottom(scroller);
      setPill(false);
    } else {
      if (kept(before.first) && first !== before.first) {
        // Older history above: keep the reader's message where it was on screen.
        scroller.scrollTop = before.top + (scroller.scrollHeight - before.height);
        loadingOlder = false;
      }
      if (kept(before.last) && last !== before.last) {
        if (last.dataset.mine === "true" || before.atBottom) {
          scrollToBottom(scroller);
          setPill(false);
        } else {
          setPill(true);
        }
      }
    }
    remember();
    reading.check();
  };

  const mutations = new MutationObserver(onMutation);
  mutations.observe(list, { childList: true });

  // A reply's start and end are announced once each; its tokens are not (the row is
  // aria-busy while it is written).
  const announcer = document.getElementById(announcerId);
  const writing = new Set(["queued", "thinking", "streaming"]);
  const endings = { done: "complete", stopped: "stopped", interrupted: "interrupted", error: "failed" };
  const announce = (text) => {
    if (announcer) announcer.textContent = text;
  };
  const statuses = new MutationObserver((records) => {
    for (const record of records) {
      const row = record.target;
      const before = record.oldValue ?? "";
      const now = row.dataset.status ?? "";
      if (now === before) continue;
      if ((now === "thinking" || now === "streaming") && !["thinking", "streaming"].includes(before)) {
        announce("The assistant is replying.");
      } else if (writing.has(before) && endings[now]) {
        announce(`The assistant's reply is ${endings[now]}.`);
      }
    }
  });
  statuses.observe(list, {
    subtree: true,
    attributes: true,
    attributeFilter: ["data-status"],
    attributeOldValue: true,
  });
  // Rows can grow after they are inserted (markdown, code highlighting, fonts), and the
  // scroller itself shrinks when the composer grows or a line appears under it: a reader
  // who was at the bottom stays there.
  const resizes = new ResizeObserver(() => {
    if (before.atBottom) scrollToBottom(scroller);
    remember();
  });
  resizes.observe(list);
  resizes.observe(scroller);
  const onScroll = () => {
    remember();
    if (before.atBottom) setPill(false);
    reading.check();
  };
  scroller.addEventListener("scroll", onScroll, { passive: true });

  const onPill = () => {
    scrollToBottom(scroller);
    setPill(false);
  };
  pill?.addEventListener("click", onPill);

  let intersections;
  if (sentinel) {
    intersections = new IntersectionObserver(
      (entries) => {
        const visible = entries.some((entry) => entry.isIntersecting);
        // The sentinel says when the room's first message is shown; ask once at a time.
        if (!visible || loadingOlder || sentinel.dataset.atStart === "true") return;
        if (!list.firstElementChild) return;
        loadingOlder = true;
        send(loadOlder);
        // If the answer is empty nothing is prepended; allow another try after a while.
        setTimeout(() => {
          loadingOlder = false;
        }, 1500);
      },
      { root: scroller, rootMargin: "200px 0px 0px 0px" },
    );
    intersections.observe(sentinel);
  }

  const onKeyDown = (event) => {
    if (event.isComposing) return;
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      if (composer.value.trim() !== "") composer.form?.requestSubmit();
    } else if (event.key === "ArrowUp" && composer.value === "") {
      event.preventDefault();
      send(editLast);
    }
  };
  composer?.addEventListener("keydown", onKeyDown);

  // The draft's length, shown near the limit; a draft over it is not sent (the server
  // refuses it too), and stays in the composer.
  const counter = document.getElementById(counterId);
  const showLength = () => {
    const { note, over } = lengthNote(composer.value, maxLength, countFrom);
    counter.textContent = note;
    counter.dataset.over = String(over);
    return over;
  };
  const refuseTooLong = (event) => {
    if (showLength()) {
      event.preventDefault();
      event.stopPropagation();
      composer.focus();
    } else {
      // The composer is emptied once the message is stored.
      counter.textContent = "";
    }
  };
  if (composer && counter) {
    composer.addEventListener("input", showLength);
    composer.form?.addEventListener("submit", refuseTooLong, true);
  }

  // Esc stops the assistant's reply, unless it is closing a dialog.
  const onEscape = (event) => {
    if (event.key !== "Escape" || document.querySelector("[role=dialog],[role=alertdialog]")) {
      return;
    }
    send(stopReply);
  };
  document.addEventListener("keydown", onEscape);

  markDays(list);
  markGroups(list);
  scrollToBottom(scroller);
  remember();
  reading.check();
  return () => {
    mutations.disconnect();
    roving.detach();
    reading.detach();
    list.removeEventListener("click", onCopyClick);
    statuses.disconnect();
    resizes.disconnect();
    intersections?.disconnect();
    scroller.removeEventListener("scroll", onScroll);
    pill?.removeEventListener("click", onPill);
    composer?.removeEventListener("keydown", onKeyDown);
    composer?.removeEventListener("input", showLength);
    composer?.form?.removeEventListener("submit", refuseTooLong, true);
    document.removeEventListener("keydown", onEscape);
  };
}

/**
 * The composer takes the focus each time a room opens (not on a touch screen, where
 * focusing would open the keyboard over it). The tab's title is `useUnread`'s (unread.js).
 * @param {object} options The open room's id and the composer's id.
 */
export function useOpenedRoom({ roomId, composerId }) {
  useEffect(() => {
    if (roomId === null || window.matchMedia("(pointer: coarse)").matches) return;
    document.getElementById(composerId)?.focus();
  }, [roomId]);
  return "";
}

/**
 * What a markdown image shows instead of the image: "image: alt — host". A message's
 * images are never fetched by the viewer's browser (that would reveal every reader's
 * address to the image's host, or make browsers request internal URLs); the reader opens
 * the link if they choose.
 * @param {string | undefined} src The image's URL, as react-markdown sanitised it.
 * @param {string | undefined} alt The image's description.
 */
export function imageLinkLabel(src, alt) {
  let host = "";
  try {
    host = new URL(src ?? "", window.location.href).host;
  } catch {
    // Not a URL: the label names no host.
  }
  const name = (alt ?? "").trim() || "untitled";
  return host ? `image: ${name} — ${host}` : `image: ${name}`;
}

/**
 * Wires the room's scroller, list, sentinel, pill and composer (found by id) once mounted.
 * @param {object} options Element ids and the full names of the two events it may send.
 */
export function useChatRoom(options) {
  useEffect(() => attach(options), [JSON.stringify(options)]);
  return "";
}
