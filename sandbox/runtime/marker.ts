/** Separates the runtime from the code it evaluates on first use (URL: see url.ts). */
export const LAZY_URL_MARKER = "\n//# hookd-lazy-url\n";
