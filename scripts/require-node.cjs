// Runs before `npm install` does anything else, on whatever Node.js is at hand: plain CommonJS.
const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  console.error(`Tolstoy needs Node.js 24 or newer (this is ${process.versions.node}); install a current LTS, see README.md.`);
  process.exit(1);
}
