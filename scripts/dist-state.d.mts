// Types of dist-state.mjs, for the TypeScript that imports it (test/helpers/daemon.ts).
export declare const BUILD_STAMP: string;
export declare function sourceFingerprint(repo: string): string;
export declare function distProblem(repo: string): string | undefined;
