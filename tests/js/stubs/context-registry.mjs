// Stand-in for Reflex's generated `$/utils/context-registry`.
import { testHooks } from "./hooks.mjs";

export const StateStoreContext = { displayName: "StateStoreContext" };

export const eventLoop = {
  addEvents: (events) => {
    testHooks.events.push(...events);
  },
};
