package tokens

import (
	"unicode"
	"unicode/utf8"
)

// This file splits text into pieces the way the encodings' pre-tokenization
// regular expressions do, without a regular-expression engine: each
// function below follows one pattern's alternatives in order, with the same
// greedy-then-backtrack outcome. The patterns are OpenAI's
// (tiktoken_ext/openai_public.py); splitTest in split_test.go holds them and
// FuzzSplit checks these functions against a backtracking engine running
// them. Character classes come from Go's unicode tables; tiktoken's come
// from Rust's, so a character assigned in a Unicode version only one of
// them knows may split differently.

// Character classes, as bits.
const (
	cSpace  = 1 << iota // \s: unicode.IsSpace
	cLetter             // \p{L}
	cNumber             // \p{N}
	cNL                 // [\r\n]
	cUpper              // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]: o200k's "upper or caseless"
	cLower              // [\p{Ll}\p{Lm}\p{Lo}\p{M}]: o200k's "lower or caseless"
)

// asciiClass caches class for ASCII runes.
var asciiClass = func() (t [utf8.RuneSelf]uint8) {
	for r := range rune(utf8.RuneSelf) {
		t[r] = classify(r)
	}
	return t
}()

func classify(r rune) uint8 {
	var c uint8
	if unicode.IsSpace(r) {
		c |= cSpace
	}
	if unicode.IsLetter(r) {
		c |= cLetter
	}
	if unicode.IsNumber(r) {
		c |= cNumber
	}
	if r == '\r' || r == '\n' {
		c |= cNL
	}
	caseless := unicode.In(r, unicode.Lm, unicode.Lo, unicode.M)
	if caseless || unicode.In(r, unicode.Lu, unicode.Lt) {
		c |= cUpper
	}
	if caseless || unicode.Is(unicode.Ll, r) {
		c |= cLower
	}
	return c
}

// at decodes the rune at s[i] and returns its class and size, or (0, 0) at
// the end of s. An invalid byte is U+FFFD of size 1, as in a []rune
// conversion.
func at(s string, i int) (uint8, int) {
	if i >= len(s) {
		return 0, 0
	}
	if b := s[i]; b < utf8.RuneSelf {
		return asciiClass[b], 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	return classify(r), n
}

// run returns the end of the longest run of runes from i whose class has
// any bit of want.
func run(s string, i int, want uint8) int {
	for {
		c, n := at(s, i)
		if n == 0 || c&want == 0 {
			return i
		}
		i += n
	}
}

// otherRun returns the end of the longest run from i of [^\s\p{L}\p{N}].
func otherRun(s string, i int) int {
	for {
		c, n := at(s, i)
		if n == 0 || c&(cSpace|cLetter|cNumber) != 0 {
			return i
		}
		i += n
	}
}

// numbers matches \p{N}{1,3} at i, returning its end or -1.
func numbers(s string, i int) int {
	e := i
	for range 3 {
		c, n := at(s, e)
		if n == 0 || c&cNumber == 0 {
			break
		}
		e += n
	}
	if e == i {
		return -1
	}
	return e
}

// contraction matches (?i:'s|'t|'re|'ve|'m|'ll|'d) at i, returning its end
// or -1.
func contraction(s string, i int) int {
	if i+1 >= len(s) || s[i] != '\'' {
		return -1
	}
	lower := func(b byte) byte { return b | 0x20 } // ASCII letters only; callers compare to letters
	switch lower(s[i+1]) {
	case 's', 't', 'm', 'd':
		return i + 2
	case 'r', 'v':
		if i+2 < len(s) && lower(s[i+2]) == 'e' {
			return i + 3
		}
	case 'l':
		if i+2 < len(s) && lower(s[i+2]) == 'l' {
			return i + 3
		}
	}
	return -1
}

// whitespace matches, at i where a whitespace rune starts, the alternatives
// both patterns end with, \s*[\r\n]+|\s+(?!\S)|\s+, returning the end.
func whitespace(s string, i int) int {
	end, lastNL, last := i, -1, i
	for {
		c, n := at(s, end)
		if n == 0 || c&cSpace == 0 {
			break
		}
		last = end
		end += n
		if c&cNL != 0 {
			lastNL = end
		}
	}
	switch {
	case lastNL >= 0: // \s*[\r\n]+ backtracks to the last newline
		return lastNL
	case end == len(s): // \s+(?!\S) at the end of text
		return end
	case last > i: // \s+(?!\S) leaves the last space to the next piece
		return last
	default: // \s+: a single space before non-space
		return end
	}
}

// splitCL100K returns the end of the piece that starts at i < len(s), per
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
func splitCL100K(s string, i int) int {
	if e := contraction(s, i); e >= 0 {
		return e
	}
	c, n := at(s, i)
	if c&(cNL|cLetter|cNumber) == 0 { // [^\r\n\p{L}\p{N}]\p{L}+
		if e := run(s, i+n, cLetter); e > i+n {
			return e
		}
	}
	if c&cLetter != 0 { // \p{L}+
		return run(s, i+n, cLetter)
	}
	if e := numbers(s, i); e >= 0 {
		return e
	}
	j := i
	if s[i] == ' ' {
		j++
	}
	if e := otherRun(s, j); e > j { //  ?[^\s\p{L}\p{N}]+[\r\n]*
		return run(s, e, cNL)
	}
	return whitespace(s, i)
}

// splitO200K returns the end of the piece that starts at i < len(s), per
//
//	[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//	|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//	|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
func splitO200K(s string, i int) int {
	c, n := at(s, i)
	prefix := c&(cNL|cLetter|cNumber) == 0 // may [^\r\n\p{L}\p{N}]? take s[i]
	for _, word := range []func(string, int) int{upperLower, upperPlus} {
		e := -1
		if prefix {
			e = word(s, i+n)
		}
		if e < 0 {
			e = word(s, i)
		}
		if e >= 0 {
			if f := contraction(s, e); f >= 0 {
				return f
			}
			return e
		}
	}
	if e := numbers(s, i); e >= 0 {
		return e
	}
	j := i
	if s[i] == ' ' {
		j++
	}
	if e := otherRun(s, j); e > j { //  ?[^\s\p{L}\p{N}]+[\r\n/]*
		for e < len(s) && (s[e] == '\r' || s[e] == '\n' || s[e] == '/') {
			e++
		}
		return e
	}
	return whitespace(s, i)
}

// upperLower matches [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+
// at i, returning its end or -1.
func upperLower(s string, i int) int {
	// The greedy upper run, then a lower run after it; failing that, back
	// off to the last rune of the upper run that is also lower (a caseless
	// letter or mark), which then ends the match on its own.
	end, lastLower := i, -1
	for {
		c, n := at(s, end)
		if n == 0 || c&cUpper == 0 {
			break
		}
		end += n
		if c&cLower != 0 {
			lastLower = end
		}
	}
	if e := run(s, end, cLower); e > end {
		return e
	}
	return lastLower
}

// upperPlus matches [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*
// at i, returning its end or -1.
func upperPlus(s string, i int) int {
	e := run(s, i, cUpper)
	if e == i {
		return -1
	}
	return run(s, e, cLower)
}
