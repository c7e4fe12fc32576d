// Mentions in the browser: highlighting them in rendered messages (a remark plugin), and the
// `@` autocomplete of the composer and the edit box.
//
// The syntax and the rule for what counts are the Mentions context's
// (stream_chat/mentions.py): `@` (not after a letter, digit, `_` or `@`), then a strong span
// holding only `name|id`; and the word `@assistant`. Code is never a mention: code spans and
// blocks are not text nodes, so this plugin never sees them.
import { useEffect } from "react";
import { eventLoop } from "$/utils/context-registry";
import { ReflexEvent } from "$/utils/state";

const WORD_OR_AT = /[\p{L}\p{N}_@]/u;
const NAMED_ID = /^([^|*\n]*[^|*\s][^|*\n]*)\|([1-9][0-9]{0,9})$/u;
const ASSISTANT = /(?<![\p{L}\p{N}_@])@assistant(?![\p{L}\p{N}_])/giu;
const MAX_ID = 2 ** 31 - 1;
const NOT_TEXT = new Set(["code", "inlineCode", "math", "inlineMath", "html"]);

function mentionNode(text, properties) {
  return {
    type: "mention",
    data: { hName: "span", hProperties: { className: ["mention"], ...properties } },
    children: [{ type: "text", value: text }],
  };
}

// The user id a strong node mentions when the text before it ends in a free-standing `@`.
function mentionedId(before, strong) {
  if (before?.type !== "text" || !before.value.endsWith("@")) return null;
  if (before.value.length > 1 && WORD_OR_AT.test(before.value.at(-2))) return null;
  if (strong.children.length !== 1 || strong.children[0].type !== "text") return null;
  const named = NAMED_ID.exec(strong.children[0].value);
  if (!named || Number(named[2]) > MAX_ID) return null;
  return { name: named[1], id: named[2] };
}

function splitAssistant(node) {
  const parts = [];
  let from = 0;
  for (const match of node.value.matchAll(ASSISTANT)) {
    if (match.index > from) parts.push({ type: "text", value: node.value.slice(from, match.index) });
    parts.push(mentionNode(match[0], { dataAssistant: "true" }));
    from = match.index + match[0].length;
  }
  if (from === 0) return [node];
  if (from < node.value.length) parts.push({ type: "text", value: node.value.slice(from) });
  return parts;
}

function markMentions(parent, viewerId) {
  const children = [];
  for (const child of parent.children) {
    const before = children.at(-1);
    const mention = child.type === "strong" ? mentionedId(before, child) : null;
    if (mention) {
      before.value = before.value.slice(0, -1);
      if (before.value === "") children.pop();
      const mine = mention.id === viewerId ? { dataMe: "true" } : {};
      children.push(mentionNode(`@${mention.name}`, { dataUserId: mention.id, ...mine }));
      continue;
    }
    if (!NOT_TEXT.has(child.type) && Array.isArray(child.children)) markMentions(child, viewerId);
    children.push(child);
  }
  parent.children = children.flatMap((child) => (child.type === "text" ? splitAssistant(child) : [child]));
}

/**
 * A remark plugin: mentions become `<span class="mention" data-user-id="3">@Ada</span>`
 * (`data-me` when it names the viewer, `data-assistant` for `@assistant`). Only text nodes
 * are made, so no HTML from the message can get through.
 * @param {{viewerId?: number}} options Who is reading.
 */
export function remarkMentions(options) {
  const viewerId = String(options?.viewerId ?? "");
  return (tree) => {
    markMentions(tree, viewerId);
  };
}

// The autocomplete

// Diacritics and case ignored: "jose" finds "José".
export function folded(text) {
  return String(text ?? "")
    .normalize("NFD")
    .replace(/\p{M}/gu, "")
    .toLocaleLowerCase();
}

// What is being typed after an `@` that starts a word, up to the caret; null when the caret
// is not in such a word. A query may hold spaces ("ada lo"), not a new line nor another `@`.
const TYPED = /(?:^|[^\p{L}\p{N}_@])@([^\n@*|]{0,40})$/u;

export function typedMention(text, caret) {
  const match = TYPED.exec(text.slice(0, caret));
  if (!match) return null;
  return { start: caret - match[1].length - 1, query: match[1] };
}

// Whether a person (or `@assistant`) is offered for this query: the name or one of its words
// begins with it.
export function matches(name, query) {
  const wanted = folded(query).trim();
  if (wanted === "") return true;
  const full = folded(name);
  return full.startsWith(wanted) || full.split(/\s+/).some((word) => word.startsWith(wanted));
}

const SHOWN = 8;

function send(eventName) {
  eventLoop.addEvents([ReflexEvent(eventName, {})]);
}

// Text typed into a textarea as if by the keyboard: it keeps the undo history, and React's
// onChange hears it (the edit box is a controlled field).
function typeInto(field, start, end, text) {
  field.focus();
  field.setSelectionRange(start, end);
  if (document.execCommand?.("insertText", false, text)) return;
  field.setRangeText(text, start, end, "end");
  field.dispatchEvent(new Event("input", { bubbles: true }));
}

function attach({ fields, loadPeople, roomId }) {
  // Field id → its listbox's id. The edit box comes and goes with its dialog, so events are
  // caught on the window, not on the fields.
  const listboxOf = new Map(fields.map(({ fieldId, listboxId }) => [fieldId, listboxId]));
  let open = null; // {field, listbox, start, query, options, active}
  let askedFor = null;
  // New people arrived while the list is open (the observer is set in `update`).
  const arrivals = new MutationObserver(() => filter());

  const setExpanded = (field, listbox, expanded) => {
    field.setAttribute("aria-expanded", String(expanded));
    if (listbox) listbox.dataset.open = String(expanded);
    if (!expanded) field.removeAttribute("aria-activedescendant");
  };

  const close = () => {
    if (!open) return;
    setExpanded(open.field, open.listbox, false);
    for (const option of open.options) option.removeAttribute("aria-selected");
    open = null;
  };

  const highlight = (index) => {
    if (!open || open.options.length === 0) return;
    const count = open.options.length;
    open.active = ((index % count) + count) % count;
    open.options.forEach((option, at) => option.setAttribute("aria-selected", String(at === open.active)));
    const chosen = open.options[open.active];
    open.field.setAttribute("aria-activedescendant", chosen.id);
    chosen.scrollIntoView({ block: "nearest" });
  };

  // Shows the options that match what is typed (at most SHOWN). The active one stays if it
  // is still shown (people may arrive while one chooses), else the first is active.
  const filter = () => {
    if (!open) return;
    const wasActive = open.options[open.active];
    const shown = [];
    for (const option of open.listbox.querySelectorAll("[role=option]")) {
      const offered = shown.length < SHOWN && matches(option.dataset.name, open.query);
      option.dataset.match = String(offered);
      option.removeAttribute("aria-selected");
      if (offered) shown.push(option);
    }
    open.options = shown;
    setExpanded(open.field, open.listbox, shown.length > 0);
    if (shown.length > 0) highlight(Math.max(0, shown.indexOf(wasActive)));
  };

  const update = (field) => {
    const listbox = document.getElementById(listboxOf.get(field.id));
    const typed = field.selectionStart === field.selectionEnd ? typedMention(field.value, field.selectionStart) : null;
    if (!listbox || !typed) {
      close();
      return;
    }
    if (askedFor !== roomId) {
      // Once per room: the people to offer, recent posters first.
      askedFor = roomId;
      send(loadPeople);
    }
    if (open?.listbox !== listbox) {
      arrivals.disconnect();
      arrivals.observe(listbox, { childList: true, subtree: true });
    }
    if (open && open.field !== field) close();
    open = { field, listbox, start: typed.start, query: typed.query, options: [], active: 0 };
    filter();
  };

  const choose = (option) => {
    if (!open || !option) return;
    const { field, start } = open;
    const end = field.selectionStart;
    close();
    typeInto(field, start, end, `${option.dataset.mention} `);
  };

  const fieldOf = (target) => (target instanceof HTMLTextAreaElement && listboxOf.has(target.id) ? target : null);

  const onInput = (event) => {
    const field = fieldOf(event.target);
    if (field) update(field);
  };
  // Keys go to the open list first (the capture phase on the window, ahead of the composer's
  // own keys and the dialog's Esc); otherwise they do what they did.
  const onKeyDown = (event) => {
    if (!open || event.isComposing || event.target !== open.field) return;
    const handled = {
      ArrowDown: () => highlight(open.active + 1),
      ArrowUp: () => highlight(open.active - 1),
      Enter: () => choose(open.options[open.active]),
      Tab: () => choose(open.options[open.active]),
      Escape: () => close(),
    }[event.key];
    const withShift = event.shiftKey && (event.key === "Enter" || event.key === "Tab");
    if (!handled || withShift || open.options.length === 0) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    handled();
  };
  // The caret moved without typing (a click, Home, the arrows left and right).
  const onSelection = () => {
    const field = fieldOf(document.activeElement);
    if (field && (open || typedMention(field.value, field.selectionStart))) update(field);
  };
  const onFocusOut = (event) => {
    if (open && event.target === open.field) close();
  };
  // A press on an option must not take the focus from the field.
  const onPointerDown = (event) => {
    const option = event.target.closest?.("[role=option]");
    if (!open || !option || !open.listbox.contains(option)) return;
    event.preventDefault();
    choose(option);
  };

  window.addEventListener("keydown", onKeyDown, true);
  document.addEventListener("input", onInput, true);
  document.addEventListener("selectionchange", onSelection);
  document.addEventListener("focusout", onFocusOut, true);
  document.addEventListener("mousedown", onPointerDown, true);
  return () => {
    close();
    arrivals.disconnect();
    window.removeEventListener("keydown", onKeyDown, true);
    document.removeEventListener("input", onInput, true);
    document.removeEventListener("selectionchange", onSelection);
    document.removeEventListener("focusout", onFocusOut, true);
    document.removeEventListener("mousedown", onPointerDown, true);
  };
}

/**
 * The `@` autocomplete on the given fields (textareas, found by id when events reach them).
 * @param {object} options `fields`: [{fieldId, listboxId}]; `loadPeople`: the event that
 * streams the people to offer; `roomId`: the open room (people are asked for once per room).
 */
export function useMentionAutocomplete(options) {
  useEffect(() => attach(options), [JSON.stringify(options)]);
  return "";
}
