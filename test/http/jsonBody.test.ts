// The rule that decides whether a JSON number is stored exactly: a literal of n significant
// digits must be the float it parses to, rounded to n digits.
import t from 'tap';
import { isExact, nestingDepth } from '../../src/http/jsonBody.ts';

const accepted = [
  '0',
  '-0',
  '0.0',
  '1.0',
  '1e2',
  '0.1',
  '0.30000000000000004',
  '0.10000000000000001',
  '9007199254740992',
  '-9007199254740992',
  '173763843118602454564864',
  '-173763843118602454564864',
  '1e23',
  '100000000000000000000000',
  '1.7976931348623157e308',
  '5e-324',
  '4.9406564584124654e-324',
  '0.1000000000000000055511151231257827021181583404541015625',
  (2n ** 1000n).toString(),
];
const refused = [
  '9007199254740993',
  '-9007199254740993',
  '0.1000000000000000000001',
  '123456789012345678901234567890',
  '1e309',
  '-1e309',
  '1e-400',
  '1.7976931348623159e308',
  (2n ** 1000n + 1n).toString(),
];

t.test('numbers whose literal names their float exactly', async (t) => {
  for (const literal of accepted) t.ok(isExact(literal, Number(literal)), literal.slice(0, 40));
});

t.test('numbers a float cannot hold as sent', async (t) => {
  for (const literal of refused) t.notOk(isExact(literal, Number(literal)), literal.slice(0, 40));
});

t.test('nesting is counted outside strings only', async (t) => {
  t.equal(nestingDepth('{"a":[[1],{"b":"[[[{{{"}]}'), 3);
  t.equal(nestingDepth('"\\\\"'), 0);
});
