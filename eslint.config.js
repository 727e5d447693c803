// Lint rules for lifeboat: typescript-eslint's type-aware recommended set, the promise rules
// that matter most in a daemon (no floating or misused promises), and the layering of src/.
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

/*
 * Layering: data flows one way (intake → journal → engine → ports → adapters). Each folder
 * of src/ may not import the folders named here; folder names are unique in src/, so a
 * pattern on a path segment names the folder wherever the import starts from.
 */
const ADAPTERS = ["store", "fencing", "nova", "openstack", "notify", "intake", "alertmanager", "prometheus", "etcd", "ha", "gates"];
const OUTER = ["engine", "app", "http", "cli", "doctor", "sandbox"];
const EVERYTHING = [...ADAPTERS, ...OUTER, "domain", "config", "util"];
const LAYERS = {
  // The model and the ports: nothing but small utilities.
  "src/domain": { folders: EVERYTHING.filter((f) => !["domain", "util"].includes(f)), files: ["logging", "metrics"] },
  "src/util": { folders: EVERYTHING.filter((f) => f !== "util"), files: ["logging", "metrics"] },
  // The engine speaks to the world only through the ports of domain/.
  "src/engine": { folders: [...ADAPTERS, ...OUTER.filter((f) => f !== "engine"), "config"], files: [] },
  // Adapters implement ports; they never reach up into the engine or the wiring.
  ...Object.fromEntries(ADAPTERS.map((a) => [`src/${a}`, { folders: OUTER, files: [] }])),
  "src/http": { folders: ["app", "cli", "doctor", "sandbox"], files: [] },
  "src/config": { folders: ["engine", "app", "cli", "doctor", "sandbox"], files: [] },
  // The simulated site stands alone: it knows lifeboat only from the outside.
  "src/sandbox": { folders: EVERYTHING.filter((f) => f !== "sandbox"), files: ["logging", "metrics", "version"] },
};
const layering = Object.entries(LAYERS).map(([dir, { folders, files }]) => ({
  files: [`${dir}/**/*.ts`],
  rules: {
    "no-restricted-imports": [
      "error",
      {
        patterns: [
          ...folders.map((f) => ({ group: [`**/${f}/**`, `../${f}`, `../../${f}`], message: `${dir}/ may not import ${f}/: see the layering in eslint.config.js.` })),
          ...files.map((f) => ({ group: [`**/${f}.js`], message: `${dir}/ may not import ${f}.ts: see the layering in eslint.config.js.` })),
        ],
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "var/**", "coverage/**", "bench/results/**"] },
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
  {
    // The console's script runs in the browser.
    files: ["src/http/console/assets/**/*.js"],
    languageOptions: { globals: globals.browser },
  },
);
