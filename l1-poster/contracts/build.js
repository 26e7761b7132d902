// Compiles Inbox.sol (and the contracts it imports) with solcjs (npm `solc`, version pinned below) into Inbox.json (abi + bytecode).
// Usage: node build.js [output path] [contract]   (default: Inbox.json beside this file, Inbox)
// The output is deterministic for a given source and compiler, so a test can recompile and compare.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const PINNED = '0.8.37';
const version = solc.version().split('+')[0];
if (version !== PINNED) {
  console.error(`build.js: solc ${version} found, ${PINNED} required (npm install -g solc@${PINNED})`);
  process.exit(1);
}
const dir = __dirname;
const name = process.argv[3] || 'Inbox';
const out = process.argv[2] || path.join(dir, `${name}.json`);
const file = `${name}.sol`;
const input = {
  language: 'Solidity',
  // Every contract of the directory, so imports between them resolve.
  sources: Object.fromEntries(
    fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.sol'))
      .sort()
      .map((f) => [f, { content: fs.readFileSync(path.join(dir, f), 'utf8') }]),
  ),
  settings: {
    optimizer: { enabled: true, runs: 200 },
    // blobhash() needs Cancun.
    evmVersion: 'cancun',
    // No metadata hash: the bytecode then depends only on the source and the compiler.
    metadata: { bytecodeHash: 'none', appendCBOR: false },
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
  },
};
const result = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (result.errors || []).filter((e) => e.severity === 'error');
if (errors.length > 0) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
const contract = result.contracts[file][name];
const artifact = {
  contractName: name,
  compiler: solc.version(),
  abi: contract.abi,
  bytecode: '0x' + contract.evm.bytecode.object,
};
fs.writeFileSync(out, JSON.stringify(artifact, null, 2) + '\n');
