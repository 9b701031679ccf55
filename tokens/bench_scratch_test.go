package tokens

import (
	"strings"
	"testing"
	"time"
)

func TestScratchLong(t *testing.T) {
	c, _ := ForEncoding(O200KBase)
	for _, s := range []string{strings.Repeat("a", 1<<20), strings.Repeat(" ", 1<<20) + "x", strings.Repeat("ab cd ", 1<<18)} {
		st := time.Now()
		n := c.Count(s)
		t.Logf("len %d: %d tokens %v", len(s), n, time.Since(st))
	}
}

func BenchmarkScratch(b *testing.B) {
	c, _ := ForEncoding(CL100KBase)
	text := strings.Repeat("The quick brown fox jumps over the lazy dog. func main() { fmt.Println(42) } ", 27)[:2048]
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		c.Count(text)
	}
}
