package guard

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"testing"

	"github.com/sluice-gw/sluice"
)

func pngBytes(t testing.TB, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestImageTokens(t *testing.T) {
	for _, tc := range []struct {
		model  string
		w, h   int
		detail string
		want   int
	}{
		// OpenAI's documented examples.
		{"gpt-4o", 1024, 1024, "high", 765},  // 768×768: 4 tiles
		{"gpt-4o", 2048, 4096, "high", 1105}, // 1024×2048, then 768×1536: 6 tiles
		{"gpt-4o", 4096, 8192, "low", 85},
		{"gpt-4o", 1024, 1024, "", 765},     // unset counts as high
		{"gpt-4o", 1024, 1024, "auto", 765}, // auto may be high
		{"gpt-4o", 512, 512, "high", 255},   // not scaled up: 1 tile
		{"gpt-4o", 100, 100, "high", 255},
		{"gpt-4o", 513, 512, "high", 425},    // 2 tiles
		{"gpt-4o", 800, 600, "high", 765},    // shortest side 600 ≤ 768, not scaled: 2×2 tiles
		{"gpt-4o", 0, 0, "high", 85 + 8*170}, // unknown: 768×2048
		{"gpt-4.1", 1024, 1024, "high", 765},
		{"gpt-4o-mini", 1024, 1024, "high", 2833 + 4*5667},
		{"gpt-4o-mini", 1024, 1024, "low", 2833},
		{"o1", 1024, 1024, "high", 75 + 4*150},
		{"gpt-5", 1024, 1024, "high", 70 + 4*140},
		// Patch models: the documented 1024×1024 (1024 patches) and
		// 1800×2400 (1452 patches after scaling) examples.
		{"gpt-4.1-mini", 1024, 1024, "", 1659}, // ceil(1024 × 1.62)
		{"gpt-4.1-mini", 1800, 2400, "", 2353}, // ceil(1452 × 1.62)
		{"gpt-4.1-nano", 1024, 1024, "low", 2520},
		{"o4-mini", 0, 0, "", 2642}, // ceil(1536 × 1.72)
		// Anthropic: w×h/750 after the long edge is at most 1568.
		{"claude-sonnet-4", 1000, 1000, "", 1334},
		{"claude-sonnet-4", 1092, 1092, "", 1590},
		{"claude-sonnet-4", 200, 200, "", 54},
		{"claude-sonnet-4", 3000, 1000, "", 1092}, // 1568×522
		{"claude-sonnet-4", 2000, 1500, "", 1600}, // scaled down to the cap
		{"claude-sonnet-4", 0, 0, "", 1600},
		// Others: the gpt-4o rule.
		{"llama-3.2-90b-vision", 1024, 1024, "", 765},
	} {
		if got := ImageTokens(tc.model, tc.w, tc.h, tc.detail); got != tc.want {
			t.Errorf("%s %d×%d %q: %d tokens, want %d", tc.model, tc.w, tc.h, tc.detail, got, tc.want)
		}
	}
}

func TestPatchCount(t *testing.T) {
	for _, tc := range []struct{ w, h, want int }{
		{1024, 1024, 1024},
		{1800, 2400, 1452},
		{32, 32, 1},
		{33, 1, 2},
		{10000, 10000, 1521}, // 39×39 after scaling
		{50000, 100, 500},    // the documented scaling floors the short side to one patch
	} {
		if got := patchCount(tc.w, tc.h); got != tc.want || got > 1536 {
			t.Errorf("patchCount(%d, %d) = %d, want %d", tc.w, tc.h, got, tc.want)
		}
	}
}

func TestImageSize(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 321, 123))
	var pngB, jpgB, gifB bytes.Buffer
	if err := png.Encode(&pngB, img); err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(&jpgB, img, nil); err != nil {
		t.Fatal(err)
	}
	if err := gif.Encode(&gifB, img, nil); err != nil {
		t.Fatal(err)
	}
	// A JPEG with a large metadata segment before its frame header.
	app1 := append([]byte{0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFE}, make([]byte, 0xFFFC)...)
	jpgBig := append(app1, jpgB.Bytes()[2:]...)

	webp := func(chunk string, body []byte) []byte {
		b := []byte("RIFF\x00\x00\x00\x00WEBP" + chunk + "\x00\x00\x00\x00")
		return append(b, append(body, make([]byte, 16)...)...)
	}
	vp8 := make([]byte, 10)
	copy(vp8[3:], []byte{0x9D, 0x01, 0x2A})
	binary.LittleEndian.PutUint16(vp8[6:], 321)
	binary.LittleEndian.PutUint16(vp8[8:], 123)
	vp8l := []byte{0x2F, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(vp8l[1:], uint32(320)|uint32(122)<<14)
	vp8x := make([]byte, 10)
	vp8x[4], vp8x[5] = 0x40, 0x01 // 320
	vp8x[7] = 122

	for _, tc := range []struct {
		name string
		part sluice.Part
		w, h int
	}{
		{"png", sluice.Part{ImageData: pngB.Bytes()}, 321, 123},
		{"jpeg", sluice.Part{ImageData: jpgB.Bytes()}, 321, 123},
		{"jpeg after 64KB of metadata", sluice.Part{ImageData: jpgBig}, 321, 123},
		{"gif", sluice.Part{ImageData: gifB.Bytes()}, 321, 123},
		{"webp lossy", sluice.Part{ImageData: webp("VP8 ", vp8)}, 321, 123},
		{"webp lossless", sluice.Part{ImageData: webp("VP8L", vp8l)}, 321, 123},
		{"webp extended", sluice.Part{ImageData: webp("VP8X", vp8x)}, 321, 123},
		{"data URL", sluice.Part{ImageURL: "data:image/png;base64," + base64.StdEncoding.EncodeToString(pngB.Bytes())}, 321, 123},
		{"data URL of a JPEG", sluice.Part{ImageURL: "DATA:image/jpeg;base64," + base64.StdEncoding.EncodeToString(jpgBig)}, 321, 123},
		{"http URL", sluice.Part{ImageURL: "https://example.com/cat.png"}, 0, 0},
		{"not base64", sluice.Part{ImageURL: "data:image/png,rawbytes"}, 0, 0},
		{"garbage", sluice.Part{ImageData: []byte("not an image at all")}, 0, 0},
		{"truncated png", sluice.Part{ImageData: pngB.Bytes()[:20]}, 0, 0},
		{"truncated jpeg", sluice.Part{ImageData: jpgB.Bytes()[:30]}, 0, 0},
		{"empty", sluice.Part{}, 0, 0},
	} {
		w, h := imageSize(&tc.part)
		if w != tc.w || h != tc.h {
			t.Errorf("%s: %d×%d, want %d×%d", tc.name, w, h, tc.w, tc.h)
		}
	}
}

func FuzzImageHeaderSize(f *testing.F) {
	f.Add([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x01\x00\x00\x00\x01\x00"))
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0x10, 0x00, 0x20})
	f.Add([]byte("GIF89a\x10\x00\x20\x00"))
	f.Add([]byte("RIFF\x00\x00\x00\x00WEBPVP8X\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, h := imageHeaderSize(b) // must not panic
		if w < 0 || h < 0 {
			t.Errorf("negative size %d×%d", w, h)
		}
	})
}
