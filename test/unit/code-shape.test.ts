import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../lab/util/project.js';

/**
 * The code stays readable while it grows: no function body over 100 lines in lab/ or scripts/,
 * and no import cycle among lab/'s modules. Both are judged on the TypeScript syntax tree, not
 * on regular expressions, so a template literal or a comment cannot hide or fake a function.
 */
const MAX_FUNCTION_LINES = 100;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

function parse(file: string): ts.SourceFile {
  return ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
}

type FunctionLike = ts.FunctionLikeDeclaration & { body: ts.Node };

function functionName(fn: FunctionLike): string {
  if (fn.name) return fn.name.getText();
  const parent = fn.parent;
  if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)) {
    return parent.name.getText();
  }
  return '(anonymous)';
}

/** Every function, method, accessor, constructor and arrow with a body, and its body's length in lines. */
function functionLengths(source: ts.SourceFile): { name: string; line: number; lines: number }[] {
  const found: { name: string; line: number; lines: number }[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const body = node.body as ts.Node;
      const first = source.getLineAndCharacterOfPosition(body.getStart(source)).line;
      const last = source.getLineAndCharacterOfPosition(body.getEnd()).line;
      found.push({ name: functionName(node as FunctionLike), line: first + 1, lines: last - first + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/**
 * Each module's relative imports and re-exports, type-only ones included: a type-only cycle
 * still means two modules that cannot be understood one without the other.
 */
function relativeImports(source: ts.SourceFile): string[] {
  const specifiers: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) {
      specifiers.push((node.moduleSpecifier as ts.StringLiteral).text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = node.arguments[0];
      if (arg && ts.isStringLiteral(arg)) specifiers.push(arg.text);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      specifiers.push(node.argument.literal.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  const dir = dirname(source.fileName);
  return specifiers.filter((s) => s.startsWith('.')).map((s) => resolve(dir, s.replace(/\.js$/, '.ts')));
}

/** The cycles of a directed graph, each as the list of its nodes (Tarjan's strongly connected components). */
function cycles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const connect = (node: string): void => {
    index.set(node, counter);
    low.set(node, counter++);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        connect(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!));
      }
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1 || (graph.get(node) ?? []).includes(node)) found.push(component.sort());
  };
  for (const node of graph.keys()) if (!index.has(node)) connect(node);
  return found;
}

const LAB = join(PROJECT_ROOT, 'lab');
const checked = [...sources(LAB), ...sources(join(PROJECT_ROOT, 'scripts'))].map(parse);

describe('code shape', () => {
  it('measures function bodies from the syntax tree', () => {
    const sample = ts.createSourceFile(
      'x.ts',
      'function a() {\n  return 1;\n}\nconst b = () => {\n\n};\nclass C { m() { const s = `\n}\n`; } }\n',
      ts.ScriptTarget.Latest,
      true,
    );
    expect(functionLengths(sample)).toEqual([
      { name: 'a', line: 1, lines: 3 },
      { name: 'b', line: 4, lines: 3 },
      { name: 'm', line: 7, lines: 3 },
    ]);
  });

  it(`no function in lab/ or scripts/ has a body over ${MAX_FUNCTION_LINES} lines`, () => {
    expect(checked.length).toBeGreaterThan(100);
    const tooLong = checked.flatMap((source) =>
      functionLengths(source)
        .filter((f) => f.lines > MAX_FUNCTION_LINES)
        .map((f) => `${relative(PROJECT_ROOT, source.fileName)}:${f.line} ${f.name} (${f.lines} lines)`),
    );
    expect(tooLong).toEqual([]);
  });

  it('finds cycles, short and long, and no false ones', () => {
    const graph = new Map([
      ['a', ['b']],
      ['b', ['a', 'c']],
      ['c', ['d']],
      ['d', ['e']],
      ['e', ['c']],
      ['f', ['f']],
      ['g', ['a']],
    ]);
    expect(cycles(graph)).toEqual(expect.arrayContaining([['a', 'b'], ['c', 'd', 'e'], ['f']]));
    expect(cycles(graph)).toHaveLength(3);
    expect(cycles(new Map([['a', ['b']], ['b', []]]))).toEqual([]);
  });

  it('no import cycle among lab/ modules (type-only imports count)', () => {
    const labSources = checked.filter((s) => s.fileName.startsWith(LAB + '/'));
    const graph = new Map(labSources.map((s) => [s.fileName, relativeImports(s)]));
    expect([...graph.values()].flat().length).toBeGreaterThan(300);
    const found = cycles(graph).map((c) => c.map((f) => relative(LAB, f)).join(' ↔ '));
    expect(found).toEqual([]);
  });
});
