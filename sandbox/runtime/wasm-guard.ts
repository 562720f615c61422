/**
 * WebAssembly inside a plugin isolate. V8 keeps a WebAssembly.Memory outside the JavaScript heap,
 * so the isolate's memory limit does not see it: one 64 MB isolate committed 1 GiB that way. So
 * WebAssembly is off unless the plugin declares `plugin({ wasm: true })`, and then every memory
 * must declare a maximum, and the maxima of the memories alive together stay within the
 * plugin's `memoryMb` (so a wasm plugin holds at most twice its memoryMb: heap plus memories).
 *
 * Counting maxima, not sizes, because `memory.grow` inside wasm code never asks JavaScript: the
 * maximum is the only bound that holds. A memory counts while it is reachable (a WeakRef says
 * when it went; no finalizer, which would run outside any run), so memories dropped by earlier
 * runs stop counting once the isolate's GC collected them.
 *
 * Memories come from two places, and both are checked: `new WebAssembly.Memory({...})`, and the
 * memory section of a module's binary, which is read here before V8 compiles it (on a private
 * copy of the bytes, so what was checked is what gets compiled).
 *
 * This file runs inside the isolate, bundled with bootstrap.ts; it takes its own copies of the
 * built-ins before any plugin code runs.
 */

const PAGE_BYTES = 64 * 1024;

export interface WasmGuardError {
  (message: string): Error;
}

/**
 * Removes the global `WebAssembly`; returns a function that installs the guarded namespace (for
 * a plugin that declared `wasm: true`). `fail` makes the error thrown on a refusal (it carries
 * the host's code HOOKD_RUN_WASM_MEMORY).
 */
export function guardWebAssembly(memoryMb: number, fail: WasmGuardError): () => void {
  const global = globalThis as Record<string, unknown>;
  const raw = global.WebAssembly as Record<string, unknown> | undefined;
  delete global.WebAssembly;
  if (!raw) return () => undefined;
  const RawModule = raw.Module as new (bytes: Uint8Array) => object;
  const RawInstance = raw.Instance as new (module: object, imports?: unknown) => { exports: Record<string, unknown> };
  const RawMemory = raw.Memory as new (descriptor: unknown) => object;
  const apply = Reflect.apply;
  const construct = Reflect.construct;
  const defineProperty = Object.defineProperty;
  const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
  const getPrototypeOf = Object.getPrototypeOf;
  const keysOf = Object.keys;
  const create = Object.create;
  const assign = Object.assign;
  const isPrototypeOf = Object.prototype.isPrototypeOf;
  const PromiseCtor = Promise;
  const instanceExports = getOwnPropertyDescriptor(RawInstance.prototype, "exports")!.get!;
  const U8 = Uint8Array;
  const u8Slice = Uint8Array.prototype.slice;
  const isView = ArrayBuffer.isView;
  const TypedArrayProto = getPrototypeOf(Uint8Array.prototype) as object;
  const viewBuffer = getOwnPropertyDescriptor(TypedArrayProto, "buffer")!.get!;
  const viewOffset = getOwnPropertyDescriptor(TypedArrayProto, "byteOffset")!.get!;
  const viewLength = getOwnPropertyDescriptor(TypedArrayProto, "byteLength")!.get!;
  const dataViewBuffer = getOwnPropertyDescriptor(DataView.prototype, "buffer")!.get!;
  const dataViewOffset = getOwnPropertyDescriptor(DataView.prototype, "byteOffset")!.get!;
  const dataViewLength = getOwnPropertyDescriptor(DataView.prototype, "byteLength")!.get!;
  const WeakRefCtor = WeakRef;
  const deref = WeakRef.prototype.deref;
  const WeakMapCtor = WeakMap;
  const weakGet = WeakMap.prototype.get;
  const weakSet = WeakMap.prototype.set;
  const instanceOf = (value: unknown, ctor: { prototype: object }) => typeof value === "object" && value !== null && (apply(isPrototypeOf, ctor.prototype, [value]) as boolean);

  const budgetPages = Math.floor((memoryMb * 1024 * 1024) / PAGE_BYTES);
  /**
   * Memories alive, with the pages each may grow to. An instance's own memory lives while the
   * instance or the memory it exports does (either can be dropped alone), so an entry holds both.
   */
  let alive: Array<{ refs: Array<WeakRef<object>>; pages: number }> = [];
  /** Pages each checked module's own memories may grow to. */
  const modulePages = new WeakMapCtor<object, number>();

  function pagesInUse(): number {
    const still: Array<{ refs: Array<WeakRef<object>>; pages: number }> = [];
    let pages = 0;
    for (let i = 0; i < alive.length; i++) {
      const entry = alive[i]!;
      let live = false;
      for (let j = 0; j < entry.refs.length; j++) if (apply(deref, entry.refs[j]!, []) !== undefined) live = true;
      if (live) {
        still[still.length] = entry;
        pages += entry.pages;
      }
    }
    alive = still;
    return pages;
  }

  function reserve(pages: number, what: string): void {
    const used = pagesInUse();
    if (used + pages > budgetPages) {
      throw fail(`${what} may grow to ${pages} pages of 64 KiB; with the ${used} pages of memories alive that is more than memoryMb (${memoryMb} MB = ${budgetPages} pages)`);
    }
  }

  function track(holders: object[], pages: number): void {
    const refs: Array<WeakRef<object>> = [];
    for (let i = 0; i < holders.length; i++) refs[refs.length] = new WeakRefCtor(holders[i]!);
    alive[alive.length] = { refs, pages };
  }

  /** A private copy of the bytes, read with the built-in getters (a plugin may have replaced them). */
  function ownBytes(source: unknown): Uint8Array {
    if (isView(source)) {
      const isDataView = instanceOf(source, DataView);
      const buffer = apply(isDataView ? dataViewBuffer : viewBuffer, source, []) as ArrayBuffer;
      const offset = apply(isDataView ? dataViewOffset : viewOffset, source, []) as number;
      const length = apply(isDataView ? dataViewLength : viewLength, source, []) as number;
      return apply(u8Slice, new U8(buffer, offset, length), []) as Uint8Array;
    }
    if (instanceOf(source, ArrayBuffer) || (typeof SharedArrayBuffer === "function" && instanceOf(source, SharedArrayBuffer))) {
      return apply(u8Slice, new U8(source as ArrayBuffer), []) as Uint8Array;
    }
    throw new TypeError("WebAssembly.Module(): argument must be a buffer source");
  }

  /** Sum of the maxima of the memories a binary defines itself (its memory section). */
  function declaredPages(bytes: Uint8Array): number {
    let at = 8;
    const u32 = (): number => {
      let result = 0;
      let shift = 0;
      for (;;) {
        if (at >= bytes.length) throw fail("the binary ends inside a number");
        const byte = bytes[at++]!;
        result += (byte & 0x7f) * 2 ** shift;
        if ((byte & 0x80) === 0) return result;
        shift += 7;
        if (shift > 35) throw fail("a number in the binary is too long");
      }
    };
    let pages = 0;
    while (at < bytes.length) {
      const id = bytes[at++]!;
      const size = u32();
      const end = at + size;
      if (id === 5) {
        const count = u32();
        for (let i = 0; i < count; i++) {
          const flags = bytes[at++]!;
          // 0: min; 1: min and max; 2, 3: shared. Anything else (64-bit, custom page sizes) is refused.
          if ((flags & ~0x03) !== 0) throw fail("64-bit memories and custom page sizes are not allowed");
          u32();
          if ((flags & 0x01) === 0) throw fail("a memory in the binary declares no maximum: give it one within memoryMb, since memory.grow is bounded by nothing else");
          pages += u32();
        }
      }
      at = end;
    }
    return pages;
  }

  function Module(this: unknown, source: unknown): object {
    if (new.target === undefined) throw new TypeError("WebAssembly.Module must be invoked with 'new'");
    const bytes = ownBytes(source);
    const pages = declaredPages(bytes);
    if (pages > budgetPages) throw fail(`the module's memory may grow to ${pages} pages of 64 KiB, more than memoryMb (${memoryMb} MB = ${budgetPages} pages)`);
    const module = construct(RawModule, [bytes]) as object;
    apply(weakSet, modulePages, [module, pages]);
    return module;
  }

  function Instance(this: unknown, module: unknown, imports?: unknown): object {
    if (new.target === undefined) throw new TypeError("WebAssembly.Instance must be invoked with 'new'");
    const pages = typeof module === "object" && module !== null ? (apply(weakGet, modulePages, [module]) as number | undefined) : undefined;
    // Every module a plugin can reach was made by Module above; anything else is refused.
    if (pages === undefined) throw new TypeError("WebAssembly.Instance(): argument 0 must be a WebAssembly.Module");
    if (pages > 0) reserve(pages, "the instance's own memory");
    const instance = construct(RawInstance, [module, imports]);
    if (pages > 0) {
      const holders: object[] = [instance];
      // The built-in getter, and no array iterator: a plugin may have replaced either.
      const exports = apply(instanceExports, instance, []) as Record<string, unknown>;
      const names = keysOf(exports);
      for (let i = 0; i < names.length; i++) {
        const value = exports[names[i]!];
        if (instanceOf(value, RawMemory as unknown as { prototype: object })) holders[holders.length] = value as object;
      }
      track(holders, pages);
    }
    return instance;
  }

  function Memory(this: unknown, descriptor: unknown): object {
    if (new.target === undefined) throw new TypeError("WebAssembly.Memory must be invoked with 'new'");
    const d = (typeof descriptor === "object" && descriptor !== null ? descriptor : {}) as { initial?: unknown; maximum?: unknown; shared?: unknown; index?: unknown };
    // Read once, into plain values: a getter must not answer differently to V8 than to this check.
    const initial = Number(d.initial);
    const maximum = d.maximum === undefined ? undefined : Number(d.maximum);
    if (d.index !== undefined && String(d.index) !== "i32") throw fail("64-bit memories are not allowed");
    if (maximum === undefined || !(maximum >= 0)) throw fail("new WebAssembly.Memory needs a maximum within memoryMb");
    reserve(maximum, "the memory");
    // Without a prototype: V8 reads more keys than these, and a getter a plugin put on
    // Object.prototype must not answer for them (say, `index: "i64"`).
    const plain = assign(create(null) as object, { initial, maximum, ...(d.shared === true ? { shared: true } : {}) });
    const memory = construct(RawMemory, [plain]) as object;
    track([memory], maximum);
    return memory;
  }

  const compile = (source: unknown) => new PromiseCtor((resolve) => resolve(construct(Module, [source], Module)));
  const instantiate = (source: unknown, imports?: unknown) =>
    new PromiseCtor((resolve) => {
      if (typeof source === "object" && source !== null && apply(weakGet, modulePages, [source]) !== undefined) return resolve(construct(Instance, [source, imports], Instance));
      const module = construct(Module, [source], Module);
      resolve({ module, instance: construct(Instance, [module, imports], Instance) });
    });

  // The wrappers stand where the originals stood, including as each prototype's `constructor`
  // (else `new (memory.constructor)({ initial: 16384 })` would reach the unchecked one).
  const wrappers: Array<[string, (...args: never[]) => object, { prototype: object }]> = [
    ["Module", Module, RawModule as unknown as { prototype: object }],
    ["Instance", Instance, RawInstance as unknown as { prototype: object }],
    ["Memory", Memory, RawMemory as unknown as { prototype: object }],
  ];
  const namespace: Record<string, unknown> = {};
  for (const key of ["compile", "instantiate", "validate", "Global", "Table", "Tag", "Exception", "JSTag", "CompileError", "LinkError", "RuntimeError"]) {
    const descriptor = getOwnPropertyDescriptor(raw, key);
    if (descriptor) namespace[key] = descriptor.value;
  }
  for (const [name, wrapper, original] of wrappers) {
    defineProperty(wrapper, "prototype", { value: original.prototype, writable: false });
    defineProperty(original.prototype, "constructor", { value: wrapper, writable: false, configurable: false });
    namespace[name] = wrapper;
  }
  for (const key of ["imports", "exports", "customSections"]) {
    const method = (RawModule as unknown as Record<string, unknown>)[key];
    if (typeof method === "function") defineProperty(Module, key, { value: method, writable: false, configurable: false });
  }
  namespace.compile = compile;
  namespace.instantiate = instantiate;
  delete namespace.compileStreaming;
  delete namespace.instantiateStreaming;
  const frozen = Object.freeze(namespace);

  return () => {
    defineProperty(global, "WebAssembly", { value: frozen, writable: false, enumerable: false, configurable: false });
  };
}
