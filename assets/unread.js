// The sidebar's unread counts and mention badges, the tab's title, and mention
// notifications. Everything is derived here from three kinds of news the server sends in
// the rooms state's `unread_news` var (`stream_chat/state/unread_feeds.py`), outside the
// tab's state, each read once as it lands:
//
// - "summary": the user's unread state in every room, when the tab joins (or asks again);
// - "posted": a new message in some room, the same event for every tab of every user;
// - "read": the user's position in a room moved (in any of their tabs).
//
// A room's count is the server's count up to the newest message it had seen (`newest`),
// plus the new messages of other people heard of since. The rules are commutative, so news
// arriving in any order ends in the same counts: a message at or below `newest` was counted
// by the server already; a position never moves back.
import { useContext, useEffect, useSyncExternalStore } from "react";
import { StateStoreContext, eventLoop } from "$/utils/context-registry";
import { ReflexEvent } from "$/utils/state";

const NEWS_VAR = "unread_news_rx_state_";
const COUNT_CAP = 99;
// New messages kept per room beyond the server's count: past this the badge says 99+
// whatever else comes.
const MAX_HEARD = 200;

export function countLabel(count) {
  if (!(count > 0)) return "";
  return count > COUNT_CAP ? `${COUNT_CAP}+` : String(count);
}

function notificationPermission() {
  if (typeof window === "undefined" || !("Notification" in window)) return "unsupported";
  return window.Notification.permission;
}

export class UnreadStore {
  constructor() {
    this.me = null;
    this.openRoomId = null;
    this.rooms = new Map();
    this.listeners = new Set();
    this.snapshot = { byRoom: {}, total: 0, notifications: notificationPermission() };
    this.subscribe = (listener) => {
      this.listeners.add(listener);
      return () => this.listeners.delete(listener);
    };
    this.getSnapshot = () => this.snapshot;
  }

  room(roomId) {
    let room = this.rooms.get(roomId);
    if (room === undefined) {
      room = { lastRead: 0, unread: 0, mentions: 0, newest: 0, heard: [] };
      this.rooms.set(roomId, room);
    }
    return room;
  }

  /** Applies one piece of news; returns the "posted" event when it mentions this user. */
  apply(news) {
    let mention = null;
    if (news.kind === "summary") {
      this.me = news.user_id;
      for (const state of news.rooms) this.merge(state);
    } else if (news.kind === "read") {
      this.merge(news.room);
    } else if (news.kind === "posted") {
      mention = this.hear(news);
    } else {
      return null;
    }
    this.publish();
    return mention;
  }

  // The server's state of one room: taken unless it is behind what this tab knows.
  merge(state) {
    const room = this.room(state.room_id);
    if (state.last_read < room.lastRead) return;
    room.lastRead = state.last_read;
    room.unread = state.unread;
    room.mentions = state.mentions;
    room.newest = Math.max(room.newest, state.newest);
    room.heard = room.heard.filter((message) => message.id > state.newest);
  }

  hear(posted) {
    const room = this.room(posted.room_id);
    const id = posted.message_id;
    if (id <= room.newest || room.heard.some((message) => message.id === id)) return null;
    room.heard.push({ id, sender: posted.sender_id, mentioned: posted.mentioned ?? [] });
    if (room.heard.length > MAX_HEARD) room.heard.shift();
    const forMe = this.me !== null && posted.sender_id !== this.me;
    return forMe && (posted.mentioned ?? []).includes(this.me) ? posted : null;
  }

  /** This tab has shown the open room up to `messageId`: its count clears at once (the
   * server's "read" follows, for the other tabs). */
  markSeen(messageId) {
    if (this.openRoomId === null) return;
    const room = this.room(this.openRoomId);
    if (messageId <= room.lastRead) return;
    room.lastRead = messageId;
    if (messageId >= room.newest) {
      room.unread = 0;
      room.mentions = 0;
    }
    this.publish();
  }

  setOpenRoom(roomId) {
    if (roomId === this.openRoomId) return;
    this.openRoomId = roomId;
    this.publish();
  }

  refreshPermission() {
    this.publish();
  }

  publish() {
    const byRoom = {};
    let total = 0;
    for (const [roomId, room] of this.rooms) {
      const heard = room.heard.filter(
        (message) => message.id > room.lastRead && message.sender !== this.me,
      );
      const unread = room.unread + heard.length;
      const mentions =
        room.mentions + heard.filter((message) => message.mentioned.includes(this.me)).length;
      total += unread;
      // The room open in this tab shows no badge: the reader is looking at it.
      const shown = roomId !== this.openRoomId;
      byRoom[roomId] = {
        label: shown ? countLabel(unread) : "",
        mentions: shown ? countLabel(mentions) : "",
      };
    }
    this.snapshot = { byRoom, total, notifications: notificationPermission() };
    for (const listener of this.listeners) listener();
  }
}

export const unreadStore = new UnreadStore();

/** The badge of one room in a snapshot ("" for none). */
export function unreadLabel(snapshot, roomId) {
  return snapshot.byRoom[roomId]?.label ?? "";
}

export function mentionLabel(snapshot, roomId) {
  return snapshot.byRoom[roomId]?.mentions ?? "";
}

function notify(posted, roomName) {
  if (document.visibilityState !== "hidden" || notificationPermission() !== "granted") return;
  const where = roomName ? ` in #${roomName}` : "";
  try {
    // One notification per message, whichever of the user's hidden tabs shows it first:
    // the same tag replaces, it does not add.
    new window.Notification(`${posted.sender_name} mentioned you${where}`, {
      // The server wrote mentions as they read (`@Ada Lovelace`).
      body: posted.snippet ?? "",
      tag: `streamchat-message-${posted.message_id}`,
    });
  } catch {
    // Some browsers (Android's) only show notifications from a service worker.
  }
}

let asking = false;

async function askPermission(store) {
  if (asking || notificationPermission() !== "default") return;
  asking = true;
  try {
    await window.Notification.requestPermission();
  } catch {
    // An old promise-less API or a refusal: the control shows what the browser decided.
  } finally {
    asking = false;
  }
  store.refreshPermission();
}

// The news binding is made once per page, during the first render (as streams.js does):
// Reflex calls a substate's listeners once per delta, so each piece of news is read once.
let binding = null;

function bind(reflexStore, substateName, refreshEvent) {
  if (binding?.reflexStore === reflexStore) return binding;
  binding?.unsubscribe();
  const current = { reflexStore, lastNews: undefined, roomNames: {}, unsubscribe: null };
  const pull = () => {
    const news = reflexStore.getSnapshot(substateName)?.[NEWS_VAR];
    if (!news || news === current.lastNews) return;
    current.lastNews = news;
    const mention = unreadStore.apply(news);
    if (mention) notify(mention, current.roomNames[mention.room_id]);
  };
  current.unsubscribe = reflexStore.subscribe(substateName, pull);
  if (binding === null) {
    // The permission is asked only after a click on the sidebar's control (one listener
    // for the page, however many components show the counts).
    document.addEventListener("click", (event) => {
      if (event.target.closest?.("[data-enable-notifications]")) askPermission(unreadStore);
    });
  }
  binding = current;
  const earlier = reflexStore.getSnapshot(substateName)?.[NEWS_VAR];
  if (earlier && Object.keys(earlier).length > 0) {
    // News landed before this page was drawn: the summary may have been overwritten by
    // what came after it, so ask for it again.
    pull();
    queueMicrotask(() => eventLoop.addEvents([ReflexEvent(refreshEvent, {})]));
  }
  return current;
}

const noopSubscribe = () => () => {};
const emptySnapshot = () => ({ byRoom: {}, total: 0, notifications: "unsupported" });
const serverSnapshot = emptySnapshot();

/**
 * The sidebar's counts, and the tab's title with the unread count in front:
 * `(3) #sre-team · StreamChat`.
 * @param {object} options The rooms state's full name, the event that asks for the
 *   summary again, the title, the open room's id (or null) and the rooms ({id, name}).
 */
export function useUnread({ substateName, refreshEvent, title, openRoomId, rooms }) {
  const reflexStore = useContext(StateStoreContext);
  const live = reflexStore && typeof window !== "undefined";
  const current = live ? bind(reflexStore, substateName, refreshEvent) : null;
  if (current) {
    current.roomNames = Object.fromEntries((rooms ?? []).map((room) => [room.id, room.name]));
  }
  const snapshot = useSyncExternalStore(
    live ? unreadStore.subscribe : noopSubscribe,
    live ? unreadStore.getSnapshot : () => serverSnapshot,
    () => serverSnapshot,
  );
  useEffect(() => {
    unreadStore.setOpenRoom(openRoomId ?? null);
  }, [openRoomId]);
  useEffect(() => {
    if (!title) return;
    const count = countLabel(snapshot.total);
    document.title = count ? `(${count}) ${title}` : title;
  }, [title, snapshot.total]);
  return snapshot;
}
