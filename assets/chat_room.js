// The room page's browser-side behaviour: scrolling, the history sentinels, the keys, the
// copy buttons and what the reader has seen. Everything here is local UI; the only messages
// to the server are the events it is given by name (older and newer history, the room's
// start and its present, edit my last message, stop my reply, read up to a message).
//
// The browser holds a window of at most three pages of the room (the server says which).
// Scrolling rules:
// - opening a room (or a reset into another window) shows the bottom; a link to a message
//   shows that message in the middle, highlighted for a moment;
// - whatever changes above or below the reader (a page loaded or dropped at either end, a
//   row that grows: images, code), the first message visible at the top stays where it was
//   on screen: it is measured before each change and put back after it, before paint;
// - at the live end, a new message at the bottom scrolls into view only when the reader is
//   at the bottom, otherwise the "new messages" pill appears; the reader's own messages
//   always scroll. Away from the live end new messages are not added (the "Jump to present"
//   bar counts them).
import { useEffect } from "react";
import { eventLoop } from "$/utils/context-registry";
import { ReflexEvent } from "$/utils/state";
import { markGroups } from "./looks.js";
import { unreadStore } from "./unread.js";

// How close to the bottom (px) still counts as "at the bottom".
const BOTTOM_SLACK = 48;
// The divider above the first unread message, and the room it gets above it when the room
// opens there (px).
const UNREAD_DIVIDER_ID = "unread-divider";
const DIVIDER_MARGIN = 8;
// The reader's position is sent once they have stayed at the bottom this long (ms).
const READ_DEBOUNCE_MS = 1000;
// How far (px) beyond the view a sentinel asks for the next page.
const SENTINEL_MARGIN = 200;
// How long a request for a page may stay unanswered before another may be sent. Every
// answer changes the list or a sentinel, which allows the next at once; this is only for
// one that was lost, and must be longer than a slow answer (two pages for one request would
// drop the message being read off the window).
const RETRY_AFTER_MS = 10_000;
// How long a linked message stays highlighted.
const HIGHLIGHT_MS = 2500;
// The query parameter of a link to a message.
const LINK_PARAM = "m";

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

function rovingFocus(list, { home, end }) {
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
    if (event.key === "Home" || event.key === "End") {
      // The room's first message and its present, which may not be in the window yet.
      event.preventDefault();
      (event.key === "Home" ? home : end)();
      return;
    }
    const all = rows();
    const at = all.indexOf(event.target);
    const next = { ArrowUp: all[at - 1], ArrowDown: all[at + 1] }[event.key];
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

// The link of a message, as an absolute URL, to the clipboard; "Link copied" for a moment.
async function copyLink(button, announce) {
  const say = (label) => {
    button.setAttribute("aria-label", label);
    button.title = label;
  };
  try {
    await navigator.clipboard.writeText(new URL(button.dataset.link, window.location.origin).href);
  } catch {
    say("Copying failed");
    return;
  }
  button.dataset.copied = "true";
  say("Link copied");
  announce("Link copied");
  setTimeout(() => {
    delete button.dataset.copied;
    say("Copy link");
  }, COPIED_FOR_MS);
}

// Once the linked message is shown (or said to be missing), the address no longer names it:
// a reconnect or a reload, which load the page's address again, must not move a reader who
// has scrolled on back to it. Replacing the entry is invisible to the router.
function dropLinkFromAddress() {
  const url = new URL(window.location.href);
  if (!url.searchParams.has(LINK_PARAM)) return;
  url.searchParams.delete(LINK_PARAM);
  window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
}

function attach({
  scrollerId,
  listId,
  sentinelId,
  endSentinelId,
  pillId,
  jumpId,
  composerId,
  counterId,
  maxLength,
  countFrom,
  loadOlder,
  loadNewer,
  jumpToPresent,
  jumpToStart,
  editLast,
  stopReply,
  markRead,
  announcerId,
}) {
  const scroller = document.getElementById(scrollerId);
  const list = document.getElementById(listId);
  if (!scroller || !list) return undefined;
  const sentinel = document.getElementById(sentinelId);
  const endSentinel = document.getElementById(endSentinelId);
  const pill = document.getElementById(pillId);
  const composer = document.getElementById(composerId);
  const announcer = document.getElementById(announcerId);
  const announce = (text) => {
    if (announcer) announcer.textContent = text;
  };

  const atLiveEnd = () => scroller.dataset.atEnd !== "false";
  const atRoomStart = () => sentinel?.dataset.atStart === "true";
  const offsetOf = (row) => row.getBoundingClientRect().top - scroller.getBoundingClientRect().top;
  // The first row whose bottom is below the scroller's top edge: the message being read.
  const topRow = () => {
    const top = scroller.getBoundingClientRect().top;
    for (const row of list.children) {
      if (row.getBoundingClientRect().bottom > top + 1) return row;
    }
    return null;
  };

  // What the page looked like before the latest change, read in scroll events and after
  // each change: a MutationObserver runs after React commits but before paint.
  let before = { first: null, last: null, atBottom: true, top: 0, anchor: null, offset: 0 };
  // With `keep`, after this code put the anchor back: it stays the message being read
  // (the rows now above it are not what the reader was reading, and may still grow).
  const remember = (keep = false) => {
    const held = keep && before.anchor !== null && list.contains(before.anchor);
    const anchor = held ? before.anchor : topRow();
    before = {
      first: list.firstElementChild,
      last: list.lastElementChild,
      atBottom: isAtBottom(scroller),
      top: scroller.scrollTop,
      anchor,
      offset: held ? before.offset : anchor ? offsetOf(anchor) : 0,
    };
  };
  // Where this code last scrolled to: the scroll event that follows is its own, and must
  // not take the place the anchor is at then as the reader's (rows may have grown between
  // the scroll and its event, which the resize observer, running after it, puts right).
  let ownScrollTop = null;
  const scrollTo = (top) => {
    scroller.scrollTop = top;
    ownScrollTop = scroller.scrollTop;
  };
  // Puts the message being read back where it was; false when it is gone.
  const keepAnchor = () => {
    const { anchor, offset } = before;
    if (!anchor || !list.contains(anchor)) return false;
    const moved = offsetOf(anchor) - offset;
    if (Math.abs(moved) >= 0.5) scrollTo(scroller.scrollTop + moved);
    return true;
  };
  const toBottom = () => scrollTo(scroller.scrollHeight);
  const setPill = (visible) => {
    if (pill) pill.hidden = !visible;
  };

  // Where the next window shown goes: "top" (Home), "bottom" (End, Jump to present), or
  // the linked message to centre.
  let intent = null;
  let pendingLink = scroller.dataset.highlight || null;
  const centreLink = () => {
    const row = pendingLink && document.getElementById(`messages-${pendingLink}`);
    if (!row || !list.contains(row)) return false;
    pendingLink = null;
    scrollTo(scroller.scrollTop + offsetOf(row) - (scroller.clientHeight - row.offsetHeight) / 2);
    row.dataset.highlighted = "true";
    setTimeout(() => delete row.dataset.highlighted, HIGHLIGHT_MS);
    dropLinkFromAddress();
    return true;
  };

  // A room opened at its first unread message (older than its last page, so the window is
  // not at the live end): the "New messages" divider goes to the top.
  const showDivider = () => {
    const divider = document.getElementById(UNREAD_DIVIDER_ID);
    if (atLiveEnd() || !divider || !list.contains(divider)) return false;
    scrollTo(scroller.scrollTop + offsetOf(divider) - DIVIDER_MARGIN);
    return true;
  };

  // One request at a time in each direction; an answer (or a while) allows the next.
  let loadingOlder = false;
  let loadingNewer = false;
  const timers = new Set();
  const later = (fn) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, RETRY_AFTER_MS);
    timers.add(timer);
  };
  const near = (element) => {
    if (!element) return false;
    const view = scroller.getBoundingClientRect();
    const box = element.getBoundingClientRect();
    return box.bottom >= view.top - SENTINEL_MARGIN && box.top <= view.bottom + SENTINEL_MARGIN;
  };
  const checkSentinels = () => {
    if (!list.firstElementChild || pendingLink) return;
    // The reader may have scrolled since the last scroll event (a timer can run first): the
    // answer must be anchored on what they see now.
    if (scroller.scrollTop !== before.top && ownScrollTop === null) remember();
    if (!loadingOlder && !atRoomStart() && near(sentinel)) {
      loadingOlder = true;
      send(loadOlder);
      later(() => {
        loadingOlder = false;
        checkSentinels();
      });
    }
    if (!loadingNewer && !atLiveEnd() && near(endSentinel)) {
      loadingNewer = true;
      send(loadNewer);
      later(() => {
        loadingNewer = false;
        checkSentinels();
      });
    }
  };

  const roving = rovingFocus(list, {
    home: () => {
      if (atRoomStart()) {
        scroller.scrollTop = 0;
        list.querySelector(ROW)?.focus({ preventScroll: true });
      } else {
        intent = "top";
        send(jumpToStart);
      }
    },
    end: () => toPresent(),
  });
  const reading = readingTracker(scroller, list, markRead);
  const focusInList = () => list.contains(document.activeElement);
  const toPresent = () => {
    if (atLiveEnd()) {
      toBottom();
      setPill(false);
      if (focusInList()) [...list.querySelectorAll(ROW)].at(-1)?.focus({ preventScroll: true });
    } else {
      intent = "bottom";
      send(jumpToPresent);
    }
  };
  const onListClick = (event) => {
    const code = event.target.closest?.(".copy-code");
    if (code) copyCode(code);
    const link = event.target.closest?.(".copy-link");
    if (link) copyLink(link, announce);
  };
  list.addEventListener("click", onListClick);

  // `reattached`: this same change brought the window back to the live end (scrolling
  // forward to it): the rows below appear under the reader, who is not moved to them
  // (unless the newest is the reader's own: sending goes back to the present).
  // Returns whether the message being read was kept in place (rather than scrolled away).
  const onListChange = (reattached) => {
    const first = list.firstElementChild;
    const last = list.lastElementChild;
    const kept = (node) => node !== null && list.contains(node);
    if (first !== before.first) loadingOlder = false;
    if (last !== before.last) loadingNewer = false;
    if (intent === "top") {
      intent = null;
      scrollTo(0);
      if (focusInList() || document.activeElement === document.body) {
        list.querySelector(ROW)?.focus({ preventScroll: true });
      }
      return false;
    }
    if (intent === "bottom") {
      intent = null;
      toBottom();
      return false;
    }
    if (!kept(before.first) && !kept(before.last)) {
      // First paint of a room, or another window of it: start at the bottom.
      setPill(false);
      if (document.getElementById("link-notice")) dropLinkFromAddress();
      if (keepAnchor()) return true;
      if (!showDivider()) toBottom();
      return false;
    }
    const anchored = keepAnchor();
    if (atLiveEnd() && kept(before.last) && last !== before.last) {
      if (last.dataset.mine === "true" || (before.atBottom && !reattached)) {
        toBottom();
        setPill(false);
        return false;
      }
      if (!reattached) setPill(true);
    }
    return anchored;
  };

  // The list's rows, and the facts the server sets on the scroller and the sentinels: one
  // observer, so that a window and the link to centre in it, which arrive in one commit,
  // are handled in one go.
  const onChange = (records) => {
    const changed = new Set(records.map((record) => record.attributeName ?? "rows"));
    if (changed.has("data-link-opened")) pendingLink = scroller.dataset.highlight || null;
    if (changed.has("data-at-start") && atRoomStart()) {
      loadingOlder = false;
      announce(document.getElementById("start-of-room")?.textContent ?? "");
    }
    if (changed.has("data-at-end")) {
      loadingNewer = false;
      if (atLiveEnd()) announce("Showing the latest messages.");
      else setPill(false);
    }
    if (changed.has("rows")) {
      markDays(list);
      // Before the scroll position is kept: grouping changes the rows' heights.
      markGroups(list);
      roving.refresh();
    }
    let anchored = true;
    if (centreLink()) anchored = false;
    else if (changed.has("rows")) anchored = onListChange(changed.has("data-at-end"));
    remember(anchored);
    checkSentinels();
    reading.check();
  };
  const mutations = new MutationObserver(onChange);
  mutations.observe(list, { childList: true });
  mutations.observe(scroller, { attributes: true, attributeFilter: ["data-link-opened", "data-at-end"] });
  if (sentinel) mutations.observe(sentinel, { attributes: true, attributeFilter: ["data-at-start"] });

  // A reply's start and end are announced once each; its tokens are not (the row is
  // aria-busy while it is written).
  const writing = new Set(["queued", "thinking", "streaming"]);
  const endings = { done: "complete", stopped: "stopped", interrupted: "interrupted", error: "failed" };
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
  // who was at the bottom of the live end stays there, any other keeps their message.
  const resizes = new ResizeObserver(() => {
    if (before.atBottom && atLiveEnd()) {
      toBottom();
      remember();
    } else {
      remember(keepAnchor());
    }
  });
  resizes.observe(list);
  resizes.observe(scroller);
  const onScroll = () => {
    const own = ownScrollTop !== null && Math.abs(scroller.scrollTop - ownScrollTop) < 1;
    ownScrollTop = null;
    if (!own) remember();
    if (isAtBottom(scroller)) setPill(false);
    reading.check();
  };
  scroller.addEventListener("scroll", onScroll, { passive: true });

  const onPill = () => {
    toBottom();
    setPill(false);
  };
  pill?.addEventListener("click", onPill);
  // The bar is rendered only while away from the live end; its click also sends the event.
  const onJumpClick = (event) => {
    if (event.target.closest?.(`#${jumpId}`)) intent = "bottom";
  };
  document.addEventListener("click", onJumpClick, true);

  const intersections = new IntersectionObserver(checkSentinels, {
    root: scroller,
    rootMargin: `${SENTINEL_MARGIN}px 0px`,
  });
  for (const element of [sentinel, endSentinel]) if (element) intersections.observe(element);

  // Page Up and Down move a screen through the list (the sentinels load more on the way),
  // from a message or from the scroller itself.
  const onPageKey = (event) => {
    if (event.key !== "PageUp" && event.key !== "PageDown") return;
    if (event.target !== scroller && !event.target.matches?.(ROW)) return;
    event.preventDefault();
    const direction = event.key === "PageUp" ? -1 : 1;
    scroller.scrollTop += direction * Math.max(scroller.clientHeight - 40, 40);
    if (event.target.matches?.(ROW)) {
      const row = direction < 0 ? topRow() : [...list.children].reverse().find((r) => offsetOf(r) < scroller.clientHeight);
      row?.focus({ preventScroll: true });
    }
  };
  scroller.addEventListener("keydown", onPageKey);

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
  if (!centreLink() && !showDivider()) toBottom();
  remember();
  reading.check();
  return () => {
    mutations.disconnect();
    roving.detach();
    reading.detach();
    list.removeEventListener("click", onListClick);
    statuses.disconnect();
    resizes.disconnect();
    intersections.disconnect();
    for (const timer of timers) clearTimeout(timer);
    scroller.removeEventListener("scroll", onScroll);
    scroller.removeEventListener("keydown", onPageKey);
    pill?.removeEventListener("click", onPill);
    document.removeEventListener("click", onJumpClick, true);
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
