/**
 * The web console in a real browser: Debian's Chromium (FLINT_CHROMIUM, default
 * /usr/bin/chromium) driven by playwright-core, against the real server on the tiny model with
 * an API key. Two chat turns (the second reads its prompt from the cache), a long generation
 * stopped with Esc while the status view shows a busy slot, a fill-in-the-middle completion,
 * and the page at a phone's width. Screenshots go to test/browser/screenshots/ (git-ignored).
 * Skipped, saying why, when no Chromium is installed.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startServer, type TestServer } from '../helpers/startServer.js';
import { repoRoot } from '../helpers/testModel.js';

// Callbacks passed to page.evaluate / waitForFunction run in the page: they reach its DOM through globalThis (the project compiles without DOM types).

const executablePath = process.env.FLINT_CHROMIUM ?? '/usr/bin/chromium';
const skip = existsSync(executablePath) ? false : `no Chromium at ${executablePath} (Debian: apt-get install chromium; or set FLINT_CHROMIUM)`;
const screenshots = path.join(repoRoot, 'test', 'browser', 'screenshots');
const key = 'sk-console-test';
let server: TestServer;
let browser: Browser;

before(async () => {
  if (skip) return;
  server = await startServer({ FLINT_API_KEYS: key, FLINT_SLOTS: '2', FLINT_CONTEXT_SIZE: '4096' });
  // Flags that keep Chromium off the network it cannot reach here (and out of the test's timing).
  browser = await chromium.launch({
    executablePath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  mkdirSync(screenshots, { recursive: true });
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/** The last assistant message once it has ended: its data attributes. */
async function finishedTurn(page: Page, n: number): Promise<Record<string, string>> {
  const selector = `#log li.assistant:nth-of-type(${n * 2})`;
  await page.waitForSelector(`${selector}:not([data-status="in_progress"])`, { timeout: 60_000 });
  return page.$eval(selector, (li) => ({ ...(li as unknown as { dataset: Record<string, string> }).dataset }) as Record<string, string>);
}

test('the console: key prompt, system prompt warm-up, two chat turns from the cache, stop with Esc while a slot is busy, FIM, phone width', { skip, timeout: 180_000 }, async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const consoleErrors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (err) => consoleErrors.push(err.message));
  await page.goto(`${server.url}/`);

  // The server has keys: the page asks for one, then uses it for HTTP and the WebSocket.
  await page.waitForSelector('#key-dialog[open]');
  await page.fill('#key-input', key);
  await page.keyboard.press('Enter');
  await page.waitForSelector('body[data-ready="true"]');
  assert.match(await page.textContent('#model') ?? '', /flint-tiny/);

  // A system prompt is evaluated into the cache as soon as it changes (generate: false).
  await page.click('#settings summary');
  await page.fill('#system', 'You are a terse assistant for TypeScript code. Answer in one line.');
  await page.keyboard.press('Tab');
  await page.waitForSelector('#warm-note[data-warmed="true"]');
  await page.fill('#max-tokens', '12');
  await page.fill('#prompt', 'Write a function that adds two numbers.');
  await page.keyboard.press('Enter');
  const first = await finishedTurn(page, 1);
  assert.equal(first.event, 'response.incomplete'); // the tiny model runs to max_output_tokens
  assert.ok(Number(first.cachedTokens) > 0, `the first turn continued the warm-up: ${JSON.stringify(first)}`);
  await page.fill('#prompt', 'Now make it handle strings.');
  await page.keyboard.press('Enter');
  const second = await finishedTurn(page, 2);
  assert.ok(Number(second.cachedTokens) > 0, `second turn: ${JSON.stringify(second)}`);
  assert.ok(Number(second.promptTokens) > Number(first.promptTokens));
  assert.match(await page.textContent('#log li.assistant:nth-of-type(4) .stats') ?? '', /TTFT [\d.]+ ms/);
  assert.equal(await page.$$eval('#turn-chart rect', (rects) => rects.length), 2);
  await page.screenshot({ path: path.join(screenshots, 'chat.png'), fullPage: true });

  // A long answer: the status view shows a busy slot while it runs; Esc stops it.
  await page.fill('#max-tokens', '3000');
  await page.fill('#prompt', 'Explain everything at length.');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#slots tr[data-busy="true"]', { timeout: 30_000 });
  await page.screenshot({ path: path.join(screenshots, 'busy.png'), fullPage: true });
  await page.keyboard.press('Escape');
  const stopped = await finishedTurn(page, 3);
  assert.equal(stopped.event, 'response.incomplete');
  assert.equal(stopped.status, 'cancelled');
  // The status view follows: the slot is idle again and holds the stopped conversation.
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('#slots tr[data-busy]').length === 2 && !(globalThis as any).document.querySelector('#slots tr[data-busy="true"]'), undefined, { timeout: 10_000 });
  const held = await page.$$eval('#slots tbody tr', (rows) => rows.map((tr) => Number(tr.children[2]!.textContent)));
  assert.ok(Math.max(...held) > Number(second.promptTokens), `tokens held: ${held.join(', ')}`);

  // Fill in the middle over /v1/completions with a suffix.
  await page.click('.tab[data-view="fim"]');
  await page.click('#fim-run');
  await page.waitForFunction(() => /TTFT/.test((globalThis as any).document.querySelector('#fim-stats')?.textContent ?? ''), undefined, { timeout: 30_000 });
  assert.ok(((await page.textContent('#fim-out mark')) ?? '').length > 0);
  await page.screenshot({ path: path.join(screenshots, 'fim.png'), fullPage: true });

  // A phone's width: one column, nothing wider than the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click('.tab[data-view="chat"]');
  const overflow = await page.evaluate(() =>
    [...(globalThis as any).document.querySelectorAll('body *')].filter((el: any) => el.getBoundingClientRect().right > 391).map((el: any) => `${el.tagName.toLowerCase()}#${el.id}.${el.className} (right ${Math.round(el.getBoundingClientRect().right)}): ${JSON.stringify(el.textContent.slice(0, 300))}`),
  );
  assert.deepEqual(overflow, [], 'elements wider than the screen');
  await page.screenshot({ path: path.join(screenshots, 'phone.png'), fullPage: true });
  // The only error is the first API call's 401, which made the page ask for the key.
  assert.deepEqual(consoleErrors, ['Failed to load resource: the server responded with a status of 401 (Unauthorized)']);
});

test('the console is plain files that load nothing from elsewhere', { skip }, () => {
  const html = readFileSync(path.join(repoRoot, 'src', 'console', 'index.html'), 'utf8');
  assert.doesNotMatch(html, /https?:\/\//, 'no external URL in the page');
});
