// ESLint (make test runs `npm run lint`): typescript-eslint's recommended rules and the
// React hooks rules. Stylistic rules stay off: formatting is not what this checks.
import js from "@eslint/js";
import globals from "globals";
import reactHooks from "eslint-plugin-react-hooks";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist", "node_modules", "src/generated"] },
  {
    files: ["**/*.{ts,tsx,js}"],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    languageOptions: { ecmaVersion: 2023, globals: { ...globals.browser, ...globals.node } },
    plugins: { "react-hooks": reactHooks },
    rules: {
      // the classic hooks rules; the React Compiler rules of the plugin's 7.x preset
      // (refs, set-state-in-effect, ...) would ask for a rewrite of working hooks
      "react-hooks/rules-of-hooks": "error",
      "react-hooks/exhaustive-deps": "error",
      // tsc (noUnusedLocals/Parameters) checks these too; a leading _ marks one unused on purpose
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
);
