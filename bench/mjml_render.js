// The official MJML renderer timed in-process on one MJML document.
// Usage: node mjml_render.js FILE RUNS  ->  prints {"median_ms": ..., "bytes": ...}
const fs = require("fs");
const mjml2html = require("mjml");

const [file, runsArg] = process.argv.slice(2);
const source = fs.readFileSync(file, "utf8");
const runs = Number(runsArg || 200);
const options = { validationLevel: "skip", minify: false, keepComments: true };

let html = mjml2html(source, options).html; // warm-up, like the Python side
for (let i = 0; i < 20; i++) mjml2html(source, options);
const times = [];
for (let i = 0; i < runs; i++) {
  const start = process.hrtime.bigint();
  html = mjml2html(source, options).html;
  times.push(Number(process.hrtime.bigint() - start) / 1e6);
}
times.sort((a, b) => a - b);
console.log(JSON.stringify({ median_ms: times[Math.floor(times.length / 2)], bytes: Buffer.byteLength(html) }));
