// The part of autocannon's API the load worker uses (the package ships no types).
declare module "autocannon" {
  interface Histogram {
    average: number;
    max: number;
    min: number;
    p50: number;
    p90: number;
    p99: number;
  }
  interface Result {
    duration: number;
    errors: number;
    timeouts: number;
    non2xx: number;
    "2xx"?: number;
    latency: Histogram;
    requests: Histogram;
  }
  interface RequestSpec {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string | undefined;
    setupRequest?: (request: { body?: string }) => { body?: string };
  }
  interface Options {
    url: string;
    connections?: number;
    pipelining?: number;
    duration?: number;
    amount?: number;
    overallRate?: number;
    timeout?: number;
    requests?: RequestSpec[];
  }
  interface Instance {
    on(event: "done", listener: (result: Result) => void): void;
  }
  function autocannon(options: Options): Instance;
  export default autocannon;
}
