#!/usr/bin/env node
// The hookd command. This file is plain JavaScript that parses on any Node, so that an old Node
// gets one clear line instead of a stack trace from a native module or a syntax error.
// Isolates run in a child process that gets --no-node-snapshot; this process needs no flags.
var major = Number(process.versions.node.split(".")[0]);
if (!(major >= 24)) {
  process.stderr.write("hookd needs Node.js 24 or newer (this is " + process.version + ")\n");
  process.exit(1);
}

import("./run-cli.mjs").then(
  function (entry) {
    return entry.runCli(process.argv.slice(2));
  },
  function (error) {
    process.stderr.write("hookd could not start: " + (error && error.stack ? error.stack : String(error)) + "\n");
    process.exit(1);
  },
);
