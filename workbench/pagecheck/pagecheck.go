// Package pagecheck audits a page open in Chromium for what an admin on a phone or with a screen
// reader trips over: horizontal overflow, form fields without a label, images without alt text,
// positive tabindex values (which break the focus order) and text whose contrast with its
// background is below WCAG 2.x AA (4.5:1, or 3:1 for large text). The console's and the report
// email's browser tests run it on every page at 375 px.
//
// Contrast is computed in the page from getComputedStyle: the text colour against the first
// opaque background found walking up the ancestors (white when none), with alpha blended. Text
// over images or gradients is not judged.
package pagecheck

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/chromedp/chromedp"
)

// Findings are the problems of one page.
type Findings struct {
	URL         string `json:"url"`
	ScrollWidth int    `json:"scrollWidth"`
	ClientWidth int    `json:"clientWidth"`
	// Overflow names the elements sticking out to the right when the page scrolls sideways.
	Overflow []string `json:"overflow"`
	// Unlabelled are form fields without a label, aria-label, aria-labelledby or title.
	Unlabelled []string `json:"unlabelled"`
	// NoAlt are images without an alt attribute.
	NoAlt []string `json:"noAlt"`
	// PositiveTabindex are elements with tabindex > 0.
	PositiveTabindex []string `json:"positiveTabindex"`
	// LowContrast are text colour pairs below the threshold, one example each.
	LowContrast []Contrast `json:"lowContrast"`
}

// Contrast is one text colour on one background.
type Contrast struct {
	Element    string  `json:"element"`
	Text       string  `json:"text"`
	Color      string  `json:"color"`
	Background string  `json:"background"`
	Ratio      float64 `json:"ratio"`
	Min        float64 `json:"min"`
}

// Problems lists the findings as sentences; none means the page passed.
func (f Findings) Problems() []string {
	var out []string
	if f.ScrollWidth > f.ClientWidth {
		out = append(out, fmt.Sprintf("scrolls sideways: scrollWidth %d > clientWidth %d (sticking out: %s)",
			f.ScrollWidth, f.ClientWidth, strings.Join(f.Overflow, ", ")))
	}
	for _, e := range f.Unlabelled {
		out = append(out, "form field without a label: "+e)
	}
	for _, e := range f.NoAlt {
		out = append(out, "image without alt: "+e)
	}
	for _, e := range f.PositiveTabindex {
		out = append(out, "positive tabindex (breaks the focus order): "+e)
	}
	for _, c := range f.LowContrast {
		out = append(out, fmt.Sprintf("contrast %.2f:1 < %.1f:1 for %s on %s: %s %q", c.Ratio, c.Min, c.Color, c.Background, c.Element, c.Text))
	}
	return out
}

// Check audits the page open in ctx's tab.
func Check(ctx context.Context) (Findings, error) {
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](script))
	if err != nil {
		return Findings{}, fmt.Errorf("pagecheck: %w", err)
	}
	var f Findings
	if err := json.Unmarshal([]byte(raw), &f); err != nil {
		return Findings{}, fmt.Errorf("pagecheck: %w", err)
	}
	return f, nil
}

// script returns the findings as JSON.
const script = `(() => {
  const name = (el) => {
    let s = el.tagName.toLowerCase();
    if (el.id) s += "#" + el.id;
    else if (el.getAttribute("name")) s += "[name=" + el.getAttribute("name") + "]";
    else if (el.className && typeof el.className === "string") s += "." + el.className.trim().split(/\s+/).join(".");
    return s;
  };
  const visible = (el) => {
    const cs = getComputedStyle(el);
    if (cs.display === "none" || cs.visibility === "hidden") return false;
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  };
  const doc = document.documentElement;
  const out = {url: location.href, scrollWidth: doc.scrollWidth, clientWidth: doc.clientWidth,
    overflow: [], unlabelled: [], noAlt: [], positiveTabindex: [], lowContrast: []};
  if (doc.scrollWidth > doc.clientWidth) {
    for (const el of document.body.querySelectorAll("*")) {
      const r = el.getBoundingClientRect();
      if (r.right > doc.clientWidth + 0.5 && visible(el) && out.overflow.length < 8) out.overflow.push(name(el) + " (right " + Math.round(r.right) + ")");
    }
  }
  for (const el of document.querySelectorAll("input, select, textarea")) {
    const type = (el.getAttribute("type") || "").toLowerCase();
    if (["hidden", "submit", "button", "reset", "image"].includes(type)) continue;
    const labelled = (el.labels && el.labels.length > 0) || el.getAttribute("aria-label") ||
      el.getAttribute("aria-labelledby") || el.getAttribute("title");
    if (!labelled) out.unlabelled.push(name(el));
  }
  for (const el of document.querySelectorAll("img:not([alt])")) out.noAlt.push(name(el) + " " + (el.getAttribute("src") || "").slice(0, 60));
  for (const el of document.querySelectorAll("[tabindex]")) if (parseInt(el.getAttribute("tabindex"), 10) > 0) out.positiveTabindex.push(name(el));

  const parse = (c) => {
    const m = c.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const over = (top, bottom) => ({r: top.r * top.a + bottom.r * (1 - top.a), g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a), a: 1});
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const bg = parse(getComputedStyle(e).backgroundColor);
      if (bg && bg.a > 0) { layers.push(bg); if (bg.a >= 1) break; }
    }
    let c = {r: 255, g: 255, b: 255, a: 1};
    for (let i = layers.length - 1; i >= 0; i--) c = over(layers[i], c);
    return c;
  };
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const css = (c) => "rgb(" + [c.r, c.g, c.b].map(Math.round).join(", ") + ")";
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n.nodeValue.trim();
    const el = n.parentElement;
    if (!text || !el || !visible(el)) continue;
    if (el.closest("script, style, noscript, [aria-hidden=true], .sr-only")) continue;
    const cs = getComputedStyle(el);
    const bg = background(el);
    const fg0 = parse(cs.color);
    if (!fg0) continue;
    const fg = over({...fg0, a: fg0.a * parseFloat(cs.opacity || "1")}, bg);
    const l1 = lum(fg), l2 = lum(bg);
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(cs.fontSize), bold = parseInt(cs.fontWeight, 10) >= 700;
    const min = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
    const key = css(fg) + "|" + css(bg) + "|" + min;
    if (ratio + 1e-9 < min && !seen.has(key)) {
      seen.add(key);
      out.lowContrast.push({element: name(el), text: text.slice(0, 40), color: css(fg), background: css(bg), ratio: ratio, min: min});
    }
  }
  return JSON.stringify(out);
})()`
