// Entry for `node --import ./tests/js/register.mjs`: installs the loader that
// maps the browser-only imports of assets/streams.js onto stubs, so Node runs
// the real module file unchanged.
import { register } from "node:module";

register("./loader.mjs", import.meta.url);
