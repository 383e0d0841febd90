/**
 * Accessibility checks in a real page: axe-core (the WCAG rule engine) is evaluated inside
 * the page through playwright-core and run over the whole document. Evaluated rather than
 * added as a script tag, because the console's content security policy allows no inline script.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Page } from 'playwright-core';

/** WCAG 2.1 A and AA, WCAG 2.2 AA, and axe's best practices. */
export const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'];

let source: Promise<string> | undefined;

/** One line per rule broken on the page: rule, impact, how many elements, the first one and why. */
export async function axeViolations(page: Page): Promise<string[]> {
  source ??= readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  if ((await page.evaluate('typeof globalThis.axe')) !== 'object') await page.evaluate(await source);
  return page.evaluate(async (tags) => {
    const axe = (globalThis as unknown as { axe: { run(ctx: unknown, o: unknown): Promise<{ violations: Array<{ id: string; impact: string; nodes: Array<{ target: unknown[]; failureSummary: string }> }> }> } }).axe;
    const r = await axe.run((globalThis as unknown as { document: unknown }).document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] });
    return r.violations.map((v) => `${v.id} (${v.impact}, ${v.nodes.length}×) at ${JSON.stringify(v.nodes[0]?.target)}: ${v.nodes[0]?.failureSummary?.replace(/\s+/g, ' ')}`);
  }, AXE_TAGS);
}
