// Loads the CLI. Until the compiled build exists this runs the TypeScript sources through tsx.
import { register } from "tsx/esm/api";

export async function runCli(argv) {
  register();
  const { main } = await import("../core/cli.ts");
  process.exitCode = await main(argv);
}
