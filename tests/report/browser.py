"""Render a page in headless Chromium (Debian's ``chromium``) and report what the browser saw.

The page is copied with two small scripts added: one, first in ``<head>``, records every error
(script errors, resources that fail to load, ``console.error``); one, at the end of ``<body>``,
decodes every image (drawn on a canvas, its pixels read back) and writes a JSON summary into
the DOM, which ``chromium --headless --dump-dom`` prints. Nothing is fetched (the pages are
self-contained).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

CHROMIUM = next(
    (path for name in ("chromium", "chromium-browser") if (path := shutil.which(name))), None
)
WIDTH, HEIGHT = 1280, 800

_HEAD = """<script>
window.__errors = [];
addEventListener("error", (e) => __errors.push(String(e.message || (e.target && e.target.src)
  || "error")), true);
const __console_error = console.error;
console.error = (...args) => { __errors.push(args.join(" ")); __console_error(...args); };
</script>"""
_BODY = """<script>
addEventListener("load", () => {
  // "load" waits for every image; drawing each on a canvas and reading a pixel back forces a
  // full decode, synchronously (data: URIs do not taint the canvas).
  const images = [...document.images].map((i) => {
    let pixels = 0;
    try {
      const canvas = document.createElement("canvas");
      canvas.width = i.naturalWidth;
      canvas.height = i.naturalHeight;
      const context = canvas.getContext("2d");
      context.drawImage(i, 0, 0);
      const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
      for (let k = 3; k < data.length; k += 4) pixels += data[k] > 0 ? 1 : 0;
    } catch (error) {
      __errors.push("decode " + i.alt + ": " + error);
    }
    return [i.alt, i.naturalWidth, i.naturalHeight, i.complete && pixels > 0];
  });
  const verdict = document.querySelector(".dataprops-verdict");
  const box = verdict ? verdict.getBoundingClientRect() : null;
  const out = {
    errors: __errors,
    images: images,
    verdict: box ? [box.top, box.bottom, verdict.innerText] : null,
    viewport: [innerWidth, innerHeight],
  };
  const pre = document.createElement("pre");
  pre.id = "dataprops-browser-check";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def render_in_browser(page: Path, scratch: Path) -> dict[str, Any]:
    """What Chromium saw of ``page``: ``errors``, ``images`` (alt, natural width and height,
    fully decoded), ``verdict`` (top, bottom and text of the card's verdict) and ``viewport``."""
    assert CHROMIUM is not None
    text = page.read_text(encoding="utf-8")
    text = text.replace("<head>", "<head>" + _HEAD, 1).replace("</body>", _BODY + "</body>", 1)
    probe = scratch / f"probe-{page.name}"
    probe.write_text(text, encoding="utf-8")
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless=new",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            f"--user-data-dir={scratch / 'chromium-profile'}",
            f"--window-size={WIDTH},{HEIGHT}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    match = re.search(r'<pre id="dataprops-browser-check">(.*?)</pre>', done.stdout, re.S)
    assert match, f"the page's check did not run; chromium said: {done.stderr[-2000:]}"
    result: dict[str, Any] = json.loads(html.unescape(match.group(1)))
    return result
