package agents

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Block is a core-memory section as the runtime sees it.
type Block struct {
	ID    string
	Label string
	Value string
	Limit int
}

// RenderMemory renders core memory as the model sees it:
//
//	<persona characters="9/2000">
//	I am Sam.
//	</persona>
func RenderMemory(blocks []Block) string {
	var b strings.Builder
	b.Grow(memorySize(blocks))
	writeMemory(&b, blocks)
	return b.String()
}

// memorySize is the size of blocks rendered, give or take a few bytes.
func memorySize(blocks []Block) int {
	n := 0
	for _, bl := range blocks {
		n += len(bl.Value) + 2*len(bl.Label) + 40
	}
	return n
}

// writeMemory writes blocks rendered (RenderMemory) to b.
func writeMemory(b *strings.Builder, blocks []Block) {
	for i, bl := range blocks {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteByte('<')
		b.WriteString(bl.Label)
		b.WriteString(` characters="`)
		b.WriteString(strconv.Itoa(utf8.RuneCountInString(bl.Value)))
		b.WriteByte('/')
		b.WriteString(strconv.Itoa(bl.Limit))
		b.WriteString("\">\n")
		b.WriteString(bl.Value)
		b.WriteString("\n</")
		b.WriteString(bl.Label)
		b.WriteByte('>')
	}
}

// CompileSystem builds the system message: the agent's system prompt, then
// the memory metadata and the rendered core memory. A prompt containing
// {CORE_MEMORY} gets the memory there instead of at the end. It is built in
// one buffer: a step compiles it afresh, and it is the longest message.
func CompileSystem(prompt string, blocks []Block, recall, archival int, modified time.Time) string {
	var b strings.Builder
	placed := strings.Contains(prompt, "{CORE_MEMORY}")
	if !placed {
		b.Grow(len(prompt) + 1 + 400 + memorySize(blocks))
		b.WriteString(prompt)
		b.WriteByte('\n')
	}
	b.WriteString("### Memory [last modified: ")
	b.WriteString(LocalTime(modified))
	b.WriteString("]\n")
	b.WriteString(strconv.Itoa(recall))
	b.WriteString(" previous messages between you and the user are stored in recall memory (use functions to access them)\n")
	b.WriteString(strconv.Itoa(archival))
	b.WriteString(" total memories you created are stored in archival memory (use functions to access them)\n" +
		"\nCore memory shown below (limited in size, additional information stored in archival / recall memory):\n")
	writeMemory(&b, blocks)
	if placed {
		return strings.ReplaceAll(prompt, "{CORE_MEMORY}", b.String())
	}
	return b.String()
}
