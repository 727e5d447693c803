import { afterAll } from "vitest";
import { removeAllTempDirs } from "../kit/temp-dirs.js";

// Registered before the test file's own hooks, so it runs after them (hooks run as a stack):
// the file's processes have stopped before their directories go.
afterAll(() => {
  removeAllTempDirs();
});
