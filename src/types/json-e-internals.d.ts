// JSON-e's own expression parser, which json-e's public API does not export: the flows' templates
// are parsed with it when saved, so that they are read exactly as the engine will read them, and
// never evaluated (see src/definitions/templateChecks.ts). json-e is pinned to 4.8.4 for these paths.
declare module 'json-e/src/tokenizer.js' {
  interface Token {
    kind: string;
    value: string;
    start: number;
    end: number;
  }
  class Tokenizer {
    constructor(options: { ignore: string; patterns: Record<string, string>; tokens: string[] });
    next(source: string, offset?: number): Token | null;
  }
  export = Tokenizer;
}

declare module 'json-e/src/parser.js' {
  interface Token {
    kind: string;
    value: string;
    start: number;
    end: number;
  }
  /** A node of JSON-e's expression tree (json-e/src/AST.js); undefined where an expression is missing. */
  interface Node {
    constructorName: 'ASTNode' | 'BinOp' | 'UnaryOp' | 'FunctionCall' | 'ContextValue' | 'List' | 'ValueAccess' | 'Object';
    token: Token;
    left?: Node | null;
    right?: Node | null;
    expr?: Node;
    name?: Node;
    args?: (Node | undefined)[];
    list?: (Node | undefined)[];
    arr?: Node;
    isInterval?: boolean;
    obj?: Record<string, Node | undefined>;
  }
  class Parser {
    constructor(tokenizer: { next(source: string, offset?: number): Token | null }, source: string, offset?: number);
    current_token: Token | null;
    parse(): Node | undefined;
  }
  const parser: { Parser: typeof Parser };
  export = parser;
}

declare module 'json-e/src/builtins.js' {
  function addBuiltins(context: Record<string, unknown>): Record<string, unknown>;
  export = addBuiltins;
}
