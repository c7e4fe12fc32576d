// Shared test-controlled state for the stubs: the harness sets the context
// value that useContext returns and reads what the hooks recorded.
export const testHooks = {
  contextValue: null,
  lastSyncExternalStore: null,
  events: [],
};
