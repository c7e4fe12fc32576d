// ESM resolve hook: `react` and Reflex's generated `$/utils/...` modules do not
// exist under Node; point them at the small stubs next to this file.
const STUBS = {
  react: "./stubs/react.mjs",
  "$/utils/context-registry": "./stubs/context-registry.mjs",
  "$/utils/state": "./stubs/state.mjs",
};

export async function resolve(specifier, context, nextResolve) {
  if (Object.hasOwn(STUBS, specifier)) {
    return {
      url: new URL(STUBS[specifier], import.meta.url).href,
      shortCircuit: true,
    };
  }
  return nextResolve(specifier, context);
}
