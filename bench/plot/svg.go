package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// The plots are drawn by hand: a few lines, points and labels need no
// plotting library, and the SVG stays small, diffable and deterministic.

// point is one measurement; lo and hi, when they differ from y, are the
// ends of the runs it stands for.
type point struct{ x, y, lo, hi float64 }

type series struct {
	name   string
	color  string
	points []point
}

type axis struct {
	label    string
	log      bool
	min, max float64
	format   func(float64) string
}

// chart is one panel of a figure, at (ox, oy) with size w × h.
type chart struct {
	title      string
	x, y       axis
	series     []series
	ox, oy     float64
	w, h       float64
	legendLeft bool
}

const (
	padLeft, padRight, padTop, padBottom = 70.0, 20.0, 40.0, 50.0
	font                                 = `font-family="sans-serif"`
)

var palette = map[string]string{"raw": "#7f7f7f", "floor": "#ff7f0e", "ssegate": "#1f77b4"}

// colorOf gives the servers their fixed colours and other series the
// next of a few distinct ones.
func colorOf(name string, i int) string {
	if c, ok := palette[name]; ok {
		return c
	}
	return []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd"}[i%4]
}

func (a axis) pos(v, from, length float64) float64 {
	lo, hi, x := a.min, a.max, v
	if a.log {
		lo, hi, x = math.Log10(lo), math.Log10(hi), math.Log10(v)
	}
	return from + (x-lo)/(hi-lo)*length
}

// ticks are decades on a log axis, and 1-2-5 steps on a linear one.
func (a axis) ticks() []float64 {
	var out []float64
	if a.log {
		for e := math.Floor(math.Log10(a.min)); e <= math.Ceil(math.Log10(a.max)); e++ {
			if v := math.Pow(10, e); v >= a.min*0.999 && v <= a.max*1.001 {
				out = append(out, v)
			}
		}
		return out
	}
	raw := (a.max - a.min) / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag * 10
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	for v := math.Ceil(a.min/step) * step; v <= a.max+step/1e6; v += step {
		out = append(out, v)
	}
	return out
}

func (c chart) render(b *strings.Builder) {
	left, top := c.ox+padLeft, c.oy+padTop
	pw, ph := c.w-padLeft-padRight, c.h-padTop-padBottom
	px := func(v float64) float64 { return c.x.pos(v, left, pw) }
	py := func(v float64) float64 { return c.y.pos(v, top+ph, -ph) }
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" %s font-size="14" font-weight="bold">%s</text>`+"\n", left, c.oy+22, font, html.EscapeString(c.title))
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#333"/>`+"\n", left, top, pw, ph)
	for _, t := range c.x.ticks() {
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", px(t), top, px(t), top+ph)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" %s font-size="11" text-anchor="middle">%s</text>`+"\n", px(t), top+ph+16, font, c.x.format(t))
	}
	for _, t := range c.y.ticks() {
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, py(t), left+pw, py(t))
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" %s font-size="11" text-anchor="end">%s</text>`+"\n", left-6, py(t)+4, font, c.y.format(t))
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" %s font-size="12" text-anchor="middle">%s</text>`+"\n", left+pw/2, top+ph+38, font, html.EscapeString(c.x.label))
	fmt.Fprintf(b, `<text transform="translate(%.1f %.1f) rotate(-90)" %s font-size="12" text-anchor="middle">%s</text>`+"\n", c.ox+16, top+ph/2, font, html.EscapeString(c.y.label))
	for i, s := range c.series {
		s.render(b, px, py)
		lx := left + pw - 150
		if c.legendLeft {
			lx = left + 10
		}
		ly := top + 16 + float64(i)*16
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/>`+"\n", lx, ly-4, lx+18, ly-4, s.color)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" %s font-size="11">%s</text>`+"\n", lx+24, ly, font, html.EscapeString(s.name))
	}
}

func (s series) render(b *strings.Builder, px, py func(float64) float64) {
	var path []string
	for _, p := range s.points {
		path = append(path, fmt.Sprintf("%.1f,%.1f", px(p.x), py(p.y)))
	}
	if len(path) > 1 {
		fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(path, " "), s.color)
	}
	for _, p := range s.points {
		if p.lo != p.hi {
			fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5"/>`+"\n", px(p.x), py(p.lo), px(p.x), py(p.hi), s.color)
		}
		fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>%s</title></circle>`+"\n", px(p.x), py(p.y), s.color, html.EscapeString(s.name))
	}
}

// bars is a grouped bar chart: one group per label, one bar per series
// that has a value there.
type bars struct {
	title, unit string
	groups      []string
	servers     []string
	values      map[string]map[string]float64 // group → server → value
	w, h        float64
}

func (c bars) render(b *strings.Builder) {
	left, top := padLeft, padTop
	pw, ph := c.w-padLeft-padRight, c.h-padTop-padBottom
	top0 := 0.0
	for _, g := range c.values {
		for _, v := range g {
			top0 = math.Max(top0, v)
		}
	}
	y := axis{min: 0, max: math.Ceil(top0/10) * 10, format: func(v float64) string { return fmt.Sprintf("%g", v) }}
	py := func(v float64) float64 { return y.pos(v, top+ph, -ph) }
	fmt.Fprintf(b, `<text x="%.1f" y="22" %s font-size="14" font-weight="bold">%s</text>`+"\n", left, font, html.EscapeString(c.title))
	for _, t := range y.ticks() {
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, py(t), left+pw, py(t))
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" %s font-size="11" text-anchor="end">%s</text>`+"\n", left-6, py(t)+4, font, y.format(t))
	}
	fmt.Fprintf(b, `<text transform="translate(16 %.1f) rotate(-90)" %s font-size="12" text-anchor="middle">%s</text>`+"\n", top+ph/2, font, html.EscapeString(c.unit))
	gw := pw / float64(len(c.groups))
	bw := gw * 0.8 / float64(len(c.servers))
	for gi, g := range c.groups {
		x0 := left + float64(gi)*gw + gw*0.1
		for si, s := range c.servers {
			v, ok := c.values[g][s]
			if !ok {
				continue
			}
			x := x0 + float64(si)*bw
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`+"\n", x, py(v), bw*0.9, top+ph-py(v), colorOf(s, si), html.EscapeString(s))
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" %s font-size="11" text-anchor="middle">%.1f</text>`+"\n", x+bw*0.45, py(v)-4, font, v)
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" %s font-size="12" text-anchor="middle">%s</text>`+"\n", left+float64(gi)*gw+gw/2, top+ph+18, font, html.EscapeString(g))
	}
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>`+"\n", left, top+ph, left+pw, top+ph)
	for si, s := range c.servers {
		lx := left + pw - 110
		ly := top + 14 + float64(si)*16
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="12" height="10" fill="%s"/>`+"\n", lx, ly-9, colorOf(s, si))
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" %s font-size="11">%s</text>`+"\n", lx+18, ly, font, html.EscapeString(s))
	}
}

// svg wraps a figure's drawing in its document.
func svg(w, h float64, draw func(*strings.Builder)) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="%.0f" height="%.0f" fill="white"/>`+"\n", w, h)
	draw(&b)
	b.WriteString("</svg>\n")
	return []byte(b.String())
}
