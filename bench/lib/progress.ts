/** A module's progress lines on stderr (the harness keeps them in the run's `.log`), stamped with the module and the time. */
export function progressFor(module: string): (line: string) => void {
  return (line) => process.stderr.write(`[${module} ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}
