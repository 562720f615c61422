// The README's seed-to-catalog table lists every CRM event of seed 004 with exactly the arguments
// the catalog takes (names and which are optional): a decision cannot go missing from it.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { crmEvents } from "../../core/integrations/crm/catalog.ts";

const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

function readmeRows(): Map<string, { args: string[]; decision: string }> {
  const start = readme.indexOf("| event | arguments (`?`: optional) | decision |");
  expect(start, "the argument-by-argument table is in the README").toBeGreaterThan(0);
  const rows = new Map<string, { args: string[]; decision: string }>();
  for (const line of readme.slice(start).split("\n").slice(2)) {
    if (!line.startsWith("| `")) break;
    const [event, args, decision] = line.split(" | ").map((cell) => cell.replace(/^\| /, "").replace(/ \|$/, ""));
    rows.set(event!.replace(/`/g, ""), { args: args!.split(", ").map((a) => a.replace(/`/g, "")), decision: decision! });
  }
  return rows;
}

describe("README: seed 004 against the catalog", () => {
  it("has one row per CRM event, each with the catalog's arguments and a decision: 144 in all", () => {
    const rows = readmeRows();
    expect([...rows.keys()].sort()).toEqual(Object.keys(crmEvents).sort());
    let count = 0;
    for (const [name, schema] of Object.entries(crmEvents)) {
      const json = z.toJSONSchema(schema as z.ZodType, { io: "input", unrepresentable: "any" }) as { properties?: Record<string, unknown>; required?: string[] };
      const required = new Set(json.required ?? []);
      const args = Object.keys(json.properties ?? {}).map((key) => `${key}${required.has(key) ? "" : "?"}`);
      count += args.length;
      expect(rows.get(name)!.args, name).toEqual(args);
      expect(rows.get(name)!.decision, name).toMatch(/^(kept|changed|added)/);
    }
    expect(count).toBe(144);
  });
});
