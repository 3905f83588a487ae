// Drives latentkit's page in the system's headless Chromium (npm puppeteer-core; it downloads no
// browser), for the tests.
//
//   node page_test.js URL OUT_DIR [slider NAME VALUE] [project PHOTO] [screenshot FILE.png] [seeds N]
//
// Opens URL, waits until the page has drawn, and writes OUT_DIR/canvas.rgba (the canvas's RGBA pixels)
// and OUT_DIR/page.json ({width, height, backend, status, error, url}). `slider` then moves a direction
// slider and writes canvas-slider.rgba; `project` uploads a photo, starts a projection and waits until
// the page shows progress (page.json gets project_step and project_status); `screenshot` saves the
// window; `seeds` draws N more seeds one after the other (page.json gets their statuses). Exits 1 with
// one line on any error.
'use strict';
const fs = require('fs');
const path = require('path');

async function canvasPixels(page) {
  return page.evaluate(() => {
    const c = document.getElementById('image');
    return {width: c.width, height: c.height, data: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)};
  });
}

async function waitFrames(page, above) {
  await page.waitForFunction((n) => Number(document.body.dataset.frames || 0) > n || document.body.dataset.ready === 'error',
                             {timeout: 120000}, above);
  const error = await page.evaluate(() => document.getElementById('error').textContent);
  if (error) throw new Error('the page says: ' + error);
}

async function main() {
  const [url, outDir, ...actions] = process.argv.slice(2);
  if (!url || !outDir) throw new Error('usage: node page_test.js URL OUT_DIR [slider NAME VALUE] [project PHOTO]');
  const puppeteer = require('puppeteer-core');
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  try {
    const page = await browser.newPage();
    const logs = [];
    page.on('console', (m) => logs.push(m.text()));
    page.on('pageerror', (e) => logs.push(String(e)));
    await page.goto(url, {waitUntil: 'load', timeout: 120000});
    await waitFrames(page, 0);
    const first = await canvasPixels(page);
    fs.writeFileSync(path.join(outDir, 'canvas.rgba'), Buffer.from(first.data));
    const report = {width: first.width, height: first.height, logs,
                    ...(await page.evaluate(() => ({backend: document.body.dataset.backend, status: document.getElementById('status').textContent,
                                                    url: location.href})))};
    for (let k = 0; k < actions.length; k++) {
      if (actions[k] === 'slider') {
        const [name, value] = [actions[k + 1], actions[k + 2]];
        k += 2;
        const frames = await page.evaluate(() => Number(document.body.dataset.frames));
        const found = await page.evaluate((n, v) => {
          const s = document.querySelector(`input[data-direction="${n}"]`);
          if (!s) return false;
          s.value = v;
          s.dispatchEvent(new Event('input'));
          return true;
        }, name, value);
        if (!found) throw new Error(`no slider for direction ${name}`);
        await waitFrames(page, frames);
        await new Promise((r) => setTimeout(r, 500));  // a render queued behind may still land
        fs.writeFileSync(path.join(outDir, 'canvas-slider.rgba'), Buffer.from((await canvasPixels(page)).data));
        report.url_after_slider = await page.evaluate(() => location.href);
      } else if (actions[k] === 'project') {
        const photo = actions[++k];
        const input = await page.$('#photo');
        await input.uploadFile(photo);
        await page.$eval('#steps', (e) => { e.value = '40'; });
        await page.click('#project');
        await page.waitForFunction(() => Number(document.body.dataset.projectStep || 0) > 0, {timeout: 120000});
        report.project_step = await page.evaluate(() => Number(document.body.dataset.projectStep));
        report.project_status = await page.evaluate(() => document.getElementById('project-status').textContent);
      } else if (actions[k] === 'seeds') {
        const n = Number(actions[++k]);
        report.statuses = [];
        for (let i = 1; i <= n; i++) {
          const frames = await page.evaluate(() => Number(document.body.dataset.frames));
          await page.$eval('#seed', (e, v) => { e.value = String(v); e.dispatchEvent(new Event('input')); }, 1000 + i);
          await waitFrames(page, frames);
          report.statuses.push(await page.evaluate(() => document.getElementById('status').textContent));
        }
      } else if (actions[k] === 'screenshot') {
        await page.setViewport({width: 1000, height: 760});
        await new Promise((r) => setTimeout(r, 300));
        await page.screenshot({path: actions[++k]});
      } else {
        throw new Error('unknown action ' + actions[k]);
      }
    }
    fs.writeFileSync(path.join(outDir, 'page.json'), JSON.stringify(report));
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(String(e && e.message ? e.message : e).split('\n')[0]);
  process.exit(1);
});
