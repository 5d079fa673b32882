// Drives the admin dashboard in a real headless Chromium (playwright-core + Debian's chromium) for
// tests/api/test_admin_ui.py. Input: one JSON argument {base, email, password, user_email, user_id,
// job_id, amount, shots}. Output (stdout): one JSON object with what was seen; screenshots go to `shots`
// (outside the repository). Exit 1 with {"error"} when a step fails.
'use strict';
const path = require('path');
const { chromium } = require(path.join(__dirname, '..', '..', '..', 'tools', 'node', 'node_modules', 'playwright-core'));

const a = JSON.parse(process.argv[2]);
const out = { console_errors: [], page_errors: [], shots: [] };

async function shot(page, name) {
  const p = path.join(a.shots, name + '.png');
  await page.screenshot({ path: p, fullPage: true });
  out.shots.push(p);
}

(async () => {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(20000);
    let signedIn = false; // before that, the wrong-password step's 401 is expected in the console
    page.on('console', (m) => {
      if (m.type() === 'error' && (signedIn || !/status of 401/.test(m.text()))) out.console_errors.push(m.text());
    });
    page.on('pageerror', (e) => out.page_errors.push(String(e)));

    await page.goto(a.base + '/admin');
    await page.waitForSelector('#login:not([hidden])');
    await shot(page, '01-login');
    await page.fill('#email', a.email);
    await page.fill('#password', 'wrong password 123');
    await page.click('#signin');
    await page.waitForFunction(() => document.getElementById('login-error').textContent.length > 0);
    out.wrong_password_message = await page.textContent('#login-error');
    await page.fill('#password', a.password);
    signedIn = true;
    await page.click('#signin');
    await page.waitForSelector('#users-table');
    out.signed_in_as = await page.textContent('#who');
    await shot(page, '02-users');

    // users: search, then open the user's credits
    await page.fill('#user-q', a.user_email);
    await page.click('#view-users form button[type=submit]');
    await page.waitForFunction((id) => {
      const rows = document.querySelectorAll('#users-table tbody tr');
      return rows.length === 1 && rows[0].dataset.id === id;
    }, a.user_id);
    // ban from the list; the row shows it after the PATCH
    await page.click(`#users-table tr[data-id="${a.user_id}"] button.ban`);
    await page.waitForFunction((id) => /banned/.test(document.querySelector(`#users-table tr[data-id="${id}"]`)?.textContent || ''), a.user_id);
    out.user_row_after_ban = await page.textContent(`#users-table tr[data-id="${a.user_id}"]`);
    await shot(page, '02b-user-banned');
    await page.click(`#users-table tr[data-id="${a.user_id}"] button.ban`); // unban again
    await page.waitForFunction((id) => /Ban$/.test(document.querySelector(`#users-table tr[data-id="${id}"] button.ban`)?.textContent || ''), a.user_id);
    await page.click(`#users-table tr[data-id="${a.user_id}"] a.credits-link`);
    await page.waitForSelector('#ledger-table');
    out.ledger_before = Number(await page.textContent('#ledger-count'));
    await page.fill('#credit-amount', String(a.amount));
    await page.fill('#credit-reason', 'dashboard test grant');
    await page.click('#credit-grant');
    await page.waitForFunction((n) => Number(document.getElementById('ledger-count')?.textContent) > n, out.ledger_before);
    out.ledger_after = Number(await page.textContent('#ledger-count'));
    out.ledger_top = await page.$$eval('#ledger-table tbody tr:first-child td', (tds) => tds.map((t) => t.textContent));
    await shot(page, '03-credits');

    // jobs: the dead job is listed under "dead"; retry it
    await page.click('a[href="#jobs"]');
    await page.waitForSelector('#jobs-table');
    await page.selectOption('#job-state', 'dead');
    await page.waitForSelector(`#jobs-table tr[data-id="${a.job_id}"] button.retry`);
    await shot(page, '04-jobs-dead');
    await page.click(`#jobs-table tr[data-id="${a.job_id}"] button.retry`);
    await page.waitForFunction(() => document.getElementById('toast').textContent.startsWith('retried'));
    out.toast_after_retry = await page.textContent('#toast');
    await shot(page, '05-jobs-retried');

    // the other screens render without errors
    await page.click('a[href="#audit"]');
    await page.waitForFunction(() => /intact|BROKEN/.test(document.getElementById('chain-status')?.textContent || ''));
    out.chain_status = await page.textContent('#chain-status');
    out.audit_actions = await page.$$eval('#audit-table tbody tr td:nth-child(4)', (tds) => tds.map((t) => t.textContent));
    await shot(page, '06-audit');
    await page.click('a[href="#health"]');
    await page.waitForSelector('#health-cards .card');
    await page.waitForSelector('svg.chart rect.bar');
    out.health_cards = await page.$$eval('#health-cards .card .k', (ks) => ks.map((k) => k.textContent));
    await shot(page, '07-health');
    for (const v of ['ai', 'orders', 'webhooks', 'backups']) {
      await page.click(`a[href="#${v}"]`);
      await page.waitForSelector(`#view-${v} table`);
      await shot(page, '08-' + v);
    }
    await page.click('#logout');
    await page.waitForSelector('#login:not([hidden])');
    out.signed_out = true;
    process.stdout.write(JSON.stringify(out));
  } catch (e) {
    out.error = String(e && e.stack || e);
    process.stdout.write(JSON.stringify(out));
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
})();
