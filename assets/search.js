// The search dialog's browser-side behaviour: the shortcuts that open it, the pause in
// typing before a search, and the keys of its field. Everything here is local UI; the
// server is sent only the events it is given by name, with the field's text or the query
// whose results are on screen (so that the server can ignore an event about results that
// a newer search has replaced).
import { useEffect, useRef } from "react";
import { eventLoop } from "$/utils/context-registry";
import { ReflexEvent } from "$/utils/state";

function send(eventName, payload) {
  eventLoop.addEvents([ReflexEvent(eventName, payload)]);
}

// Where typing goes: `/` is a character there, not a shortcut.
function isTextField(element) {
  if (!element) return false;
  if (element.isContentEditable) return true;
  if (element.tagName === "TEXTAREA" || element.tagName === "SELECT") return true;
  if (element.tagName !== "INPUT") return false;
  const nonText = ["button", "checkbox", "radio", "submit", "reset", "range", "color", "file"];
  return !nonText.includes(element.type);
}

function isOpenShortcut(event) {
  if (event.isComposing || event.altKey) return false;
  // Ctrl+K, and Cmd+K on macOS (where Ctrl+K is the text fields' "kill line").
  if ((event.ctrlKey || event.metaKey) && !event.shiftKey && event.key.toLowerCase() === "k") {
    return true;
  }
  return event.key === "/" && !event.ctrlKey && !event.metaKey && !isTextField(event.target);
}

// Another dialog (editing a message, the phone's room list) keeps its keys.
function anotherDialogIsOpen() {
  return document.querySelector("[role=dialog],[role=alertdialog]") !== null;
}

/**
 * Wires the shortcuts and the search field (found by id, whenever the dialog shows it).
 * @param {object} options Element ids, the pause in ms, the full names of the events it
 *   sends, and what the page shows now: whether the dialog is open, the query whose results
 *   are shown, how many there are and which one is selected.
 */
export function useSearchDialog(options) {
  const shown = useRef(options);
  shown.current = options;
  const closed = useRef(null);
  const { open, cursor, optionIdPrefix } = options;

  useEffect(() => {
    let pause = null;
    // What had the focus when a shortcut opened the dialog: it gets it back on close.
    let returnTo = null;
    const field = () => document.getElementById(shown.current.inputId);
    const cancelPause = () => {
      clearTimeout(pause);
      pause = null;
    };

    const onShortcut = (event) => {
      if (!isOpenShortcut(event)) return;
      if (shown.current.open) {
        event.preventDefault();
        field()?.focus();
        return;
      }
      if (anotherDialogIsOpen()) return;
      event.preventDefault();
      returnTo = document.activeElement;
      document.getElementById(shown.current.buttonId)?.click();
    };

    const onInput = (event) => {
      if (event.target.id !== shown.current.inputId) return;
      cancelPause();
      const query = event.target.value;
      pause = setTimeout(() => {
        pause = null;
        send(shown.current.runSearch, { query });
      }, shown.current.pauseMs);
    };

    const onFieldKey = (event) => {
      const current = shown.current;
      if (event.target.id !== current.inputId || event.isComposing) return;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        send(current.moveCursor, { step: event.key === "ArrowDown" ? 1 : -1 });
      } else if (event.key === "Enter") {
        event.preventDefault();
        cancelPause();
        const query = event.target.value;
        if (current.resultCount > 0 && query === current.shownQuery) {
          send(current.openResult, { index: current.cursor, query });
        } else {
          send(current.runSearch, { query });
        }
      }
    };

    // Radix gives the focus to the dialog's trigger (the header's button) once the dialog
    // has left the page, after its closing animation: when the shortcut opened it, the focus
    // goes on from there to where the shortcut found it.
    let giveBack = null;
    const onClosed = () => {
      cancelPause();
      if (returnTo?.isConnected) giveBack = { target: returnTo, until: performance.now() + 2000 };
      returnTo = null;
    };
    const onFocusIn = (event) => {
      if (!giveBack || event.target.id !== shown.current.buttonId) return;
      const { target, until } = giveBack;
      giveBack = null;
      if (performance.now() < until && target.isConnected) target.focus();
    };

    if (/Mac|iPhone|iPad/.test(navigator.platform)) {
      const hint = document.getElementById(shown.current.hintId);
      if (hint) hint.textContent = "⌘K";
    }

    document.addEventListener("keydown", onShortcut);
    document.addEventListener("input", onInput);
    document.addEventListener("keydown", onFieldKey);
    document.addEventListener("focusin", onFocusIn);
    closed.current = onClosed;
    return () => {
      cancelPause();
      document.removeEventListener("keydown", onShortcut);
      document.removeEventListener("input", onInput);
      document.removeEventListener("keydown", onFieldKey);
      document.removeEventListener("focusin", onFocusIn);
    };
  }, []);

  const wasOpen = useRef(open);
  useEffect(() => {
    if (wasOpen.current && !open) closed.current?.();
    wasOpen.current = open;
  }, [open]);

  useEffect(() => {
    if (!open) return;
    document.getElementById(`${optionIdPrefix}${cursor}`)?.scrollIntoView({ block: "nearest" });
  }, [open, cursor]);
  return "";
}
