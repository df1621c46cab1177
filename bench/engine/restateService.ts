// Restate's service endpoint in the engine benchmark, a process of its own: the same two flows as
// Tolstoy's, written as Restate's docs recommend (bench/engine/notes.md): a service whose
// handlers wrap each call to the echo server in a durable step (`ctx.run`), served over HTTP/2
// with `restate.serve`. The SDK is the one installed into bench/engine/.restate.
// Usage: node bench/engine/restateService.ts <port> <echo server's URL>
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HOME = fileURLToPath(new URL('.restate/', import.meta.url));
const restate = await import(createRequire(join(HOME, 'package.json')).resolve('@restatedev/restate-sdk'));

const port = Number(process.argv[2]);
const echoUrl = process.argv[3]!;

interface Text {
  text: string;
}

async function echo(text: string): Promise<Text> {
  const response = await fetch(`${echoUrl}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text }) });
  if (!response.ok) throw new Error(`the echo server answered ${response.status}`);
  return (await response.json()) as Text;
}

const bench = restate.service({
  name: 'Bench',
  handlers: {
    /** A: one step echoing the input, answered when finished. */
    sync: async (ctx: any, input: Text): Promise<Text> => ctx.run('echo', () => echo(input.text)),
    /** B: three steps, each sending what the one before received. */
    chain: async (ctx: any, input: Text): Promise<Text> => {
      const one: Text = await ctx.run('one', () => echo(input.text));
      const two: Text = await ctx.run('two', () => echo(`${one.text}, twice`));
      return ctx.run('three', () => echo(`${two.text}, thrice`));
    },
  },
});

await restate.serve({ services: [bench], port });
console.log('ready');
