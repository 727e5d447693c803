// Lint rules for lifeboat: typescript-eslint's type-aware recommended set, the promise rules
// that matter most in a daemon (no floating or misused promises), and the layering of src/.
import { readFileSync } from "node:fs";
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

/*
 * Layering: data flows one way (intake → journal → engine → ports → adapters). Each folder
 * of src/ may not import the folders named here; folder names are unique in src/, so a
 * pattern on a path segment names the folder wherever the import starts from.
 */
const ADAPTERS = ["store", "fencing", "nova", "openstack", "notify", "intake", "alertmanager", "prometheus", "etcd", "ha", "gates"];
const OUTER = ["engine", "app", "http", "cli", "doctor"];
const EVERYTHING = [...ADAPTERS, ...OUTER, "domain", "config", "util"];
const LAYERS = {
  // The model and the ports: nothing but small utilities.
  "src/domain": { folders: EVERYTHING.filter((f) => !["domain", "util"].includes(f)), files: ["logging", "metrics"] },
  "src/util": { folders: EVERYTHING.filter((f) => f !== "util"), files: ["logging", "metrics"] },
  // The engine speaks to the world only through the ports of domain/.
  "src/engine": { folders: [...ADAPTERS, ...OUTER.filter((f) => f !== "engine"), "config"], files: [] },
  // Adapters implement ports; they never reach up into the engine or the wiring.
  ...Object.fromEntries(ADAPTERS.map((a) => [`src/${a}`, { folders: OUTER, files: [] }])),
  "src/http": { folders: ["app", "cli", "doctor"], files: [] },
  "src/config": { folders: ["engine", "app", "cli", "doctor"], files: [] },
  // The rest of src/ (cli, app, doctor, the top-level files) only keeps off the sandbox.
  "src": { folders: [], files: [] },
};
// The simulated site is a package of its own that a production install leaves out: lifeboat
// never imports it; `demo` and `sandbox` load it at run time (src/cli/sandbox-package.ts).
const NO_SANDBOX = {
  group: ["@lifeboat/sandbox", "@lifeboat/sandbox/*", "**/packages/**"],
  message: "src/ may not import the simulated site (not part of a production install): src/cli/sandbox-package.ts loads it at run time.",
};
const layering = Object.entries(LAYERS).map(([dir, { folders, files }]) => ({
  files: [`${dir}/**/*.ts`],
  // A file gets its own folder's rule, not the catch-all's (flat config: the last block wins).
  ...(dir === "src" ? { ignores: Object.keys(LAYERS).filter((d) => d !== "src").map((d) => `${d}/**`) } : {}),
  rules: {
    "no-restricted-imports": [
      "error",
      {
        patterns: [
          NO_SANDBOX,
          ...folders.map((f) => ({ group: [`**/${f}/**`, `../${f}`, `../../${f}`], message: `${dir}/ may not import ${f}/: see the layering in eslint.config.js.` })),
          ...files.map((f) => ({ group: [`**/${f}.js`], message: `${dir}/ may not import ${f}.ts: see the layering in eslint.config.js.` })),
        ],
      },
    ],
  },
}));

/*
 * The simulated site stands alone: its files (one flat src/) import node's built-ins, each
 * other, and the dependencies its own package.json declares; nothing of lifeboat, nothing
 * another package merely happens to have installed.
 */
const sandboxPackage = JSON.parse(readFileSync(new URL("./packages/sandbox/package.json", import.meta.url), "utf8"));
const sandboxDeps = Object.keys(sandboxPackage.dependencies ?? {}).map((d) => d.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&"));
const sandboxAlone = {
  files: ["packages/sandbox/**/*.ts"],
  rules: {
    "no-restricted-imports": [
      "error",
      {
        patterns: [
          {
            regex: `^(?!node:|\\./[^/]+$|(?:${sandboxDeps.join("|")})(?:/|$))`,
            message: "packages/sandbox imports node's built-ins (node:…), its own files (./x.js) and the dependencies in its package.json only.",
          },
        ],
      },
    ],
  },
};

export default tseslint.config(
  { ignores: ["dist/**", "packages/*/dist/**", "node_modules/**", "var/**", "coverage/**", "bench/results/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: { arguments: false } }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/consistent-type-imports": "error",
      "no-console": "off",
    },
  },
  {
    files: ["**/*.js"],
    ...tseslint.configs.disableTypeChecked,
  },
  ...layering,
  sandboxAlone,
  {
    // The console's script runs in the browser.
    files: ["src/http/console/assets/**/*.js"],
    languageOptions: { globals: globals.browser },
  },
);
