package ingest

import (
	"bytes"
	"encoding/json"
	"mime"
	"path"
	"strings"
	"unicode/utf8"
)

// Format is a kind of file this package extracts text from.
type Format string

// The formats [Extract] reads.
const (
	FormatText     Format = "text"     // plain text, logs, CSV: read as UTF-8 (or UTF-16 with a BOM)
	FormatMarkdown Format = "markdown" // kept as written; the markup is searchable text
	FormatCode     Format = "code"     // source code and configuration, read as text
	FormatJSON     Format = "json"     // JSON and JSON Lines, rendered as "path: value" lines
	FormatHTML     Format = "html"     // visible text only
	FormatPDF      Format = "pdf"      // the text of every page, in page order
)

// mimeOf is the MIME type reported for each format when a file's own type is
// not known more precisely.
var mimeOf = map[Format]string{
	FormatText:     "text/plain",
	FormatMarkdown: "text/markdown",
	FormatCode:     "text/plain",
	FormatJSON:     "application/json",
	FormatHTML:     "text/html",
	FormatPDF:      "application/pdf",
}

// byExtension maps a lower-case file extension to its format.
var byExtension = map[string]Format{
	".txt": FormatText, ".text": FormatText, ".log": FormatText, ".csv": FormatText,
	".tsv": FormatText, ".rst": FormatText, ".adoc": FormatText, ".org": FormatText,
	".tex": FormatText, ".srt": FormatText, ".vtt": FormatText,

	".md": FormatMarkdown, ".markdown": FormatMarkdown, ".mdx": FormatMarkdown, ".mkd": FormatMarkdown,

	".json": FormatJSON, ".jsonl": FormatJSON, ".ndjson": FormatJSON, ".geojson": FormatJSON,

	".html": FormatHTML, ".htm": FormatHTML, ".xhtml": FormatHTML,

	".pdf": FormatPDF,
}

// codeExtensions are source-code and configuration files, read as text.
var codeExtensions = []string{
	".go", ".py", ".pyi", ".js", ".mjs", ".cjs", ".ts", ".tsx", ".jsx", ".java", ".kt", ".kts",
	".scala", ".groovy", ".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".cs", ".fs", ".rs",
	".rb", ".php", ".pl", ".pm", ".lua", ".r", ".jl", ".swift", ".m", ".mm", ".dart", ".ex",
	".exs", ".erl", ".hrl", ".clj", ".hs", ".ml", ".mli", ".elm", ".zig", ".nim", ".v", ".sv",
	".vhd", ".sh", ".bash", ".zsh", ".fish", ".ps1", ".bat", ".cmd", ".sql", ".graphql", ".gql",
	".proto", ".thrift", ".css", ".scss", ".sass", ".less", ".vue", ".svelte", ".xml", ".xsd",
	".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".properties", ".env", ".mk", ".cmake",
	".gradle", ".tf", ".hcl", ".nix", ".dockerfile", ".diff", ".patch", ".asm", ".s",
}

// knownUnsupported names extensions that are certainly not text, so they are
// refused without sniffing (and with a clear type in the error).
var knownUnsupported = []string{
	".doc", ".docx", ".odt", ".rtf", ".xls", ".xlsx", ".ods", ".ppt", ".pptx", ".odp", ".epub",
	".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".avif", ".heic", ".ico", ".svg",
	".mp3", ".wav", ".flac", ".ogg", ".m4a", ".mp4", ".mov", ".avi", ".mkv", ".webm",
	".zip", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".rar", ".tar", ".jar", ".iso", ".dmg",
	".exe", ".dll", ".so", ".dylib", ".o", ".a", ".bin", ".class", ".wasm", ".pyc",
	".sqlite", ".db", ".parquet", ".avro", ".pkl", ".npy", ".ttf", ".otf", ".woff", ".woff2",
}

// textNames are extensionless file names that are text.
var textNames = map[string]Format{
	"readme": FormatText, "license": FormatText, "copying": FormatText, "authors": FormatText,
	"changelog": FormatText, "notice": FormatText, "makefile": FormatCode, "dockerfile": FormatCode,
	"gemfile": FormatCode, "rakefile": FormatCode, "procfile": FormatCode,
}

var unsupportedExt = map[string]bool{}

func init() {
	for _, e := range codeExtensions {
		byExtension[e] = FormatCode
	}
	for _, e := range knownUnsupported {
		unsupportedExt[e] = true
	}
}

// byMIME maps a MIME type (without parameters) to its format.
var byMIME = map[string]Format{
	"text/plain": FormatText, "text/csv": FormatText, "text/tab-separated-values": FormatText,
	"text/markdown": FormatMarkdown, "text/x-markdown": FormatMarkdown,
	"application/json": FormatJSON, "application/x-ndjson": FormatJSON, "application/jsonl": FormatJSON,
	"application/ld+json": FormatJSON, "application/geo+json": FormatJSON,
	"text/html": FormatHTML, "application/xhtml+xml": FormatHTML,
	"application/pdf": FormatPDF, "application/x-pdf": FormatPDF,
	"application/xml": FormatCode, "text/xml": FormatCode, "application/javascript": FormatCode,
	"text/javascript": FormatCode, "application/x-yaml": FormatCode, "application/yaml": FormatCode,
	"text/x-python": FormatCode, "application/x-sh": FormatCode, "application/toml": FormatCode,
	"application/sql": FormatCode,
}

// Detect reports the format of a file from its name, then its MIME type, then
// its content (the first few hundred bytes are enough), and the MIME type to
// record for it. A name whose extension is not text (".docx", ".png"), a MIME
// type that is not text, or binary content with neither gives an error of
// kind [ErrUnsupported] that names the type.
//
// Detect does not validate the content: a file named .pdf that is not a PDF
// is detected as [FormatPDF] and fails in [Extract] with [ErrCorrupt].
func Detect(name, mimeType string, data []byte) (Format, string, error) {
	base := strings.ToLower(path.Base(strings.ReplaceAll(name, "\\", "/")))
	ext := path.Ext(base)
	if ext == base { // ".env", ".bashrc": a dot file, not an extension
		ext = ""
		if f, ok := byExtension[base]; ok {
			return f, mimeOf[f], nil
		}
	}
	if ext != "" {
		if f, ok := byExtension[ext]; ok {
			return f, mimeFor(f, mimeType), nil
		}
		if unsupportedExt[ext] {
			return "", mimeType, &Error{Name: name, Type: quoteType(ext, mimeType), Kind: ErrUnsupported,
				Detail: "supported are plain text, Markdown, JSON, HTML, PDF and source code"}
		}
	} else if f, ok := textNames[base]; ok {
		return f, mimeOf[f], nil
	}
	mt := ""
	if mimeType != "" {
		if m, _, err := mime.ParseMediaType(mimeType); err == nil {
			mt = strings.ToLower(m)
		}
	}
	if f, ok := byMIME[mt]; ok {
		return f, mt, nil
	}
	if strings.HasPrefix(mt, "text/") {
		return FormatText, mt, nil
	}
	if strings.HasSuffix(mt, "+json") {
		return FormatJSON, mt, nil
	}
	if mt != "" && mt != "application/octet-stream" && mt != "binary/octet-stream" {
		return "", mt, &Error{Name: name, Type: quoteType(ext, mt), Kind: ErrUnsupported,
			Detail: "supported are plain text, Markdown, JSON, HTML, PDF and source code"}
	}
	if f, ok := sniff(data); ok {
		return f, mimeOf[f], nil
	}
	return "", "application/octet-stream", &Error{Name: name, Type: quoteType(ext, "application/octet-stream"),
		Kind: ErrUnsupported, Detail: "the content is binary, not text, JSON, HTML or PDF"}
}

// mimeFor keeps a caller's MIME type when it agrees with the format.
func mimeFor(f Format, claimed string) string {
	if m, _, err := mime.ParseMediaType(claimed); err == nil {
		if g, ok := byMIME[strings.ToLower(m)]; ok && g == f {
			return strings.ToLower(m)
		}
	}
	return mimeOf[f]
}

func quoteType(ext, mimeType string) string {
	switch {
	case ext != "" && mimeType != "":
		return `"` + ext + `" (` + mimeType + ")"
	case ext != "":
		return `"` + ext + `"`
	default:
		return mimeType
	}
}

// sniff guesses a format from content alone.
func sniff(data []byte) (Format, bool) {
	head := data
	if len(head) > 1024 {
		head = head[:1024]
	}
	if bytes.HasPrefix(head, []byte("%PDF-")) {
		return FormatPDF, true
	}
	if bytes.HasPrefix(head, bomUTF16LE) || bytes.HasPrefix(head, bomUTF16BE) {
		return FormatText, true
	}
	trimmed := bytes.TrimLeft(bytes.TrimPrefix(head, bomUTF8), " \t\r\n")
	lower := bytes.ToLower(trimmed[:min(len(trimmed), 64)])
	if bytes.HasPrefix(lower, []byte("<!doctype html")) || bytes.HasPrefix(lower, []byte("<html")) {
		return FormatHTML, true
	}
	if !looksText(head) {
		return "", false
	}
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') && len(data) <= 1024 && json.Valid(data) {
		return FormatJSON, true
	}
	return FormatText, true
}

// looksText reports whether b is UTF-8 without NUL or other control bytes
// (a rune cut at the end of b is allowed).
func looksText(b []byte) bool {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f' && c != '\v' && c != 0x1b {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return len(b)-i < utf8.UTFMax && !utf8.FullRune(b[i:])
		}
		i += n
	}
	return true
}

// mimeFromName returns the MIME type a file's name implies for a supported
// format, or "".
func mimeFromName(name string) string {
	base := strings.ToLower(path.Base(strings.ReplaceAll(name, "\\", "/")))
	if f, ok := byExtension[path.Ext(base)]; ok {
		return mimeOf[f]
	}
	if f, ok := textNames[base]; ok {
		return mimeOf[f]
	}
	return ""
}
