import type { Page } from 'puppeteer-core';

/** What a page did wrong while a browser test looked at it: console errors and uncaught exceptions. */
export interface PageWatch {
  problems: string[];
  /** Every URL the page asked for (with `block`, every one other than the page itself, aborted). */
  fetched: string[];
}

/**
 * Listens on a fresh page for what the pictures tests forbid. With `block`, the page may load only
 * `block` itself: any other request is recorded and aborted, so an offline file proves it stays offline.
 */
export async function watchPage(page: Page, block?: string): Promise<PageWatch> {
  const watch: PageWatch = { problems: [], fetched: [] };
  page.on('console', (m) => m.type() === 'error' && watch.problems.push(m.text()));
  page.on('pageerror', (e) => watch.problems.push(String(e)));
  if (block === undefined) {
    page.on('request', (r) => watch.fetched.push(r.url()));
    return watch;
  }
  await page.setRequestInterception(true);
  page.on('request', (r) => (r.url() === block ? r.continue() : (watch.fetched.push(r.url()), r.abort())));
  return watch;
}
