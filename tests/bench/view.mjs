// What the app benchmarks share (tests/bench/app.mjs, tests/bench/pool.mjs): the end-to-end test's
// view of the synthetic demo slide, and one timed Segment view.

/** The view the end-to-end test segments: the slide's first two glomeruli (`rings`, level-0
 * outlines) and 300 px around them, as a level-0 box [x, y, width, height]. */
export function demoView(rings) {
  const xs = rings.slice(0, 2).flat().map((p) => p[0]), ys = rings.slice(0, 2).flat().map((p) => p[1]);
  return [Math.min(...xs) - 300, Math.min(...ys) - 300, Math.max(...xs) - Math.min(...xs) + 600, Math.max(...ys) - Math.min(...ys) + 600];
}

/** Fits the viewer to level-0 `box`, clicks Segment view and waits for the result: resolves to
 * {seconds (click → result), status, windows, glomeruli, backend, timings (the engine's split),
 * marks (the CPU pool's page marks)} once the review list is built; rejects with the status when
 * the run fails. */
export async function segmentView(page, box) {
  await page.evaluate(([x, y, w, h]) => {
    const { viewer } = window.ftuscope.state;
    viewer.viewport.fitBounds(viewer.world.getItemAt(0).imageToViewportRectangle(x, y, w, h), true);
  }, box);
  const t0 = Date.now();
  await page.click('#segment-view');
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: 1_800_000 });
  const seconds = (Date.now() - t0) / 1000;
  const status = await page.textContent('#status');
  if ((await page.getAttribute('body', 'data-state')) !== 'done') throw new Error(status);
  // After the result the page builds the review list in the engine (not timed): the next run starts
  // on an idle engine, as a user's next click would, not queued behind this run's review.
  await page.waitForFunction(() => window.ftuscope.state.review?.applied !== undefined, null, { timeout: 120_000 }).catch(() => {});
  return page.evaluate(([s, st]) => {
    const { state, pool } = window.ftuscope;
    return { seconds: s, status: st, windows: state.progress?.total, glomeruli: state.glomeruli.length, backend: state.model.backend.backend,
      timings: state.timings, marks: pool.times };
  }, [seconds, status]);
}
