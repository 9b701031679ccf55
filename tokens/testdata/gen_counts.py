"""Regenerates counts.json, the reference token counts TestCountGolden checks.

The counts come from OpenAI's tiktoken (the reference implementation), which
this package must agree with. tiktoken downloads its rank files on first use;
offline, point TIKTOKEN_CACHE_DIR at a directory holding the rank files
embedded in github.com/pkoukk/tiktoken-go-loader, each named by the SHA-1 of
its download URL (tiktoken checks their SHA-256 against its own record):

    python3 -m venv /tmp/tk && /tmp/tk/bin/pip install tiktoken==0.14.0
    A=$(go env GOMODCACHE)/github.com/pkoukk/tiktoken-go-loader@v0.0.2/assets
    mkdir -p /tmp/tkcache && for e in cl100k_base o200k_base; do
      u=https://openaipublic.blob.core.windows.net/encodings/$e.tiktoken
      cp $A/$e.tiktoken /tmp/tkcache/$(printf %s $u | sha1sum | cut -d' ' -f1)
    done
    TIKTOKEN_CACHE_DIR=/tmp/tkcache /tmp/tk/bin/python testdata/gen_counts.py
"""

import json
import os
import random

import tiktoken

HERE = os.path.dirname(os.path.abspath(__file__))

# Hand-picked texts: prose, code, markup, scripts, emoji, odd whitespace.
FIXED = [
    "",
    "hello world",
    "tiktoken is great!",
    "Héllo wörld — naïve café 🎉🚀 日本語のテキスト",
    "<|endoftext|> is counted as text, not as a special token",
    "I'm sure they'll say it's fine; we've done it, you'd agree, THEY'RE RIGHT.",
    "func main() {\n\tfmt.Println(\"hello\")\n}\n",
    '{"name":"search","arguments":{"query":"token counting","limit":10}}',
    "# Title\n\n- item one\n- item two\n\n```go\nx := 1\n```\n",
    "1234567890 3.14159 1e-9 0xDEADBEEF 2026-11-28T14:09:00Z",
    "Москва — столица России. Ελληνικά γράμματα. עברית. العربية. हिन्दी. தமிழ். 한국어.",
    "👨‍👩‍👧‍👦 ❤️‍🔥 👍🏽 🇯🇵🇫🇷 ✅",
    "tabs\tand  double  spaces   and\r\nCRLF\r\n\r\n  indented\n\n\n",
    "\u00a0nbsp\u2003em\u3000ideographic\u0085nel\u2028ls\u200bzwsp\ufeffbom\x1cfs",
    "e\u0301 n\u0303 a\u0308 combining marks; ǅungla ǈ Ǌ titlecase; ʰʲ modifiers",
    "Ⅻ ½ ² ① ٣ numbers that are not digits",
    "https://example.com/path/to/file?query=1&x=y#frag // comment\n/* block */",
    "a" * 1000,
    " " * 1000 + "x",
]

POOLS = [
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "0123456789",
    " \t\n\r",
    "'sStTrReEvVmMlLdD",
    ".,;:!?-_/\\()[]{}<>\"'`~@#$%^&*+=|",
    "éèêëàâäôöûüçñÿœæßÉÀÇ",
    "日本語のテキスト中文字符한국어",
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГ",
    "αβγδεζηθικλμνξοπρστυφχψω",
    "العربيةעברית",
    "हिन्दीதமிழ்",
    "🎉🚀👍🏽👨‍👩‍👧❤️‍🔥🇯🇵",
    "\u00a0\u2003\u3000\u0085\u200b\ufeff\u2028\u1680\u000b\u000c\x1c\x1f",
    "\u0301\u0308\u20dd",
    "ǅǈǋᾈᾉ",
    "ʰʲˠ",
    "Ⅻ½²⁴①",
    "ſKİ",
]

WORDS = (
    "the quick brown fox don't I'm we'll you've THEY'RE it's naïve café "
    "2024 3.14159 func main() {} if err != nil return Über ÉCOLE"
).split()


def texts():
    rnd = random.Random(7)
    out = list(FIXED)
    for _ in range(400):
        pool = "".join(rnd.sample(POOLS, rnd.randint(1, 5)))
        n = rnd.choice([1, 2, 3, 5, 10, 30, 80])
        out.append("".join(rnd.choice(pool) for _ in range(n)))
    for _ in range(100):
        out.append(" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(1, 30))))
    # Long pieces take the heap path (longer than 128 bytes).
    for n in (129, 300, 2000):
        for alphabet in ("abcdefghijklmnopqrstuvwxyz", "ab ", "!@#$%^&*()", "日本語中文字", "éèàçñ"):
            out.append("".join(rnd.choice(alphabet) for _ in range(n)))
    return out


def main():
    encs = {name: tiktoken.get_encoding(name) for name in ("cl100k_base", "o200k_base")}
    rows = [
        {"text": t, **{name: len(enc.encode_ordinary(t)) for name, enc in encs.items()}}
        for t in texts()
    ]
    with open(os.path.join(HERE, "counts.json"), "w", encoding="utf-8") as f:
        f.write("[\n")
        f.write(",\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
        f.write("\n]\n")


if __name__ == "__main__":
    main()
