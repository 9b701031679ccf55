package agents

import (
	"fmt"
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
	for i, bl := range blocks {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "<%s characters=\"%d/%d\">\n%s\n</%s>", bl.Label, utf8.RuneCountInString(bl.Value), bl.Limit, bl.Value, bl.Label)
	}
	return b.String()
}

// CompileSystem builds the system message: the agent's system prompt, then
// the memory metadata and the rendered core memory. A prompt containing
// {CORE_MEMORY} gets the memory there instead of at the end.
func CompileSystem(prompt string, blocks []Block, recall, archival int, modified time.Time) string {
	core := fmt.Sprintf("### Memory [last modified: %s]\n"+
		"%d previous messages between you and the user are stored in recall memory (use functions to access them)\n"+
		"%d total memories you created are stored in archival memory (use functions to access them)\n"+
		"\nCore memory shown below (limited in size, additional information stored in archival / recall memory):\n%s",
		LocalTime(modified), recall, archival, RenderMemory(blocks))
	if strings.Contains(prompt, "{CORE_MEMORY}") {
		return strings.ReplaceAll(prompt, "{CORE_MEMORY}", core)
	}
	return prompt + "\n" + core
}
