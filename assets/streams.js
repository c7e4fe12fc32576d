// Browser half of LiveView-style streams for Reflex.
//
// The server keeps no item list: it sends numbered batches of ops in the state
// var `stream_batches` and forgets them. Some of them are channel batches, built
// once for a whole chat room and numbered per room (`cseq`); a stream applies
// those of the channel it joined. This module holds the items, keyed by DOM
// id, applies each batch exactly once and in order, and hands the items to
// React. The rules are those of docs/stream-wire-format.md; the pure store
// below must stay in step with stream_chat/streams/client_model.py, which the
// property tests run side by side with this file.

import { useContext, useSyncExternalStore } from "react";
import { StateStoreContext, eventLoop } from "$/utils/context-registry";
import { ReflexEvent } from "$/utils/state";

/** Name of the state var that carries the batches (stream name -> batch). */
export const BATCHES_VAR = "stream_batches";
// Reflex 0.10 suffixes every state var with this marker in deltas and in the
// store snapshots (`stream_batches_rx_state_`).
const FIELD_MARKER = "_rx_state_";

export const APPLIED = "applied";
export const DUPLICATE = "duplicate";
export const GAP = "gap";
export const IGNORED = "ignored";

const EMPTY_ITEMS = Object.freeze([]);
const EMPTY_SNAPSHOT = Object.freeze({
  items: EMPTY_ITEMS,
  isEmpty: true,
  isLoaded: false,
  unseen: 0,
});

const own = (object, key) =>
  Object.hasOwn(object, key) ? object[key] : undefined;

// Ops a channel batch may not carry (skipped there): a batch shared by a whole
// room must not clear, rebind or detach one tab's stream.
const CHANNEL_FORBIDDEN_OPS = new Set(["reset", "join", "tail"]);

const isCount = (value) => Number.isInteger(value) && value >= 0;

const isResetBatch = (ops) =>
  Array.isArray(ops) &&
  ops.length > 0 &&
  Array.isArray(ops[0]) &&
  ops[0][0] === "reset";

const indexOfDomId = (list, domId) =>
  list.findIndex((item) => item.dom_id === domId);

// Structural equality of JSON values (items come from JSON deltas).
function jsonEqual(a, b) {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) {
    return false;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((key) => Object.hasOwn(b, key) && jsonEqual(a[key], b[key]));
}

/**
 * The items of one stream as the browser holds them.
 *
 * `items` is replaced by a new array only when a batch changed something, and
 * an item object only when that item's content changed (even across a reset),
 * so React and memoised rows can bail out on identity.
 */
export class StreamStore {
  constructor() {
    /** Ordered item objects, each with its `dom_id` field. */
    this.items = EMPTY_ITEMS;
    this.lastSeq = 0;
    this.epoch = null;
    this.awaitingReset = false;
    // Set by a join op, cleared by a reset: which channel batches apply.
    this.channel = null;
    this.channelSeq = 0;
    // Set by a tail op, restored by a reset: whether channel batches may add
    // items, and how many they tried to add while they could not.
    this.tail = true;
    this.unseen = 0;
    // dom_id -> item, for O(1) membership; positions are looked up in `items`.
    this._byId = new Map();
    this._snapshot = EMPTY_SNAPSHOT;
    this._listeners = new Set();
    // Bound once so useSyncExternalStore sees stable functions.
    this.subscribe = (listener) => {
      this._listeners.add(listener);
      return () => this._listeners.delete(listener);
    };
    this.getSnapshot = () => this._snapshot;
  }

  get isEmpty() {
    return this.items.length === 0;
  }

  get domIds() {
    return this.items.map((item) => item.dom_id);
  }

  /**
   * Apply a batch if the seq rules accept it.
   * @returns {string} APPLIED, DUPLICATE, GAP (ask for a resync) or IGNORED.
   */
  applyBatch(batch) {
    if (Object.hasOwn(batch, "channel")) return this._applyChannelBatch(batch);
    const seq = batch.seq;
    const epoch = batch.epoch ?? null;
    const ops = batch.ops;
    const isReset = isResetBatch(ops);
    let duplicate;
    let accept;
    if (this.lastSeq > 0 && epoch !== this.epoch) {
      // The server's counters started over (its copy of this client's state
      // was lost or replaced): the old seq says nothing about what was missed,
      // so only a reset can resynchronise.
      duplicate = false;
      accept = isReset;
    } else {
      duplicate = seq <= this.lastSeq;
      accept = !duplicate && (seq === this.lastSeq + 1 || isReset);
    }
    if (duplicate) return DUPLICATE;
    if (accept && (isReset || !this.awaitingReset)) {
      try {
        this._applyOps(ops);
      } catch (error) {
        // A malformed batch is a server bug; a reset from a resync repairs it
        // where throwing would break Reflex's delta loop.
        console.error("streams: could not apply batch", batch, error);
        this.awaitingReset = true;
        this._publish();
        return GAP;
      }
      this.lastSeq = seq;
      this.epoch = epoch;
      this.awaitingReset = false;
      this._publish();
      return APPLIED;
    }
    if (this.awaitingReset) return IGNORED;
    this.awaitingReset = true;
    return GAP;
  }

  // The cseq rules of a channel batch; `lastSeq` and `epoch` are left alone.
  _applyChannelBatch(batch) {
    const cseq = batch.cseq;
    if (this.channel === null || batch.channel !== this.channel || !isCount(cseq)) {
      // Another room's broadcast (or none joined yet): not for this stream.
      return IGNORED;
    }
    if (cseq <= this.channelSeq) return DUPLICATE;
    if (this.awaitingReset) return IGNORED;
    if (cseq !== this.channelSeq + 1) {
      this.awaitingReset = true;
      return GAP;
    }
    try {
      this._applyOps(batch.ops, true);
    } catch (error) {
      console.error("streams: could not apply channel batch", batch, error);
      this.awaitingReset = true;
      this._publish();
      return GAP;
    }
    this.channelSeq = cseq;
    this._publish();
    return APPLIED;
  }

  /**
   * Apply ops in order, ignoring the seq rules.
   * @returns {boolean} whether the items changed.
   */
  applyOps(ops) {
    const before = this.items;
    try {
      this._applyOps(ops);
    } finally {
      this._publish();
    }
    return this.items !== before;
  }

  // With `fromChannel` (the ops of a channel batch) reset and join are skipped.
  _applyOps(ops, fromChannel = false) {
    const byId = this._byId;
    const before = this.items;
    let list = before;
    let copied = false;
    // Items removed by a reset or a delete, so that one sent again unchanged
    // (a reconnect re-streaming the same list, a move) keeps its object.
    const retired = new Map();
    // Copy on first write: a batch that changes nothing keeps the old array.
    const writable = () => {
      if (!copied) {
        list = list.slice();
        copied = true;
      }
      return list;
    };
    try {
      for (const op of ops) {
        if (fromChannel && CHANNEL_FORBIDDEN_OPS.has(op[0])) continue;
        switch (op[0]) {
          case "reset":
            this.channel = null;
            this.channelSeq = 0;
            this.tail = true;
            this.unseen = 0;
            if (list.length > 0) {
              for (const [domId, item] of byId) retired.set(domId, item);
              list = [];
              copied = true;
              byId.clear();
            }
            break;
          case "insert": {
            // Not tailing: a channel's new items are counted, not shown.
            const skipped = insertEntries(
              writable, byId, retired, op[1], op[2], op[3], op[4], fromChannel && !this.tail,
            );
            this.unseen += skipped;
            break;
          }
          case "delete":
            if (byId.has(op[1])) {
              const l = writable();
              l.splice(indexOfDomId(l, op[1]), 1);
              retired.set(op[1], byId.get(op[1]));
              byId.delete(op[1]);
            }
            break;
          case "append":
            appendText(writable, byId, op[1], op[2], op[3], op[4]);
            break;
          case "patch":
            patchItem(writable, byId, op[1], op[2]);
            break;
          case "join":
            // A malformed join is skipped like an unknown op.
            if (typeof op[1] === "string" && isCount(op[2])) {
              this.channel = op[1];
              this.channelSeq = op[2];
            }
            break;
          case "tail":
            // A tail without a JSON boolean is skipped like an unknown op.
            if (typeof op[1] === "boolean") {
              this.tail = op[1];
              if (op[1]) this.unseen = 0;
            }
            break;
          default:
          // Unknown ops are skipped so an older client survives a newer server.
        }
      }
    } finally {
      // Each entry updates `list` and `byId` together, so even a batch that
      // throws half-way leaves them consistent.
      if (copied) {
        const unchanged =
          list.length === before.length &&
          list.every((item, index) => item === before[index]);
        if (!unchanged) this.items = list.length > 0 ? list : EMPTY_ITEMS;
      }
    }
  }

  // Make a new snapshot (and tell React) only when something it shows changed.
  _publish() {
    const items = this.items;
    const isLoaded = this.lastSeq > 0;
    const unseen = this.unseen;
    const prev = this._snapshot;
    if (prev.items === items && prev.isLoaded === isLoaded && prev.unseen === unseen) return;
    this._snapshot = Object.freeze({
      items,
      isEmpty: items.length === 0,
      isLoaded,
      unseen,
    });
    for (const listener of this._listeners) listener();
  }
}

// Returns how many new entries `skipNew` kept out.
function insertEntries(writable, byId, retired, at, limit, updateOnly, entries, skipNew) {
  // `pos` is where the next new entry goes, so that a batch keeps its order.
  let pos = at;
  let skipped = 0;
  for (const [domId, item] of entries) {
    // The DOM id is attached once here; renders never copy items.
    let held = { ...item, dom_id: domId };
    const present = byId.get(domId);
    if (present !== undefined) {
      // Updated in place and never moved, whatever `at` says.
      if (jsonEqual(present, held)) continue;
      const l = writable();
      l[indexOfDomId(l, domId)] = held;
      byId.set(domId, held);
      continue;
    }
    if (updateOnly) continue;
    if (skipNew) {
      skipped++;
      continue;
    }
    const previous = retired.get(domId);
    if (previous !== undefined && jsonEqual(previous, held)) held = previous;
    const l = writable();
    if (at === -1) {
      l.push(held);
    } else {
      const index = Math.min(pos, l.length);
      l.splice(index, 0, held);
      pos = index + 1;
    }
    byId.set(domId, held);
    const droppedFront = applyLimit(l, byId, limit);
    // Items dropped above the insertion point shift it up, so the next entry
    // still lands right after the previous one.
    pos = Math.max(pos - droppedFront, 0);
  }
  return skipped;
}

// Trim to `limit`; returns how many items were dropped from the front.
function applyLimit(list, byId, limit) {
  if (limit === null || limit === undefined) return 0;
  const excess = list.length - Math.abs(limit);
  if (excess <= 0) return 0;
  const dropped = limit < 0 ? list.splice(0, excess) : list.splice(limit);
  for (const item of dropped) byId.delete(item.dom_id);
  return limit < 0 ? excess : 0;
}

const HIGH_SURROGATE = /[\uD800-\uDBFF]/;

// UTF-16 index just after the first `count` code points of `text`, or -1 when
// it has fewer. Offsets on the wire count code points (Python's `len`), as
// `Array.from(text)` does: a surrogate pair is one, a lone surrogate is one.
function codePointIndex(text, count) {
  // Without surrogates code points and UTF-16 units coincide.
  if (!HIGH_SURROGATE.test(text)) return count <= text.length ? count : -1;
  let index = 0;
  for (let n = 0; n < count; n++) {
    if (index >= text.length) return -1;
    const unit = text.charCodeAt(index);
    const next = text.charCodeAt(index + 1); // NaN past the end
    const pair = unit >= 0xd800 && unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff;
    index += pair ? 2 : 1;
  }
  return index;
}

// `offset` absent (or null): `item[field] += text`. Otherwise
// `item[field] = current[:offset] + text` in code points, and nothing when the
// text held is shorter than `offset` (an append that arrived out of order).
function appendText(writable, byId, domId, field, text, offset) {
  const item = byId.get(domId);
  // Empty text changes nothing, not even a missing field (the recorder drops
  // such appends, so the client must agree).
  // `dom_id` is the client's own key field; the server never appends to it.
  if (item === undefined || text === "" || field === "dom_id") return;
  // Own properties only: `item.constructor` must not count as a value.
  let current = own(item, field);
  if (current === undefined || current === null) current = "";
  // Concatenating onto a number would differ between Python and JS.
  else if (typeof current !== "string") return;
  let value;
  if (offset === undefined || offset === null) {
    value = current + text;
  } else {
    if (!isCount(offset)) return;
    const cut = codePointIndex(current, offset);
    if (cut === -1) return;
    value = current.slice(0, cut) + text;
  }
  // Rewriting a field with what it holds (a re-delivered offset append)
  // keeps the item object.
  if (value === current) return;
  const next = { ...item, [field]: value };
  const l = writable();
  l[indexOfDomId(l, domId)] = next;
  byId.set(domId, next);
}

// `item = {...item, ...fields}`, keeping the item's place and its `dom_id`.
function patchItem(writable, byId, domId, fields) {
  // Fields that are not a JSON object are skipped like an unknown op.
  if (typeof fields !== "object" || fields === null || Array.isArray(fields)) {
    return;
  }
  const item = byId.get(domId);
  if (item === undefined) return;
  // Spreading copies own enumerable keys with define semantics, so a
  // `__proto__` key from JSON becomes a plain field instead of a prototype
  // (an assignment loop would call the setter). `dom_id` is the client's own
  // key field: whatever the fields say, it stays.
  const next = { ...item, ...fields, dom_id: item.dom_id };
  // A patch that changes nothing (a repeated status) keeps the item object.
  if (jsonEqual(item, next)) return;
  const l = writable();
  l[indexOfDomId(l, domId)] = next;
  byId.set(domId, next);
}

// ---------------------------------------------------------------------------
// React binding
// ---------------------------------------------------------------------------

/**
 * The `stream_batches` value of a substate snapshot, whichever key it uses.
 * @param {object|undefined} snapshot
 */
export function batchesFromSnapshot(snapshot) {
  if (!snapshot) return undefined;
  return own(snapshot, BATCHES_VAR + FIELD_MARKER) ?? own(snapshot, BATCHES_VAR);
}

// One binding per (substate, stream) for the life of the page. It is never
// unsubscribed: a stream whose component is unmounted (another route) keeps
// applying batches, so coming back shows a current list and no seq is missed.
const bindings = new Map();

function bind(reflexStore, substateName, streamName, resyncEventName) {
  const key = JSON.stringify([substateName, streamName]);
  let binding = bindings.get(key);
  if (binding === undefined) {
    binding = {
      substateName,
      streamName,
      resyncEventName,
      store: new StreamStore(),
      reflexStore: null,
      unsubscribe: null,
      lastBatch: undefined,
    };
    bindings.set(key, binding);
  }
  binding.resyncEventName = resyncEventName;
  if (binding.reflexStore !== reflexStore) {
    // Subscribing here, during the first render, rather than in an effect:
    // a delta that lands between render and effect would otherwise be missed
    // by us while React already shows the state after it.
    binding.unsubscribe?.();
    binding.reflexStore = reflexStore;
    const target = binding;
    binding.unsubscribe = reflexStore.subscribe(substateName, () =>
      pull(target),
    );
    // The snapshot may already hold a batch that arrived before this render.
    pull(binding);
  }
  return binding;
}

// Reflex calls the substate's listeners once per delta, synchronously, so
// every batch is seen here even when several deltas land in one frame.
function pull(binding) {
  const batches = batchesFromSnapshot(
    binding.reflexStore.getSnapshot(binding.substateName),
  );
  const batch = batches ? own(batches, binding.streamName) : undefined;
  // Other vars of the substate notify too; the same object is the same batch.
  if (!batch || batch === binding.lastBatch) return;
  binding.lastBatch = batch;
  if (binding.store.applyBatch(batch) === GAP) requestResync(binding);
}

function requestResync(binding) {
  const eventName = binding.resyncEventName;
  if (!eventName) return;
  const payload = { name: binding.streamName };
  // Deferred: a gap can be found while React renders the first useStream, and
  // queueing an event there would update another component mid-render.
  queueMicrotask(() => eventLoop.addEvents([ReflexEvent(eventName, payload)]));
}

const noopSubscribe = () => () => {};
const emptySnapshot = () => EMPTY_SNAPSHOT;

/**
 * Items of one stream, for rendering with `key={item.dom_id}`.
 *
 * @param {string} substateName Dotted full name of the Reflex substate.
 * @param {string} streamName Stream name (key of `stream_batches`).
 * @param {string} resyncEventName Full event name sent as `{name}` after a gap.
 * @returns {{items: object[], isEmpty: boolean, isLoaded: boolean, unseen: number}}
 */
export function useStream(substateName, streamName, resyncEventName) {
  const reflexStore = useContext(StateStoreContext);
  // On the server there is no websocket and a module-level registry would be
  // shared between requests, so the server render is always empty.
  const store =
    reflexStore && typeof window !== "undefined"
      ? bind(reflexStore, substateName, streamName, resyncEventName).store
      : null;
  return useSyncExternalStore(
    store ? store.subscribe : noopSubscribe,
    store ? store.getSnapshot : emptySnapshot,
    emptySnapshot,
  );
}
