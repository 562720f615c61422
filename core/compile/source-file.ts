/**
 * Reading a file a plugin consists of, without trusting what the name points at. Whoever can
 * write into the plugins folder can put a FIFO, a device or a symlink there under a plugin's
 * name: a plain `readFile` of a FIFO blocks one of libuv's four threads until a writer comes
 * (never), and enough of them stall every file operation of the daemon, shutdown included.
 *
 * So the file is opened with O_NONBLOCK (opening a FIFO for reading then returns at once), the
 * open descriptor is fstat'ed (only a regular file is read), and its real path is taken from the
 * descriptor itself, so a symlink swapped between a check and the read cannot redirect it.
 */
import { closeSync, constants, fstatSync, openSync, readSync, realpathSync, type Stats } from "node:fs";
import { open, readlink, realpath } from "node:fs/promises";

export type SourceFileProblem = "not-a-file" | "too-large";

/** Why a file was not read: `not-a-file` (a FIFO, device, socket or folder) or `too-large`. */
export class SourceFileError extends Error {
  constructor(
    readonly problem: SourceFileProblem,
    readonly file: string,
    readonly detail: string,
  ) {
    super(`${file}: ${detail}`);
    this.name = "SourceFileError";
  }
}

export interface SourceFile {
  bytes: Buffer;
  /** The path of the file actually opened, symlinks resolved. */
  realPath: string;
}

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | (constants.O_NOCTTY ?? 0);

/** Reads a regular file of at most `maxBytes`; anything else is a SourceFileError. */
export async function readSourceFile(file: string, maxBytes: number): Promise<SourceFile> {
  const handle = await open(file, OPEN_FLAGS);
  try {
    const info = await handle.stat();
    check(file, info, maxBytes);
    const realPath = await descriptorPath(handle.fd, file);
    // Read at most one byte past the limit: a file that grows after the fstat is still bounded.
    const buffer = Buffer.alloc(Math.min(info.size, maxBytes) + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > maxBytes) throw new SourceFileError("too-large", file, `is larger than ${maxBytes} bytes`);
    return { bytes: buffer.subarray(0, length), realPath };
  } finally {
    await handle.close();
  }
}

/** The same for synchronous callers (the watcher's change check); never blocks on a FIFO. */
export function readSourceFileSync(file: string, maxBytes: number): Buffer {
  const fd = openSync(file, OPEN_FLAGS);
  try {
    const info = fstatSync(fd);
    check(file, info, maxBytes);
    const buffer = Buffer.alloc(Math.min(info.size, maxBytes) + 1);
    let length = 0;
    while (length < buffer.length) {
      const bytesRead = readSync(fd, buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > maxBytes) throw new SourceFileError("too-large", file, `is larger than ${maxBytes} bytes`);
    return buffer.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}

/** The real path of a file, or undefined when it does not exist. */
export function realPathOrUndefined(file: string): string | undefined {
  try {
    return realpathSync(file);
  } catch {
    return undefined;
  }
}

function check(file: string, info: Stats, maxBytes: number): void {
  if (!info.isFile()) throw new SourceFileError("not-a-file", file, `is ${kindOf(info)}, not a regular file`);
  if (info.size > maxBytes) throw new SourceFileError("too-large", file, `is ${info.size} bytes, more than the limit of ${maxBytes}`);
}

function kindOf(info: Stats): string {
  if (info.isFIFO()) return "a FIFO";
  if (info.isDirectory()) return "a folder";
  if (info.isCharacterDevice() || info.isBlockDevice()) return "a device";
  if (info.isSocket()) return "a socket";
  return "a special file";
}

/** Linux names the file behind a descriptor in /proc/self/fd; elsewhere, realpath of the name. */
async function descriptorPath(fd: number, file: string): Promise<string> {
  if (process.platform === "linux") {
    try {
      return await readlink(`/proc/self/fd/${fd}`);
    } catch {
      // /proc not mounted (a minimal container): fall through.
    }
  }
  return realpath(file);
}
