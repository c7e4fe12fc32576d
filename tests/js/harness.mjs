// JSON-lines server driving the real assets/streams.js for the pytest suite.
// One process serves a whole test session: each stdin line is a request
// {id, cmd, ...}; each stdout line is {id, ok, result} or {id, ok: false, error}.
import { createInterface } from "node:readline";
import { testHooks } from "./stubs/hooks.mjs";
import { StreamStore, useStream } from "../../assets/streams.js";

// useStream only binds in a browser; the harness is one.
globalThis.window = globalThis;

const describe = (store) => ({
  dom_ids: store.domIds,
  items: store.items,
  is_empty: store.isEmpty,
  last_seq: store.lastSeq,
  epoch: store.epoch,
  awaiting_reset: store.awaitingReset,
  channel: store.channel,
  channel_seq: store.channelSeq,
  tail: store.tail,
  unseen: store.unseen,
});

// A fake of the store Reflex 0.10.1 generates (createStateStore): substate
// snapshots, listeners called synchronously once per delta that changed
// something, and unchanged values keeping their identity.
class FakeReflexStore {
  constructor() {
    this.state = {};
    this.listeners = new Map();
  }
  getSnapshot(name) {
    return this.state[name];
  }
  subscribe(name, listener) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    const set = this.listeners.get(name);
    set.add(listener);
    return () => set.delete(listener);
  }
  dispatch(name, delta) {
    const current = this.state[name] ?? {};
    let next;
    for (const key of Object.keys(delta)) {
      const same =
        Object.hasOwn(current, key) &&
        JSON.stringify(current[key]) === JSON.stringify(delta[key]);
      if (!same) {
        next ??= { ...current };
        next[key] = delta[key];
      }
    }
    if (next === undefined) return;
    this.state[name] = next;
    this.listeners.get(name)?.forEach((listener) => listener());
  }
}

const fakeStores = new Map();
// Per use_stream key: the last result (identity checks) and a notification counter.
const renders = new Map();

const flushMicrotasks = () => new Promise((resolve) => setImmediate(resolve));

const commands = {
  // Fresh stores per stream; deliver each {name: batch} mapping in order.
  run_batches({ deliveries }) {
    const stores = new Map();
    const outcomes = [];
    for (const delivery of deliveries) {
      const step = {};
      for (const [name, batch] of Object.entries(delivery)) {
        if (!stores.has(name)) stores.set(name, new StreamStore());
        step[name] = stores.get(name).applyBatch(batch);
      }
      outcomes.push(step);
    }
    const streams = {};
    for (const [name, store] of stores) streams[name] = describe(store);
    return { outcomes, streams };
  },

  // applyOps without seq rules; reports identity changes of items and objects.
  apply_ops({ steps }) {
    const store = new StreamStore();
    let notified = 0;
    store.subscribe(() => notified++);
    const report = [];
    for (const ops of steps) {
      const beforeItems = store.items;
      const beforeById = new Map(store.items.map((item) => [item.dom_id, item]));
      const beforeSnapshot = store.getSnapshot();
      const changed = store.applyOps(ops);
      report.push({
        changed,
        items_same: store.items === beforeItems,
        snapshot_same: store.getSnapshot() === beforeSnapshot,
        // dom_ids whose item object kept its identity.
        kept: store.items
          .filter((item) => beforeById.get(item.dom_id) === item)
          .map((item) => item.dom_id),
      });
    }
    return { ...describe(store), steps: report, notified };
  },

  fake_store_new({ handle }) {
    fakeStores.set(handle, new FakeReflexStore());
    return null;
  },

  async fake_dispatch({ handle, substate, deltas }) {
    const store = fakeStores.get(handle);
    for (const delta of deltas) store.dispatch(substate, delta);
    await flushMicrotasks();
    return null;
  },

  listener_count({ handle, substate }) {
    return fakeStores.get(handle).listeners.get(substate)?.size ?? 0;
  },

  // Plays one render of a component calling useStream.
  async use_stream({ handle, substate, stream, resync, key }) {
    testHooks.contextValue = handle === null ? null : fakeStores.get(handle);
    const result = useStream(substate, stream, resync);
    const hooked = testHooks.lastSyncExternalStore;
    const record = renders.get(key);
    const previous = record?.result;
    if (record === undefined) {
      const counter = { result, notified: 0 };
      hooked.subscribe(() => counter.notified++);
      renders.set(key, counter);
    } else {
      record.result = result;
    }
    await flushMicrotasks();
    return {
      dom_ids: result.items.map((item) => item.dom_id),
      items: result.items,
      is_empty: result.isEmpty,
      is_loaded: result.isLoaded,
      unseen: result.unseen,
      same_result: previous === result,
      same_items: previous?.items === result.items,
      frozen: Object.isFrozen(result),
      server_snapshot_empty: hooked.getServerSnapshot().items.length === 0,
    };
  },

  notifications({ key }) {
    return renders.get(key).notified;
  },

  async take_events() {
    await flushMicrotasks();
    const events = testHooks.events;
    testHooks.events = [];
    return events;
  },
};

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  if (!line.trim()) continue;
  let id = null;
  let response;
  try {
    const request = JSON.parse(line);
    id = request.id;
    const handler = commands[request.cmd];
    if (!handler) throw new Error(`unknown command ${request.cmd}`);
    response = { id, ok: true, result: await handler(request) };
  } catch (error) {
    response = { id, ok: false, error: String(error?.stack ?? error) };
  }
  process.stdout.write(JSON.stringify(response) + "\n");
}
