// Parse Mermaid diagrams with Mermaid's own parser (the library GitHub and GitLab render them with).
// Input on stdin: a JSON list of diagram texts. Output: a JSON list of {ok, type, error}.
// Run from the directory holding node_modules (.venv-mermaid), as tests/docs/test_mermaid.py does.
import { readFileSync } from 'node:fs';
import { JSDOM } from 'jsdom';

const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false });

const diagrams = JSON.parse(readFileSync(0, 'utf8'));
const results = [];
for (const text of diagrams) {
  try {
    const parsed = await mermaid.parse(text, { suppressErrors: false });
    results.push({ ok: true, type: parsed.diagramType, error: '' });
  } catch (err) {
    results.push({ ok: false, type: '', error: String((err && err.message) || err).slice(0, 600) });
  }
}
process.stdout.write(JSON.stringify(results));
