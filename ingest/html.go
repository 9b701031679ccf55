package ingest

import (
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// hidden are elements whose content is never shown as text.
var hidden = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Noscript: true, atom.Template: true,
	atom.Svg: true, atom.Iframe: true, atom.Object: true,
	atom.Canvas: true, atom.Select: true,
}

// blocks are elements that start and end a line of text.
var blocks = map[atom.Atom]bool{
	atom.Address: true, atom.Article: true, atom.Aside: true, atom.Blockquote: true, atom.Body: true,
	atom.Br: true, atom.Caption: true, atom.Dd: true, atom.Details: true, atom.Dialog: true, atom.Div: true,
	atom.Dl: true, atom.Dt: true, atom.Fieldset: true, atom.Figcaption: true, atom.Figure: true,
	atom.Footer: true, atom.Form: true, atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true,
	atom.H5: true, atom.H6: true, atom.Header: true, atom.Hr: true, atom.Html: true, atom.Legend: true,
	atom.Li: true, atom.Main: true, atom.Nav: true, atom.Ol: true, atom.P: true, atom.Pre: true,
	atom.Section: true, atom.Summary: true, atom.Table: true, atom.Tbody: true, atom.Td: true,
	atom.Tfoot: true, atom.Th: true, atom.Thead: true, atom.Title: true, atom.Tr: true, atom.Ul: true,
	atom.Textarea: true, atom.Option: true,
}

// lines are blocks that start a new line but not a new paragraph.
var lines = map[atom.Atom]bool{
	atom.Li: true, atom.Dt: true, atom.Dd: true, atom.Tr: true, atom.Td: true, atom.Th: true,
	atom.Option: true, atom.Caption: true, atom.Summary: true, atom.Figcaption: true, atom.Legend: true,
}

// extractHTML returns the visible text of an HTML document: text inside
// script, style and similar elements is dropped, runs of white space collapse
// to one space (except inside pre), and block elements and br become line
// breaks. Blank lines are collapsed to at most one. Malformed HTML is read
// the way a browser's tokenizer reads it; it is never an error.
func extractHTML(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	var (
		out  strings.Builder
		line strings.Builder // the current line, white space collapsed
		skip []atom.Atom     // open hidden elements
		pre  int             // depth of open pre elements
		nl   = 2             // consecutive line breaks written (2: at the start)
	)
	flush := func() {
		t := strings.TrimSpace(line.String())
		line.Reset()
		if t != "" {
			out.WriteString(t)
			out.WriteByte('\n')
			nl = 1
		}
	}
	breakLine := func(a atom.Atom) {
		flush()
		if nl == 1 && !lines[a] {
			out.WriteByte('\n') // a blank line between blocks
			nl = 2
		}
	}
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			flush()
			return strings.TrimRight(out.String(), "\n")
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			if hidden[a] && tt == html.StartTagToken {
				skip = append(skip, a)
				continue
			}
			if len(skip) > 0 {
				continue
			}
			if a == atom.Pre && tt == html.StartTagToken {
				pre++
			}
			if a == atom.Br {
				flush()
				continue
			}
			if blocks[a] {
				breakLine(a)
			} else if a == atom.Img {
				// An image's alt text is what a reader sees in its place.
				for more := true; more; {
					var k, v []byte
					k, v, more = z.TagAttr()
					if string(k) == "alt" && len(v) > 0 {
						line.WriteString(" " + string(v) + " ")
					}
				}
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			if len(skip) > 0 {
				if skip[len(skip)-1] == a {
					skip = skip[:len(skip)-1]
				}
				continue
			}
			if a == atom.Pre && pre > 0 {
				pre--
			}
			if blocks[a] {
				breakLine(a)
			}
		case html.TextToken:
			if len(skip) > 0 {
				continue
			}
			text := string(z.Text())
			if pre > 0 {
				lines := strings.Split(text, "\n")
				for i, l := range lines {
					if i > 0 {
						flush()
					}
					line.WriteString(l)
				}
				continue
			}
			writeCollapsed(&line, text)
		}
	}
}

// writeCollapsed appends text with each run of white space as one space.
func writeCollapsed(b *strings.Builder, text string) {
	space := false
	for _, r := range text {
		switch r {
		case ' ', '\t', '\n', '\r', '\f', '\u00a0':
			space = true
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	if space {
		b.WriteByte(' ')
	}
}
