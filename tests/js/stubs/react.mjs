// Just enough of React for calling useStream as a plain function: the harness
// plays the part of a component render.
import { testHooks } from "./hooks.mjs";

export function useContext(_context) {
  return testHooks.contextValue;
}

export function useSyncExternalStore(subscribe, getSnapshot, getServerSnapshot) {
  testHooks.lastSyncExternalStore = { subscribe, getSnapshot, getServerSnapshot };
  return getSnapshot();
}

// chat_room.js's hooks are not run in Node: only its plain functions are tested there.
export function useEffect(_effect, _deps) {}

// awareness.js's view hook memoises its lists; in Node it is a plain call.
export function useMemo(factory, _deps) {
  return factory();
}
