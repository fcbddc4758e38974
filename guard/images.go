package guard

import (
	"encoding/base64"
	"encoding/binary"
	"math"
	"strings"

	"github.com/sluice-gw/sluice"
)

// Image token rules, as the providers publish them.
//
// OpenAI, tile models (gpt-4o, gpt-4.1, gpt-4.5, o1, o3, gpt-5): detail low
// costs the base; otherwise the image is scaled to fit in 2048×2048, then
// down so that its shortest side is 768 pixels, and each 512-pixel tile
// costs the tile price on top of the base. gpt-4o and gpt-4.1 charge 85 +
// 170 a tile, o1 and o3 75 + 150, gpt-5 70 + 140, gpt-4o-mini 2833 + 5667
// (its low token price, same cost per image). Smaller images are not scaled
// up. Detail auto counts as high: the most it can cost.
//
// OpenAI, patch models (gpt-4.1-mini and -nano, gpt-5-mini and -nano,
// o4-mini): the image is covered by 32-pixel patches, scaled down to fit in
// 1536 patches if it needs more, and the patches multiplied by the model's
// factor (1.62, 2.46, 1.72).
//
// Anthropic: about width × height / 750 tokens, after scaling the long edge
// down to 1568 pixels; images over about 1600 tokens are scaled down to it.
//
// Other models are counted by the gpt-4o rule. The size of an image is read
// from its bytes (PNG, JPEG, GIF, WebP headers; a data: URL is decoded far
// enough to read it); an image known only by an http URL, or whose size
// cannot be read, counts as the most the rule allows.

type imageKind int

const (
	imageTiles imageKind = iota
	imagePatches
	imageArea
)

type imageRule struct {
	kind       imageKind
	base, tile int     // imageTiles
	factor     float64 // imagePatches
}

func tiles(base, tile int) imageRule   { return imageRule{kind: imageTiles, base: base, tile: tile} }
func patches(factor float64) imageRule { return imageRule{kind: imagePatches, factor: factor} }

// ImageTokens returns the prompt tokens of an image of width × height
// pixels for model, an upstream model name, at detail ("low", "high",
// "auto" or ""). A zero width or height means the size is unknown, and the
// image counts as the largest the model's rule allows.
func ImageTokens(model string, width, height int, detail string) int {
	return lookupModel(model).image.tokens(width, height, detail)
}

func (r imageRule) tokensOf(p *sluice.Part) int {
	w, h := imageSize(p)
	return r.tokens(w, h, p.ImageDetail)
}

func (r imageRule) tokens(w, h int, detail string) int {
	known := w > 0 && h > 0
	switch r.kind {
	case imagePatches:
		n := 1536
		if known {
			n = patchCount(w, h)
		}
		return int(math.Ceil(float64(n) * r.factor))
	case imageArea:
		if !known {
			return 1600
		}
		if long := max(w, h); long > 1568 {
			w, h = w*1568/long, h*1568/long
		}
		return min(int(math.Ceil(float64(w)*float64(h)/750)), 1600)
	}
	if strings.EqualFold(detail, "low") {
		return r.base
	}
	if !known {
		return r.base + 8*r.tile // 768 × 2048 after scaling: 2 × 4 tiles
	}
	if long := max(w, h); long > 2048 {
		w, h = w*2048/long, h*2048/long
	}
	if short := min(w, h); short > 768 {
		w, h = w*768/short, h*768/short
	}
	return r.base + r.tile*ceilDiv(w, 512)*ceilDiv(h, 512)
}

// patchCount is OpenAI's patch count: 32-pixel patches, at most 1536, the
// image scaled down to fit when it needs more.
func patchCount(w, h int) int {
	const size, maxPatches = 32, 1536
	n := ceilDiv(w, size) * ceilDiv(h, size)
	if n <= maxPatches {
		return n
	}
	fw, fh := float64(w), float64(h)
	s := math.Sqrt(size * size * maxPatches / (fw * fh))
	pw, ph := fw*s/size, fh*s/size
	s *= min(math.Floor(pw)/pw, math.Floor(ph)/ph)
	n = int(math.Ceil(fw*s/size-1e-9)) * int(math.Ceil(fh*s/size-1e-9))
	return min(n, maxPatches)
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// imageSize reads the pixel size of an image part from its bytes, or
// returns zeros.
func imageSize(p *sluice.Part) (w, h int) {
	if len(p.ImageData) > 0 {
		return imageHeaderSize(p.ImageData)
	}
	u := p.ImageURL
	if len(u) < 5 || !strings.EqualFold(u[:5], "data:") {
		return 0, 0
	}
	meta, payload, ok := strings.Cut(u[5:], ",")
	if !ok || !strings.HasSuffix(strings.ToLower(meta), ";base64") {
		return 0, 0
	}
	// The size is in the first bytes for PNG, GIF and WebP; a JPEG may
	// put up to a few hundred KB of metadata before it.
	const maxPrefix = 256 << 10
	if len(payload) > maxPrefix {
		payload = payload[:maxPrefix]
	}
	payload = payload[:len(payload)/4*4]
	buf := make([]byte, base64.StdEncoding.DecodedLen(len(payload)))
	n, err := base64.StdEncoding.Decode(buf, []byte(payload))
	if err != nil && n == 0 {
		return 0, 0
	}
	return imageHeaderSize(buf[:n])
}

// imageHeaderSize reads the size from a PNG, GIF, JPEG or WebP header.
func imageHeaderSize(b []byte) (w, h int) {
	switch {
	case len(b) >= 24 && string(b[:8]) == "\x89PNG\r\n\x1a\n" && string(b[12:16]) == "IHDR":
		return int(binary.BigEndian.Uint32(b[16:])), int(binary.BigEndian.Uint32(b[20:]))
	case len(b) >= 10 && (string(b[:6]) == "GIF87a" || string(b[:6]) == "GIF89a"):
		return int(binary.LittleEndian.Uint16(b[6:])), int(binary.LittleEndian.Uint16(b[8:]))
	case len(b) >= 4 && b[0] == 0xFF && b[1] == 0xD8:
		return jpegSize(b)
	case len(b) >= 30 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return webpSize(b)
	}
	return 0, 0
}

// jpegSize walks the JPEG markers to the first start-of-frame.
func jpegSize(b []byte) (w, h int) {
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			return 0, 0
		}
		m := b[i+1]
		switch {
		case m == 0xFF: // fill byte
			i++
			continue
		case m == 0x01 || m >= 0xD0 && m <= 0xD7: // no length
			i += 2
			continue
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC {
			if i+9 > len(b) {
				return 0, 0
			}
			return int(binary.BigEndian.Uint16(b[i+7:])), int(binary.BigEndian.Uint16(b[i+5:]))
		}
		if n < 2 {
			return 0, 0
		}
		i += 2 + n
	}
	return 0, 0
}

// webpSize reads the canvas size of a lossy, lossless or extended WebP.
func webpSize(b []byte) (w, h int) {
	switch string(b[12:16]) {
	case "VP8 ":
		if b[23] == 0x9D && b[24] == 0x01 && b[25] == 0x2A {
			return int(binary.LittleEndian.Uint16(b[26:]) & 0x3FFF), int(binary.LittleEndian.Uint16(b[28:]) & 0x3FFF)
		}
	case "VP8L":
		if b[20] == 0x2F {
			v := binary.LittleEndian.Uint32(b[21:])
			return int(v&0x3FFF) + 1, int(v>>14&0x3FFF) + 1
		}
	case "VP8X":
		w := int(b[24]) | int(b[25])<<8 | int(b[26])<<16
		h := int(b[27]) | int(b[28])<<8 | int(b[29])<<16
		return w + 1, h + 1
	}
	return 0, 0
}
