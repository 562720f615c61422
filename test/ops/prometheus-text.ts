/**
 * A strict reader of the Prometheus text exposition format (version 0.0.4), so a test can tell
 * that /metrics is what a Prometheus server would accept, not merely that it contains a name.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  type: "counter" | "gauge" | "histogram" | "summary" | "untyped";
  help?: string;
}

export interface Exposition {
  families: Map<string, Family>;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

/** Parses the text or throws an error naming the offending line. */
export function parsePrometheusText(text: string): Exposition {
  const families = new Map<string, Family>();
  const samples: Sample[] = [];
  const seenSeries = new Set<string>();
  const familiesWithSamples = new Set<string>();
  const typed = new Set<string>();
  const lines = text.split("\n");
  if (lines.at(-1) !== "") throw new Error("the exposition must end with a newline");
  lines.forEach((line, index) => {
    const fail = (why: string): never => {
      throw new Error(`line ${index + 1}: ${why}: ${JSON.stringify(line)}`);
    };
    if (line === "") return;
    if (line.startsWith("#")) {
      const match = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!match) return; // a plain comment
      const [, keyword, name, rest] = match as unknown as [string, string, string, string];
      if (!NAME.test(name)) fail("bad metric name");
      const family = families.get(name);
      if (keyword === "TYPE") {
        if (!TYPES.has(rest)) fail("unknown type");
        if (typed.has(name)) fail("second TYPE line");
        typed.add(name);
        if (familiesWithSamples.has(name)) fail("TYPE after the family's samples");
        families.set(name, { ...family, type: rest as Family["type"] });
      } else {
        families.set(name, { type: family?.type ?? ("" as never), help: rest });
      }
      return;
    }
    const sample = parseSample(line, fail);
    const family = familyOf(sample.name, families);
    if (!family) fail("sample of an undeclared family");
    familiesWithSamples.add(family!);
    const key = `${sample.name}{${Object.entries(sample.labels).sort().map(([k, v]) => `${k}=${v}`).join(",")}}`;
    if (seenSeries.has(key)) fail("duplicate series");
    seenSeries.add(key);
    samples.push(sample);
  });
  for (const [name, family] of families) if (!TYPES.has(family.type)) throw new Error(`${name} has HELP but no TYPE`);
  checkHistograms(families, samples);
  return { families, samples };
}

/** The value of one series, or undefined when it is absent. */
export function sampleValue(exposition: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  return exposition.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

/** The sum over every series of a name whose labels include these. */
export function sumOf(exposition: Exposition, name: string, labels: Record<string, string> = {}): number {
  return exposition.samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

function parseSample(line: string, fail: (why: string) => never): Sample {
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  if (!nameMatch) fail("bad sample name");
  const name = nameMatch![0];
  let rest = line.slice(name.length);
  const labels: Record<string, string> = {};
  if (rest.startsWith("{")) {
    rest = rest.slice(1);
    while (!rest.startsWith("}")) {
      const labelMatch = /^([^=]+)="/.exec(rest);
      if (!labelMatch || !LABEL_NAME.test(labelMatch[1]!)) fail("bad label");
      rest = rest.slice(labelMatch![0].length);
      let value = "";
      for (;;) {
        if (rest === "") fail("unterminated label value");
        const char = rest[0]!;
        if (char === "\\") {
          const escaped = rest[1];
          if (escaped === "n") value += "\n";
          else if (escaped === "\\" || escaped === '"') value += escaped;
          else fail("bad escape in a label value");
          rest = rest.slice(2);
        } else if (char === '"') {
          rest = rest.slice(1);
          break;
        } else {
          value += char;
          rest = rest.slice(1);
        }
      }
      if (labelMatch![1]! in labels) fail("repeated label");
      labels[labelMatch![1]!] = value;
      if (rest.startsWith(",")) rest = rest.slice(1);
      else if (!rest.startsWith("}")) fail("expected , or } after a label");
    }
    rest = rest.slice(1);
  }
  const valueMatch = /^ (\S+)( -?\d+)?$/.exec(rest);
  if (!valueMatch) fail("expected one space and a value");
  const raw = valueMatch![1]!;
  // Prometheus reads values with Go's ParseFloat: NaN and Inf in any letter case.
  const special = raw.toLowerCase();
  const value = /^\+?inf(inity)?$/.test(special) ? Infinity : /^-inf(inity)?$/.test(special) ? -Infinity : special === "nan" ? NaN : Number(raw);
  if (Number.isNaN(value) && special !== "nan") fail("value is not a number");
  return { name, labels, value };
}

function familyOf(sampleName: string, families: Map<string, Family>): string | undefined {
  if (families.has(sampleName)) return sampleName;
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (!sampleName.endsWith(suffix)) continue;
    const base = sampleName.slice(0, -suffix.length);
    const type = families.get(base)?.type;
    if (type === "histogram" || (type === "summary" && suffix !== "_bucket")) return base;
  }
  return undefined;
}

/** Buckets are cumulative, end with le="+Inf", and that bucket equals _count. */
function checkHistograms(families: Map<string, Family>, samples: Sample[]): void {
  for (const [name, family] of families) {
    if (family.type !== "histogram") continue;
    const series = new Map<string, Sample[]>();
    for (const s of samples.filter((s) => s.name === `${name}_bucket`)) {
      const { le, ...rest } = s.labels;
      if (le === undefined) throw new Error(`${name}_bucket without le`);
      const key = JSON.stringify(Object.entries(rest).sort());
      series.set(key, [...(series.get(key) ?? []), s]);
    }
    for (const [key, buckets] of series) {
      let previous = -Infinity;
      let last = -Infinity;
      for (const bucket of buckets) {
        const le = bucket.labels.le === "+Inf" ? Infinity : Number(bucket.labels.le);
        if (!(le > previous)) throw new Error(`${name}: buckets out of order for ${key}`);
        if (bucket.value < last) throw new Error(`${name}: bucket counts decrease for ${key}`);
        previous = le;
        last = bucket.value;
      }
      if (previous !== Infinity) throw new Error(`${name}: no +Inf bucket for ${key}`);
      const labels = Object.fromEntries(JSON.parse(key) as Array<[string, string]>);
      const count = samples.find((s) => s.name === `${name}_count` && JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(Object.entries(labels).sort()));
      if (count?.value !== last) throw new Error(`${name}: +Inf bucket ${last} differs from _count ${count?.value} for ${key}`);
    }
  }
}
