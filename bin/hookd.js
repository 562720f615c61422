#!/usr/bin/env node
// hookd is written in TypeScript and runs from source through tsx's loader. Isolates run in a
// child process that gets --no-node-snapshot; this process needs no special flags.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../core/cli.ts");
const code = await main(process.argv.slice(2));
process.exitCode = code;
