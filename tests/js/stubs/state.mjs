// Stand-in for Reflex's `$/utils/state`: ReflexEvent as in reflex 0.10.1.
export const ReflexEvent = (name, payload = {}, event_actions = {}, handler = null) => {
  const e = { name };
  if (payload && Object.keys(payload).length > 0) {
    e.payload = payload;
  }
  if (event_actions && Object.keys(event_actions).length > 0) {
    e.event_actions = event_actions;
  }
  if (handler !== null) {
    e.handler = handler;
  }
  return e;
};
