package main

// A small PNG plot drawn with the standard library only: S3 p99 latency
// against the offered rate, and Herald's advantage per primary metric.

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"strconv"
	"strings"
)

var (
	colWhite  = color.RGBA{255, 255, 255, 255}
	colAxis   = color.RGBA{60, 60, 60, 255}
	colGrid   = color.RGBA{225, 225, 225, 255}
	colHerald = color.RGBA{31, 119, 180, 255}
	colNode   = color.RGBA{255, 127, 14, 255}
	colOne    = color.RGBA{150, 150, 150, 255}
)

// font3x5 is a 3×5 pixel font: each glyph is 5 rows of 3 bits ('#' = on).
var font3x5 = map[rune]string{
	'0': "###|#.#|#.#|#.#|###", '1': ".#.|##.|.#.|.#.|###", '2': "###|..#|###|#..|###",
	'3': "###|..#|.##|..#|###", '4': "#.#|#.#|###|..#|..#", '5': "###|#..|###|..#|###",
	'6': "###|#..|###|#.#|###", '7': "###|..#|.#.|.#.|.#.", '8': "###|#.#|###|#.#|###",
	'9': "###|#.#|###|..#|###", 'A': ".#.|#.#|###|#.#|#.#", 'B': "##.|#.#|##.|#.#|##.",
	'C': "###|#..|#..|#..|###", 'D': "##.|#.#|#.#|#.#|##.", 'E': "###|#..|##.|#..|###",
	'F': "###|#..|##.|#..|#..", 'G': "###|#..|#.#|#.#|###", 'H': "#.#|#.#|###|#.#|#.#",
	'I': "###|.#.|.#.|.#.|###", 'J': "..#|..#|..#|#.#|###", 'K': "#.#|#.#|##.|#.#|#.#",
	'L': "#..|#..|#..|#..|###", 'M': "#.#|###|###|#.#|#.#", 'N': "##.|#.#|#.#|#.#|#.#",
	'O': "###|#.#|#.#|#.#|###", 'P': "###|#.#|###|#..|#..", 'Q': "###|#.#|#.#|###|..#",
	'R': "##.|#.#|##.|#.#|#.#", 'S': "###|#..|###|..#|###", 'T': "###|.#.|.#.|.#.|.#.",
	'U': "#.#|#.#|#.#|#.#|###", 'V': "#.#|#.#|#.#|#.#|.#.", 'W': "#.#|#.#|###|###|#.#",
	'X': "#.#|#.#|.#.|#.#|#.#", 'Y': "#.#|#.#|.#.|.#.|.#.", 'Z': "###|..#|.#.|#..|###",
	'.': "...|...|...|...|.#.", ',': "...|...|...|.#.|#..", '-': "...|...|###|...|...", '/': "..#|..#|.#.|#..|#..",
	':': "...|.#.|...|.#.|...", '=': "...|###|...|###|...", '(': ".#.|#..|#..|#..|.#.",
	')': ".#.|..#|..#|..#|.#.", '<': "..#|.#.|#..|.#.|..#", '%': "#.#|..#|.#.|#..|#.#",
}

type canvas struct{ img *image.RGBA }

func (c canvas) set(x, y int, col color.RGBA) {
	if image.Pt(x, y).In(c.img.Rect) {
		c.img.SetRGBA(x, y, col)
	}
}

func (c canvas) rect(x0, y0, x1, y1 int, col color.RGBA) {
	for y := min(y0, y1); y <= max(y0, y1); y++ {
		for x := min(x0, x1); x <= max(x0, x1); x++ {
			c.set(x, y, col)
		}
	}
}

// line draws a line of the given thickness (Bresenham, square pen).
func (c canvas) line(x0, y0, x1, y1, w int, col color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		c.rect(x0-w/2, y0-w/2, x0+(w-1)/2, y0+(w-1)/2, col)
		if x0 == x1 && y0 == y1 {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			x0 += sx
		} else {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

// text draws s (upper-cased) at scale 2: 8 px per character.
func (c canvas) text(x, y int, s string, col color.RGBA) {
	const sc = 2
	for _, r := range strings.ToUpper(s) {
		if g, ok := font3x5[r]; ok && g != "" {
			for row, bits := range strings.Split(g, "|") {
				for colI, ch := range bits {
					if ch == '#' {
						c.rect(x+colI*sc, y+row*sc, x+colI*sc+sc-1, y+row*sc+sc-1, col)
					}
				}
			}
		}
		x += 4 * sc
	}
}

func textWidth(s string) int { return len([]rune(s)) * 8 }

func writePlot(path string, r *report) error {
	const W, H = 960, 420
	c := canvas{image.NewRGBA(image.Rect(0, 0, W, H))}
	c.rect(0, 0, W-1, H-1, colWhite)

	// Left panel: S3 p99 (ms, log 0.1..1000) vs rate.
	px0, py0, px1, py1 := 60, 40, 450, 360
	c.text(px0, 12, "S3 P99 LATENCY (MS) VS RATE (MSG/S)", colAxis)
	maxRate := 0.0
	for _, vs := range r.curves {
		for _, pts := range vs {
			for _, p := range pts {
				maxRate = max(maxRate, p.Rate)
			}
		}
	}
	if maxRate == 0 {
		maxRate = 1
	}
	ly := func(v float64) int {
		v = math.Min(math.Max(v, 0.1), 1000)
		return py1 - int(float64(py1-py0)*(math.Log10(v)+1)/4)
	}
	lx := func(rate float64) int { return px0 + int(float64(px1-px0)*rate/maxRate) }
	for _, v := range []float64{0.1, 1, 10, 100, 1000} {
		y := ly(v)
		c.line(px0, y, px1, y, 1, colGrid)
		lbl := trimFloat(v)
		c.text(px0-6-textWidth(lbl), y-5, lbl, colAxis)
	}
	c.line(px0, ly(10), px1, ly(10), 1, colOne) // the S3 bound: p99 ≤ 10 ms
	for k := 0; k <= 4; k++ {
		rate := maxRate * float64(k) / 4
		x := lx(rate)
		c.line(x, py1, x, py1+4, 1, colAxis)
		lbl := trimFloat(math.Round(rate/100) / 10)
		if k > 0 {
			lbl += "K"
		}
		c.text(x-textWidth(lbl)/2, py1+10, lbl, colAxis)
	}
	c.line(px0, py0, px0, py1, 1, colAxis)
	c.line(px0, py1, px1, py1, 1, colAxis)
	for peer, col := range map[string]color.RGBA{"herald": colHerald, "node": colNode} {
		for variant, w := range map[string]int{"echo": 3, "ack": 1} {
			pts := r.curves[peer][variant]
			for i := range pts {
				x, y := lx(pts[i].Rate), ly(pts[i].P99)
				c.rect(x-2, y-2, x+2, y+2, col)
				if i > 0 {
					c.line(lx(pts[i-1].Rate), ly(pts[i-1].P99), x, y, w, col)
				}
			}
		}
	}
	// Legend under the axis, where no data is drawn.
	ly0 := py1 + 30
	c.rect(px0, ly0+3, px0+14, ly0+7, colHerald)
	c.text(px0+20, ly0, "HERALD", colHerald)
	c.rect(px0+80, ly0+3, px0+94, ly0+7, colNode)
	c.text(px0+100, ly0, "NODE", colNode)
	c.text(px0+150, ly0, "THICK: ECHO, THIN: ACK", colAxis)

	// Right panel: Herald × per primary metric (log 0.1..10), bars.
	bx0, by0, bx1, by1 := 520, 40, 940, 360
	c.text(bx0, 12, "HERALD ADVANTAGE (X, LOG) PER SCENARIO", colAxis)
	var bars []row
	for _, x := range r.Rows {
		if d, _ := defOf(x.Key); d.primary && !math.IsNaN(x.Advantage) && !math.IsInf(x.Advantage, 0) && x.Advantage > 0 {
			bars = append(bars, x)
		}
	}
	by := func(v float64) int {
		v = math.Min(math.Max(v, 0.1), 10)
		return by1 - int(float64(by1-by0)*(math.Log10(v)+1)/2)
	}
	for _, v := range []float64{0.1, 0.5, 1, 2, 5, 10} {
		y := by(v)
		col := colGrid
		if v == 1 {
			col = colOne
		}
		c.line(bx0, y, bx1, y, 1, col)
		lbl := trimFloat(v)
		c.text(bx0-6-textWidth(lbl), y-5, lbl, colAxis)
	}
	c.line(bx0, by0, bx0, by1, 1, colAxis)
	if len(bars) > 0 {
		slot := (bx1 - bx0) / len(bars)
		for i, x := range bars {
			xa := bx0 + i*slot + slot/5
			xb := bx0 + (i+1)*slot - slot/5
			col := colHerald
			if x.Advantage < 1 {
				col = colNode
			}
			c.rect(xa, by(1), xb, by(x.Advantage), col)
			lbl := shortLabel(x.Key)
			c.text((xa+xb)/2-textWidth(lbl)/2, by1+10, lbl, colAxis)
			v := trimFloat(math.Round(x.Advantage*100) / 100)
			ty := by(x.Advantage) - 14
			if x.Advantage < 1 {
				ty = by(x.Advantage) + 4
			}
			c.text((xa+xb)/2-textWidth(v)/2, ty, v, colAxis)
		}
	}
	c.text(bx0, by1+30, "BLUE: HERALD BETTER. ORANGE: NODE BETTER.", colAxis)

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(f, c.img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func trimFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// shortLabel names a bar: S1, S2A, S2B, S3, S4C, S4S, S5, S6.
func shortLabel(key string) string {
	switch {
	case strings.HasPrefix(key, "s1"):
		return "S1"
	case strings.HasPrefix(key, "s2a"):
		return "S2A"
	case strings.HasPrefix(key, "s2b"):
		return "S2B"
	case strings.HasPrefix(key, "s4c"):
		return "S4C"
	case strings.HasPrefix(key, "s4s"):
		return "S4S"
	}
	return strings.ToUpper(key[:2])
}
