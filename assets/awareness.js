// Awareness in the browser: who is online or away, who has the room open, who posted there,
// who is typing. The server's feeds send it as signals in the rooms state's `live_signals`
// var (never a state the server keeps): a picture when the tab joins a feed, then changes,
// at most two updates a second. This module keeps them in one small store keyed by user id,
// draws the presence dots through one generated stylesheet (any element with
// `data-user-id` gets `--presence-color`), and sends the composer's throttled typing
// notices and the tab's input reports. It builds no code or markup from server data.
import { useContext, useEffect, useMemo, useSyncExternalStore } from "react";
import { StateStoreContext, eventLoop } from "$/utils/context-registry";
import { ReflexEvent } from "$/utils/state";

export const SIGNALS_VAR = "live_signals";
const FIELD_MARKER = "_rx_state_";

// Timings (seconds on the server; here in ms): see stream_chat/typing_status.py.
export const TYPING_REFRESH_MS = 5000;
export const TYPING_IDLE_MS = 5000;
export const TYPING_EXPIRES_MS = 15000;
// Input is reported at most once a minute: away comes after five minutes without any.
export const ACTIVITY_REPORT_MS = 60000;

const own = (object, key) => (object && Object.hasOwn(object, key) ? object[key] : undefined);
const isUserId = (key) => /^[1-9][0-9]{0,9}$/.test(key);
const isName = (value) => typeof value === "string";
const STATUSES = new Set(["online", "away"]);

/** "Ada is typing…", "Ada and Alan are typing…", "Several people are typing…", or "". */
export function typingLine(names) {
  if (names.length === 0) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return "Several people are typing…";
}

/** The store: plain data in, a new snapshot object out whenever something changed. */
export class AwarenessStore {
  constructor() {
    this.presence = new Map(); // user id -> "online" | "away"
    this.room = null; // {id, roster: Map, posters: Map, typing: Map(id -> {name, until})}
    this.listeners = new Set();
    this.snapshot = this.#snapshot();
    this.subscribe = this.subscribe.bind(this);
    this.getSnapshot = this.getSnapshot.bind(this);
  }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  getSnapshot() {
    return this.snapshot;
  }

  /** Applies one `live_signals` value; `now` in ms. */
  apply(signals, now) {
    let changed = false;
    const presence = own(signals, "presence");
    if (presence && typeof presence === "object") changed = this.#applyPresence(presence) || changed;
    const room = own(signals, "room");
    if (room && typeof room === "object") changed = this.#applyRoom(room, now) || changed;
    if (changed) this.#publish();
    return changed;
  }

  /** Drops typists not refreshed in time; returns the next expiry (ms) or null. */
  expire(now) {
    const typing = this.room?.typing;
    if (!typing) return null;
    let next = null;
    let changed = false;
    for (const [id, typist] of typing) {
      if (typist.until <= now) {
        typing.delete(id);
        changed = true;
      } else if (next === null || typist.until < next) {
        next = typist.until;
      }
    }
    if (changed) this.#publish();
    return next;
  }

  #applyPresence(presence) {
    const users = own(presence, "users");
    if (!users || typeof users !== "object") return false;
    if (own(presence, "full") === true) this.presence.clear();
    for (const [id, status] of Object.entries(users)) {
      if (!isUserId(id)) continue;
      if (STATUSES.has(status)) this.presence.set(id, status);
      else this.presence.delete(id);
    }
    return true;
  }

  #applyRoom(room, now) {
    const id = own(room, "id");
    if (!Number.isInteger(id)) return false;
    if (own(room, "full") === true || this.room === null) {
      if (own(room, "full") !== true) return false; // changes of a room we have no picture of
      this.room = { id, roster: new Map(), posters: new Map(), typing: new Map() };
    }
    if (this.room.id !== id) return false; // a late update of the room this tab left
    const people = (value, target) => {
      if (!value || typeof value !== "object") return;
      target.clear();
      for (const [userId, name] of Object.entries(value)) {
        if (isUserId(userId) && isName(name)) target.set(userId, name);
      }
    };
    people(own(room, "roster"), this.room.roster);
    people(own(room, "posters"), this.room.posters);
    const typing = own(room, "typing");
    if (typing && typeof typing === "object") {
      if (own(room, "full") === true) this.room.typing.clear();
      for (const [userId, entry] of Object.entries(typing)) {
        if (!isUserId(userId) || !Array.isArray(entry) || !isName(entry[0])) continue;
        const seconds = Number.isFinite(entry[1]) ? Math.min(entry[1], 15) : 15;
        this.room.typing.set(userId, { name: entry[0], until: now + seconds * 1000 });
      }
    }
    const stopped = own(room, "stopped");
    if (Array.isArray(stopped)) for (const userId of stopped) this.room.typing.delete(String(userId));
    return true;
  }

  #snapshot() {
    const room = this.room;
    return {
      presence: new Map(this.presence),
      roomId: room ? room.id : null,
      roster: room ? new Map(room.roster) : new Map(),
      posters: room ? new Map(room.posters) : new Map(),
      typists: room ? [...room.typing].map(([id, t]) => ({ id, name: t.name })) : [],
    };
  }

  #publish() {
    this.snapshot = this.#snapshot();
    for (const listener of this.listeners) listener();
  }
}

/** Who to list in the members panel: in the room now, then the others who posted there;
 * each with a status. `selfId` is marked as "you". */
export function membersOf(snapshot, selfId) {
  const self = String(selfId);
  const entry = (id, name, here) => {
    const status = snapshot.presence.get(id) ?? "offline";
    const you = id === self;
    return { id, name, here, status, you, label: you ? `${name} (you)` : name };
  };
  const byName = (a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id);
  const here = [...snapshot.roster].map(([id, name]) => entry(id, name, true)).sort(byName);
  const others = [...snapshot.posters]
    .filter(([id]) => !snapshot.roster.has(id))
    .map(([id, name]) => entry(id, name, false))
    .sort(byName);
  return { here, others };
}

// The dot on an avatar slot (components/avatars.py): drawn only for a user with a rule below.
const DOT_RULE =
  ".avatar-slot:not([data-assistant])::after{content:'';position:absolute;right:-2px;" +
  "bottom:-2px;width:38%;height:38%;border-radius:50%;background:var(--presence-color);" +
  "box-shadow:0 0 0 2px var(--color-panel-solid, #fff);display:var(--presence-display,none)}";

/** The presence dots: one rule per user who is online or away, nothing for the others. */
export function presenceCss(presence) {
  const rules = [DOT_RULE];
  for (const [id, status] of presence) {
    if (!isUserId(id)) continue;
    const color = status === "online" ? "var(--green-9)" : "var(--amber-9)";
    rules.push(`[data-user-id="${id}"]{--presence-color:${color};--presence-display:block}`);
  }
  return rules.join("\n");
}

// One store for the page: the presence of everyone, the open room's awareness.
const store = new AwarenessStore();
let boundTo = null;
let unsubscribeReflex = null;
let lastSignals;
let expiryTimer = null;
let styleElement = null;

function scheduleExpiry() {
  clearTimeout(expiryTimer);
  const next = store.expire(Date.now());
  if (next !== null) expiryTimer = setTimeout(scheduleExpiry, Math.max(50, next - Date.now()));
}

function drawDots() {
  if (typeof document === "undefined") return;
  if (styleElement === null) {
    styleElement = document.createElement("style");
    styleElement.id = "presence-dots";
    document.head.append(styleElement);
  }
  styleElement.textContent = presenceCss(store.snapshot.presence);
}

function pull(reflexStore, substateName) {
  const snapshot = reflexStore.getSnapshot(substateName);
  const signals = own(snapshot, SIGNALS_VAR + FIELD_MARKER) ?? own(snapshot, SIGNALS_VAR);
  // Other vars of the substate notify too; the same object is the same update.
  if (!signals || signals === lastSignals) return;
  lastSignals = signals;
  if (store.apply(signals, Date.now())) {
    drawDots();
    scheduleExpiry();
  }
}

function bind(reflexStore, substateName) {
  if (boundTo === reflexStore) return;
  // Subscribed during the first render: an update between render and effect is not lost.
  unsubscribeReflex?.();
  boundTo = reflexStore;
  unsubscribeReflex = reflexStore.subscribe(substateName, () => pull(reflexStore, substateName));
  pull(reflexStore, substateName);
}

const send = (eventName, payload) =>
  queueMicrotask(() => eventLoop.addEvents([ReflexEvent(eventName, payload)]));

// The composer's typing notices: "typing" at most once per TYPING_REFRESH_MS while keys
// are pressed, "stopped" when the draft is sent, cleared or idle for TYPING_IDLE_MS.
function typingNotices(composer, roomId, eventName) {
  let typing = false;
  let lastSent = 0;
  let idleTimer = null;
  const say = (isTyping) => {
    typing = isTyping;
    lastSent = isTyping ? Date.now() : 0;
    send(eventName, { room_id: roomId, is_typing: isTyping });
  };
  const stop = () => {
    clearTimeout(idleTimer);
    if (typing) say(false);
  };
  const onInput = () => {
    if (composer.value.trim() === "") return stop();
    if (!typing || Date.now() - lastSent >= TYPING_REFRESH_MS) say(true);
    clearTimeout(idleTimer);
    idleTimer = setTimeout(stop, TYPING_IDLE_MS);
  };
  const form = composer.form;
  composer.addEventListener("input", onInput);
  form?.addEventListener("submit", stop);
  return () => {
    composer.removeEventListener("input", onInput);
    form?.removeEventListener("submit", stop);
    stop();
  };
}

// Input anywhere in the tab, reported at most once per ACTIVITY_REPORT_MS (connecting
// counts as input on the server).
function activityReports(eventName) {
  let lastReport = Date.now();
  const onInput = () => {
    if (Date.now() - lastReport < ACTIVITY_REPORT_MS) return;
    lastReport = Date.now();
    send(eventName, {});
  };
  const kinds = ["keydown", "pointerdown", "wheel", "touchstart"];
  for (const kind of kinds) document.addEventListener(kind, onInput, { passive: true });
  return () => {
    for (const kind of kinds) document.removeEventListener(kind, onInput);
  };
}

const noopSubscribe = () => () => {};
const emptySnapshot = () => EMPTY;
const EMPTY = new AwarenessStore().snapshot;

/**
 * Mounts the page's awareness once: the signals binding and the dots, the activity
 * reports and (with an open room) the composer's typing notices.
 * @param {object} options signalsState (full name of the rooms state), roomId,
 *   composerId, typingEvent, activityEvent and refreshEvent (full event names).
 */
export function useAwarenessBehaviour({
  signalsState,
  roomId,
  composerId,
  typingEvent,
  activityEvent,
  refreshEvent,
}) {
  const reflexStore = useContext(StateStoreContext);
  if (reflexStore && typeof window !== "undefined") bind(reflexStore, signalsState);
  // Updates that reached the page before this listened are gone (the state var holds the
  // last one only): the feeds send their pictures again, for each room shown.
  useEffect(() => send(refreshEvent, {}), [refreshEvent, roomId]);
  useEffect(() => activityReports(activityEvent), [activityEvent]);
  useEffect(() => {
    const composer = document.getElementById(composerId);
    if (!composer || roomId === null || roomId === undefined) return undefined;
    return typingNotices(composer, roomId, typingEvent);
  }, [composerId, roomId, typingEvent]);
  return "";
}

/**
 * The awareness of the open room, for rendering: the typing line (never your own) and the
 * members panel's two lists, each member with a status.
 * @param {object} options selfId (the user of this tab), roomId (the room shown).
 */
export function useAwareness({ selfId, roomId }) {
  const reflexStore = useContext(StateStoreContext);
  const live = reflexStore && typeof window !== "undefined";
  const snapshot = useSyncExternalStore(
    live ? store.subscribe : noopSubscribe,
    live ? store.getSnapshot : emptySnapshot,
    emptySnapshot,
  );
  return useMemo(() => {
    const self = String(selfId);
    const current = snapshot.roomId === roomId;
    const names = current ? snapshot.typists.filter((t) => t.id !== self).map((t) => t.name) : [];
    const { here, others } = current ? membersOf(snapshot, selfId) : { here: [], others: [] };
    return { typingLine: typingLine(names), here, others, hereCount: here.length };
  }, [snapshot, selfId, roomId]);
}
