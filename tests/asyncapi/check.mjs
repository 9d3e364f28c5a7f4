import { Parser } from '@asyncapi/parser';
import fs from 'fs';
const parser = new Parser();
const { document, diagnostics } = await parser.parse(fs.readFileSync(process.argv[2], 'utf8'));
for (const d of diagnostics) console.log(d.severity, d.code, d.message, JSON.stringify(d.path));
console.log(document ? 'valid' : 'INVALID');
