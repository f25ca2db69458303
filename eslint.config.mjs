import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'dist-bench/**', 'node_modules/**', 'helm/**', 'coverage/**'] },
  js.configs.recommended,
  // Type-aware: floating promises, misused promises, unsafe `any`, needless assertions… need the types to be seen.
  ...tseslint.configs.recommendedTypeChecked,
  { languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } } },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': ['error', { selector: 'ExportDefaultDeclaration', message: 'named exports only' }],
      // An `async` function that implements a Promise-returning interface without awaiting is fine: the contract
      // is the Promise (fakes, handlers, plugins that answer at once).
      '@typescript-eslint/require-await': 'off',
      // Passing on what was thrown (or an abort's reason) as it is, is not inventing a non-Error rejection.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
    },
  },
  {
    // Tests read untyped JSON (API answers, fixtures, logs) on purpose and assert on it.
    files: ['test/**', 'bench/**', 'scripts/**', 'sim/**'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-base-to-string': 'off',
      '@typescript-eslint/restrict-template-expressions': 'off',
      '@typescript-eslint/no-redundant-type-constituents': 'off',
    },
  },
  // Tool configs must default-export, and are not part of the TypeScript project.
  { files: ['*.config.ts', '*.config.mjs', '*.cjs'], rules: { 'no-restricted-syntax': 'off' } },
  { files: ['*.mjs', '*.cjs'], extends: [tseslint.configs.disableTypeChecked] },
  { files: ['*.cjs'], languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } } },
);
