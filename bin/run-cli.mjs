// Loads the CLI from the compiled build (dist/, made by `npm run build`, and by `npm install` in
// a clone through `prepare`). No TypeScript loader: hookd runs plain JavaScript.
export async function runCli(argv) {
  let cli;
  try {
    cli = await import("../dist/core/cli.js");
  } catch (error) {
    if (error?.code === "ERR_MODULE_NOT_FOUND" && String(error.message).includes("/dist/core/cli.js")) {
      process.stderr.write("hookd is not built: run `npm run build` (or `npm install`) in " + new URL("..", import.meta.url).pathname + "\n");
      process.exitCode = 1;
      return;
    }
    throw error;
  }
  process.exitCode = await cli.main(argv);
}
