import { readFileSync, statSync } from 'node:fs';
import { isMap, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { InputError, type InputProblem } from '../errors.js';

const MAX_ALIASES = 100;
/** Bigger files are no topology or walkthrough a person wrote (the largest accepted topology is about 100 KB). */
const MAX_BYTES = 4 * 1024 * 1024;

/** A parsed YAML file that can say on which line any field stands. */
export class YamlFile {
  private constructor(
    readonly path: string,
    readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  static read(path: string, displayPath = path): YamlFile {
    let text: string;
    try {
      const size = statSync(path);
      if (!size.isFile()) throw Object.assign(new Error('not a file'), { code: size.isDirectory() ? 'EISDIR' : 'not a regular file' });
      if (size.size > MAX_BYTES) throw Object.assign(new Error('too big'), { code: `${size.size} bytes; at most ${MAX_BYTES}` });
      text = readFileSync(path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new InputError([{ file: displayPath, field: '', message: code === 'ENOENT' ? 'no such file' : `cannot read (${code})` }]);
    }
    return YamlFile.parse(text, displayPath);
  }

  static parse(text: string, displayPath: string): YamlFile {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    const file = new YamlFile(displayPath, doc, lines);
    if (doc.errors.length > 0) {
      throw new InputError(
        doc.errors.map((e) => ({
          file: displayPath,
          field: '',
          // linePos is only filled in with prettyErrors; locate from the offset ourselves.
          line: e.linePos?.[0]?.line ?? lines.linePos(e.pos[0]).line,
          message: `YAML syntax: ${e.message.split('\n')[0]}`,
        })),
      );
    }
    return file;
  }

  /**
   * The document as plain data. Aliases are expanded here, at most MAX_ALIASES of them: a
   * "billion laughs" file (aliases of aliases) is refused instead of filling the memory.
   */
  data(): unknown {
    try {
      return this.doc.toJS({ maxAliasCount: MAX_ALIASES });
    } catch (err) {
      throw new InputError([{ file: this.path, field: '', message: `YAML aliases: ${err instanceof Error ? err.message : String(err)} (at most ${MAX_ALIASES} alias expansions)` }]);
    }
  }

  /** The line of the value at path, or of the nearest parent that exists. */
  lineOf(path: readonly PropertyKey[]): number | undefined {
    for (let n = path.length; n >= 0; n--) {
      const node = this.doc.getIn(path.slice(0, n) as unknown[], true) as { range?: [number, number, number] } | undefined;
      if (node && typeof node === 'object' && node.range) return this.lines.linePos(node.range[0]).line;
    }
    return undefined;
  }

  /** The line of a key inside the map at path (for "unknown key" errors). */
  lineOfKey(path: readonly PropertyKey[], key: string): number | undefined {
    const map = this.doc.getIn(path as unknown[], true);
    if (isMap(map)) {
      for (const pair of map.items) {
        const k = pair.key as { value?: unknown; range?: [number, number, number] };
        if (k?.value === key && k.range) return this.lines.linePos(k.range[0]).line;
      }
    }
    return this.lineOf(path);
  }

  problem(path: readonly PropertyKey[], message: string): InputProblem {
    return { file: this.path, field: fieldName(path), line: this.lineOf(path), message };
  }

  /** Parse with a zod schema, turning every issue into a located problem. */
  validate<S extends z.ZodType>(schema: S): z.output<S> {
    // reportInput: zod 4 drops issue.input otherwise, and describeIssue needs it to tell "missing" from "wrong type".
    const result = schema.safeParse(this.data(), { reportInput: true });
    if (result.success) return result.data;
    const problems: InputProblem[] = [];
    for (const issue of result.error.issues) {
      const path = issue.path as PropertyKey[];
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) {
          problems.push({
            file: this.path,
            field: fieldName([...path, key]),
            line: this.lineOfKey(path, key),
            message: 'unknown key',
          });
        }
      } else {
        problems.push(this.problem(path, describeIssue(issue)));
      }
    }
    throw new InputError(problems);
  }
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type' && issue.input === undefined) return 'is required';
  return issue.message;
}

/** nodes[1].address, the way a person reads a path into a YAML file. */
export function fieldName(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}
