//go:build linux

package main

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"slices"
)

// plot draws latency against N for both pools, one panel per phase, on
// log-log axes (a straight line of slope one is a cost linear in N): the
// medians joined by lines, the minimum and maximum as bars.
func plot(sizes []int, res map[string]map[int][]sample, subtitle string) []byte {
	const (
		width, height = 1010, 500
		panelW        = 400
		panelH        = 320
		top           = 80
	)
	color := map[string]string{"floor": "#4477aa", "multiexit": "#ee6677"}
	lefts := []float64{80, 80 + panelW + 110}

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="28" font-size="17" text-anchor="middle">multiexit pool vs the hand-written floor: latency against N</text>`+"\n", width/2)
	reps := len(res["floor"][sizes[0]])
	fmt.Fprintf(&b, `<text x="%d" y="48" fill="#555" text-anchor="middle">%s; median of %d trials in turns, bars min–max</text>`+"\n", width/2, html.EscapeString(subtitle), reps)

	// x: log2 of N, padded half a step each side.
	xlo, xhi := math.Log2(float64(sizes[0]))-0.5, math.Log2(float64(sizes[len(sizes)-1]))+0.5
	for pi, ph := range phases {
		left := lefts[pi]
		// y: log10 of ms, whole decades around every value.
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, im := range impls {
			for _, n := range sizes {
				d := durations(res[im.name][n], ph.get)
				lo, hi = math.Min(lo, slices.Min(d)), math.Max(hi, slices.Max(d))
			}
		}
		ylo, yhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
		if yhi == ylo {
			yhi++
		}
		X := func(n float64) float64 { return left + (math.Log2(n)-xlo)/(xhi-xlo)*panelW }
		Y := func(v float64) float64 { return top + panelH - (math.Log10(v)-ylo)/(yhi-ylo)*panelH }

		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="14" text-anchor="middle">%s</text>`+"\n", left+panelW/2, top-10, ph.name)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", left, top, panelW, panelH)
		for e := ylo; e <= yhi; e++ {
			for _, m := range []float64{1, 2, 5} {
				v := m * math.Pow(10, e)
				if math.Log10(v) > yhi+1e-9 {
					break
				}
				y := Y(v)
				stroke := "#eee"
				if m == 1 {
					stroke = "#ccc"
				}
				fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", left, y, left+panelW, y, stroke)
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#555">%s</text>`+"\n", left-6, y+4, msLabel(v))
			}
		}
		for _, n := range sizes {
			x := X(float64(n))
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>`+"\n", x, top, x, top+panelH)
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%d</text>`+"\n", x, top+panelH+18, n)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">N (children)</text>`+"\n", left+panelW/2, top+panelH+40)
		fmt.Fprintf(&b, `<text transform="translate(%.1f %d) rotate(-90)" text-anchor="middle">ms</text>`+"\n", left-52, top+panelH/2)

		for k, im := range impls {
			c := color[im.name]
			off := float64(k*2-1) * 4 // keep the two sets of bars apart
			var pts []string
			for _, n := range sizes {
				d := durations(res[im.name][n], ph.get)
				x := X(float64(n)) + off
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, Y(median(d))))
				y1, y2 := Y(slices.Min(d)), Y(slices.Max(d))
				fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5"/>`+"\n", x, y1, x, y2, c)
				for _, y := range []float64{y1, y2} {
					fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", x-3, y, x+3, y, c)
				}
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>%s N=%d: median %.1f ms (%.1f–%.1f)</title></circle>`+"\n",
					x, Y(median(d)), c, im.name, n, median(d), slices.Min(d), slices.Max(d))
			}
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", joinPoints(pts), c)
		}
	}
	// Legend.
	for k, im := range impls {
		x := float64(width/2 - 120 + k*150)
		y := float64(height - 18)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/>`+"\n", x, y, x+24, y, color[im.name])
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`+"\n", x+12, y, color[im.name])
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", x+30, y+4, im.name)
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func joinPoints(pts []string) string {
	var b bytes.Buffer
	for i, p := range pts {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p)
	}
	return b.String()
}

func msLabel(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%g s", v/1000)
	case v >= 1:
		return fmt.Sprintf("%g ms", v)
	default:
		return fmt.Sprintf("%g µs", v*1000)
	}
}
