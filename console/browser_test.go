package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/llmtest"
)

// The browser tests drive the console in a real headless Chromium (Debian's
// package; nothing downloads a browser) against a real engram with the
// scripted model. Without Chromium they skip, unless ENGRAM_BROWSER_TESTS=1
// (CI sets it), when they fail. ENGRAM_CHROMIUM names the executable to use
// instead of looking for one.
// With ENGRAM_CONSOLE_SCREENSHOTS=DIR each screen is written to DIR/NAME.png
// (docs/console/ holds the README's).

// chromium finds the browser, or skips (fails, under ENGRAM_BROWSER_TESTS=1).
func chromium(t *testing.T) string {
	t.Helper()
	candidates := []string{"chromium", "chromium-browser", "/usr/bin/chromium"}
	if c := os.Getenv("ENGRAM_CHROMIUM"); c != "" {
		candidates = []string{c} // that one or none
	}
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("ENGRAM_BROWSER_TESTS") == "1" {
		t.Fatal("ENGRAM_BROWSER_TESTS=1 but no Chromium was found (apt-get install -y chromium, or set ENGRAM_CHROMIUM)")
	}
	t.Skip("no Chromium (apt-get install -y chromium); set ENGRAM_BROWSER_TESTS=1 to make this a failure")
	return ""
}

// browser is one Chromium tab on a fresh profile.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T, width, height int) *browser {
	t.Helper()
	path := chromium(t)
	// The whole browser lives at most this long; each wait below is shorter.
	parent, cancelAll := context.WithTimeout(context.Background(), 100*time.Second)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(parent, opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithErrorf(func(string, ...any) {}))
	t.Cleanup(func() { cancelTab(); cancelAlloc(); cancelAll() })
	b := &browser{t: t, ctx: ctx}
	b.do(chromedp.EmulateViewport(int64(width), int64(height)))
	return b
}

// do runs actions, failing the test at the first error.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// wait polls a JavaScript expression until it is truthy (20 s at most).
func (b *browser) wait(what, expr string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool]("!!("+expr+")", chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		text, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.querySelector('main').innerText.slice(0, 3000)`))
		b.t.Fatalf("waiting for %s (%s): %v\npage text:\n%s", what, expr, err, text)
	}
}

// eval evaluates a JavaScript expression whose value is a string.
func (b *browser) eval(expr string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func (b *browser) click(sel string) { b.t.Helper(); b.do(chromedp.Click(chromedp.CSS(sel))) }

// fill sets a field's value as typing would, firing its input event.
func (b *browser) fill(sel, value string) {
	b.t.Helper()
	v, _ := json.Marshal(value)
	s, _ := json.Marshal(sel)
	b.do(chromedp.WaitVisible(chromedp.CSS(sel)))
	b.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%s); e.value = %s; e.dispatchEvent(new Event('input', {bubbles: true})); e.dispatchEvent(new Event('change', {bubbles: true})); return ''; })()`, s, v))
}

// shot writes a screenshot of the viewport to $ENGRAM_CONSOLE_SCREENSHOTS/name.png.
func (b *browser) shot(name string) {
	b.t.Helper()
	dir := os.Getenv("ENGRAM_CONSOLE_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func js(s string) string { b, _ := json.Marshal(s); return string(b) }

// TestBrowserConsole walks every screen as a user would: create an agent,
// chat with it and watch the reply stream in while its core memory changes,
// edit a block by hand (and be refused over its limit), retry, insert and
// search archival memory, upload a file into a folder and attach it, scrub
// the timeline and fork from a past event, derive a tool's schema and create
// it, and delete an agent.
func TestBrowserConsole(t *testing.T) {
	b := newBrowser(t, 1280, 860) // first: it skips when there is no browser
	e := startEngram(t, "")

	// Agents: the model list comes from /v1/models.
	b.do(chromedp.Navigate(e.srv.URL + "/"))
	b.wait("the model list", `document.querySelector('#new-model option[value="openai/gpt-4o-mini"]')`)
	b.fill("#new-name", "sam")
	b.fill("#new-type", "memgpt_agent")
	b.fill("#new-persona", "I am Sam, a butler.")
	b.fill("#new-human", "First name: Ada")
	b.click("#agent-create button[type=submit]")
	b.wait("the chat", `!document.querySelector('#view-chat').hidden && document.querySelectorAll('#blocks .block').length === 2`)
	var agentsNow []api.AgentState
	e.call("GET", "/v1/agents", nil, &agentsNow)
	if len(agentsNow) != 1 || agentsNow[0].Name != "sam" || agentsNow[0].AgentType != "memgpt_agent" {
		t.Fatalf("after create, the server has %+v", agentsNow)
	}
	agentID := agentsNow[0].ID
	if got := b.eval(`document.querySelector('#blocks [data-label=human] textarea').value`); got != "First name: Ada" {
		t.Errorf("human block shows %q", got)
	}

	// Chat: the agent appends to its memory, then answers. The answer is
	// held until the page has shown the tool call and the changed block, so
	// what the page shows came from the stream, before the reply ended.
	hold := make(chan struct{})
	e.script.Push(
		llmtest.Step{Content: "Ada likes tea; I should remember that.", ToolCalls: []agents.ToolCall{{Name: "core_memory_append", Arguments: `{"name":"human","content":"Likes tea","request_heartbeat":true}`}}},
		llmtest.Step{Content: "Saved. Now answer her.", ToolCalls: []agents.ToolCall{{Name: "send_message", Arguments: `{"message":"Noted, Ada: tea it is."}`}}, Hold: hold},
	)
	b.fill("#send-text", "I like tea")
	b.do(chromedp.Focus(chromedp.CSS("#send-text")), chromedp.KeyEvent(kb.Enter)) // Enter sends
	b.wait("the streamed tool call", `[...document.querySelectorAll('#messages .tool_call_message')].some(n => n.textContent.includes('core_memory_append') && n.textContent.includes('Likes tea'))`)
	b.wait("the inner thoughts", `[...document.querySelectorAll('#messages .reasoning_message')].some(n => n.textContent.includes('I should remember that'))`)
	b.wait("the core memory update", `document.querySelector('#blocks [data-label=human] textarea').value.includes('Likes tea') && document.querySelector('#blocks [data-label=human]').classList.contains('changed')`)
	if b.eval(`[...document.querySelectorAll('#messages .assistant_message')].some(n => n.textContent.includes('tea it is')) ? 'yes' : ''`) != "" {
		t.Error("the assistant's answer was shown before the model gave it")
	}
	close(hold)
	b.wait("the assistant's answer", `[...document.querySelectorAll('#messages .assistant_message')].some(n => n.textContent.includes('Noted, Ada: tea it is.'))`)
	b.wait("the end of the run", `document.querySelector('#chat-status').textContent.includes('end_turn') && !document.querySelector('#send-btn').disabled`)
	b.shot("chat")

	// Edit a block by hand.
	b.fill("#blocks [data-label=human] textarea", "First name: Ada. Drinks tea.")
	b.click("#blocks [data-label=human] button.save")
	b.wait("the save", `document.querySelector('#blocks [data-label=human] .note').textContent === 'Saved.'`)
	var human api.Block
	e.call("GET", "/v1/agents/"+agentID+"/core-memory/blocks/human", nil, &human)
	if human.Value != "First name: Ada. Drinks tea." {
		t.Errorf("after the hand edit the server has %q", human.Value)
	}
	// Over the limit: the page shows the server's own detail, and nothing changes.
	over := strings.Repeat("x", human.Limit+1)
	b.fill("#blocks [data-label=human] textarea", over)
	b.wait("the over-limit count", `document.querySelector('#blocks [data-label=human] .limit.over')`)
	b.click("#blocks [data-label=human] button.save")
	b.wait("the refusal", `document.querySelector('#blocks [data-label=human] .error').textContent !== ''`)
	code, body := e.call("PATCH", "/v1/agents/"+agentID+"/core-memory/blocks/human", map[string]string{"value": over}, nil)
	var refusal struct{ Detail string }
	json.Unmarshal(body, &refusal)
	if code/100 != 4 || refusal.Detail == "" {
		t.Fatalf("the server took an over-limit value: %d %s", code, body)
	}
	if got := b.eval(`document.querySelector('#blocks [data-label=human] .error').textContent`); got != refusal.Detail {
		t.Errorf("the page says %q; the server says %q", got, refusal.Detail)
	}
	e.call("GET", "/v1/agents/"+agentID+"/core-memory/blocks/human", nil, &human)
	if human.Value != "First name: Ada. Drinks tea." {
		t.Errorf("after the refused edit the server has %q", human.Value)
	}
	b.shot("memory-edit")
	b.fill("#blocks [data-label=human] textarea", human.Value)

	// An edit from elsewhere (here, a REST client) shows up too, while the
	// chat is open.
	e.call("PATCH", "/v1/agents/"+agentID+"/core-memory/blocks/persona", map[string]string{"value": "I am Sam, a butler. I iron newspapers."}, nil)
	b.wait("the outside edit", `document.querySelector('#blocks [data-label=persona] textarea').value === 'I am Sam, a butler. I iron newspapers.' && document.querySelector('#blocks [data-label=persona]').classList.contains('changed')`)

	// History after a reload: oldest first, a step's thoughts before its call.
	b.do(chromedp.Reload())
	b.wait("the history", `!document.querySelector('#view-chat').hidden && [...document.querySelectorAll('#messages .assistant_message')].some(n => n.textContent.includes('tea it is'))`)
	order := b.eval(`(() => { const n = [...document.querySelectorAll('#messages li')];
		const f = (cls, text) => n.findIndex(x => x.classList.contains(cls) && x.textContent.includes(text));
		return [f('user_message', 'I like tea'), f('reasoning_message', 'I should remember'), f('tool_call_message', 'core_memory_append'), f('assistant_message', 'tea it is')].join(' '); })()`)
	var u, r, c, a int
	fmt.Sscan(order, &u, &r, &c, &a)
	if !(0 <= u && u < r && r < c && c < a) {
		t.Errorf("history positions (user, thoughts, call, answer) are %s, want increasing", order)
	}

	// /retry runs the last message again; its answer is shown.
	e.script.Push(llmtest.Step{Content: "Again.", ToolCalls: []agents.ToolCall{{Name: "send_message", Arguments: `{"message":"Tea, again."}`}}})
	b.click("#retry-btn")
	b.wait("the retried answer", `[...document.querySelectorAll('#messages .assistant_message')].some(n => n.textContent.includes('Tea, again.'))`)
	if got := b.eval(`[...document.querySelectorAll('#messages .assistant_message .text')].filter(n => n.textContent.includes('Tea, again.')).map(n => n.textContent).join('|')`); got != "Tea, again." {
		t.Errorf("after /retry the answer shows as %q, want it once", got)
	}

	// /pop takes the last three messages out of the context window.
	var st api.AgentState
	e.call("GET", "/v1/agents/"+agentID, nil, &st)
	window := len(st.MessageIDs)
	b.click("#pop-btn")
	b.wait("the pop", `document.querySelector('#chat-status').textContent === '/pop done.'`)
	e.call("GET", "/v1/agents/"+agentID, nil, &st)
	if len(st.MessageIDs) != window-3 {
		t.Errorf("after /pop the context window holds %d messages, want %d", len(st.MessageIDs), window-3)
	}

	// Archival memory: insert two passages, search, delete one.
	b.click(`nav button[data-view=archival]`)
	for _, p := range []string{"Ada Lovelace was born on 10 December 1815.", "The garden pump needs oil every spring."} {
		b.fill("#archival-text", p)
		b.click("#archival-insert button[type=submit]")
		b.wait("the passage", `[...document.querySelectorAll('#passages li')].some(n => n.textContent.includes(`+js(p)+`))`)
	}
	b.fill("#archival-query", "pump oil")
	b.click("#archival-search button[type=submit]")
	b.wait("the search result", `document.querySelector('#archival-note').textContent.includes('pump oil') && document.querySelector('#passages li .text').textContent.includes('garden pump')`)
	if n := b.eval(`String(document.querySelectorAll('#passages li').length)`); n != "1" {
		t.Errorf("the search for 'pump oil' shows %s passages, want 1", n)
	}
	b.shot("archival")
	b.click("#archival-all")
	b.wait("both passages", `document.querySelectorAll('#passages li').length === 2`)
	b.click(`#passages li:last-child button`) // the oldest: Ada's birthday
	b.wait("the delete", `document.querySelectorAll('#passages li').length === 1`)
	var passages []api.Passage
	e.call("GET", "/v1/agents/"+agentID+"/archival-memory", nil, &passages)
	if len(passages) != 1 || !strings.Contains(passages[0].Text, "pump") {
		t.Errorf("after the delete the server has %+v", passages)
	}

	// Sources: create a folder, attach it, upload a file and see it complete.
	b.click(`nav button[data-view=sources]`)
	b.fill("#source-name", "manuals")
	b.click("#source-create button[type=submit]")
	b.wait("the folder", `[...document.querySelectorAll('#source-list li.source h3')].some(n => n.textContent === 'manuals')`)
	b.click("#source-list li.source button.attach")
	b.wait("the attach", `document.querySelector('#source-list li.source button.attach').textContent.startsWith('Detach')`)
	var attached []api.Source
	e.call("GET", "/v1/agents/"+agentID+"/folders", nil, &attached)
	if len(attached) != 1 || attached[0].Name != "manuals" {
		t.Errorf("after attach the agent has %+v", attached)
	}
	file := filepath.Join(t.TempDir(), "pump-manual.md")
	os.WriteFile(file, []byte("# Pump manual\n\nOil the pump every spring with two drops of machine oil.\n"), 0o644)
	b.do(chromedp.SetUploadFiles(chromedp.CSS("#source-list li.source input[type=file]"), []string{file}))
	b.click("#source-list li.source .row button")
	b.wait("the loaded file", `document.querySelector('#source-list li.source .files li[data-status=completed]')`)
	if got := b.eval(`document.querySelector('#source-list li.source .files li').textContent`); !strings.Contains(got, "pump-manual.md") || !strings.Contains(got, "completed") {
		t.Errorf("the file shows %q", got)
	}
	b.shot("sources")
	// A file the server will not take: its refusal is shown, nothing is added.
	bad := filepath.Join(t.TempDir(), "photo.png")
	os.WriteFile(bad, []byte("\x89PNG\r\n\x1a\n not text"), 0o644)
	b.do(chromedp.SetUploadFiles(chromedp.CSS("#source-list li.source input[type=file]"), []string{bad}))
	b.click("#source-list li.source .row button")
	b.wait("the refusal", `document.querySelector('#source-list li.source p.error').textContent !== ''`)
	if got := b.eval(`document.querySelector('#source-list li.source p.error').textContent`); !strings.Contains(got, "unsupported file type") {
		t.Errorf("the refusal says %q", got)
	}
	if n := b.eval(`String(document.querySelectorAll('#source-list li.source .files li').length)`); n != "1" {
		t.Errorf("after the refused upload the folder lists %s files", n)
	}

	// Timeline: scrub to the agent's edit and to the event before it; fork
	// from before it.
	b.click(`nav button[data-view=timeline]`)
	b.wait("the events", `document.querySelectorAll('#events li').length > 5 && document.querySelector('#at-seq').textContent !== '—'`)
	edit := b.eval(`String([...document.querySelectorAll('#events li')].findIndex(li => li.querySelector('.type').textContent === 'block_updated' && li.textContent.includes('Likes tea')))`)
	if edit == "-1" {
		t.Fatalf("no block_updated event with the agent's edit in the timeline:\n%s", b.eval(`document.querySelector('#events').innerText`))
	}
	scrub := func(i string) {
		b.eval(`(() => { const s = document.querySelector('#scrub'); s.value = ` + i + `; s.dispatchEvent(new Event('input')); return ''; })()`)
	}
	scrub(edit)
	seq := b.eval(`document.querySelector('#events li[aria-current=true]').dataset.seq`)
	b.wait("core memory as of the edit", `document.querySelector('#at-seq').textContent === '#`+seq+`' && document.querySelector('#blocks-at [data-label=human] pre').textContent.includes('Likes tea')`)
	// One step back with the keyboard.
	b.do(chromedp.Focus(chromedp.CSS("#scrub")), chromedp.KeyEvent(kb.ArrowLeft))
	before := b.eval(`document.querySelector('#events li[aria-current=true]').dataset.seq`)
	if before == seq {
		t.Fatalf("ArrowLeft on the slider did not move from #%s", seq)
	}
	b.wait("core memory before the edit", `document.querySelector('#at-seq').textContent === '#`+before+`' && !document.querySelector('#blocks-at [data-label=human] pre').textContent.includes('Likes tea')`)
	b.shot("timeline")
	b.click("#fork-btn")
	b.wait("the fork", `document.querySelector('#fork-result').textContent.includes('Forked at #`+before+`')`)
	var all []api.AgentState
	e.call("GET", "/v1/agents", nil, &all)
	var fork *api.AgentState
	for i := range all {
		if all[i].ID != agentID {
			fork = &all[i]
		}
	}
	if fork == nil {
		t.Fatalf("no forked agent among %d", len(all))
	}
	var forkHuman api.Block
	e.call("GET", "/v1/agents/"+fork.ID+"/core-memory/blocks/human", nil, &forkHuman)
	if forkHuman.Value != "First name: Ada" {
		t.Errorf("the fork from before the edit has human %q", forkHuman.Value)
	}
	// Filter by type.
	b.fill("#event-type", "block_updated")
	b.wait("the filtered list", `document.querySelectorAll('#events li').length > 0 && [...document.querySelectorAll('#events li .type')].every(n => n.textContent === 'block_updated')`)

	// Tools: see a built-in tool's schema; derive a new tool's schema
	// before saving it, then create it.
	b.click(`nav button[data-view=tools]`)
	b.wait("the tool list", `[...document.querySelectorAll('#tool-list li button')].some(n => n.textContent === 'core_memory_append')`)
	b.eval(`[...document.querySelectorAll('#tool-list li button')].find(n => n.textContent === 'core_memory_append').click(), ''`)
	b.wait("the tool's schema", `document.querySelector('#tool-detail .schema') && document.querySelector('#tool-detail .schema').textContent.includes('"name": "core_memory_append"')`)
	src := "def roll(sides: int) -> str:\n    \"\"\"Roll a die.\n\n    Args:\n        sides (int): How many sides the die has.\n    \"\"\"\n    import random\n    return str(random.randint(1, sides))\n"
	b.fill("#tool-source", src)
	b.click("#tool-derive")
	b.wait("the derived schema", `document.querySelector('#tool-schema').textContent.includes('"sides"') && !document.querySelector('#tool-save').disabled`)
	var none []api.Tool
	e.call("GET", "/v1/tools?name=roll", nil, &none)
	if len(none) != 0 {
		t.Errorf("deriving the schema created the tool")
	}
	b.shot("tools")
	b.click("#tool-save")
	b.wait("the new tool", `document.querySelector('#tool-detail h3') && document.querySelector('#tool-detail h3').textContent === 'roll'`)
	e.call("GET", "/v1/tools?name=roll", nil, &none)
	if len(none) != 1 {
		t.Errorf("after create the server has %d tools named roll", len(none))
	}

	// Agents: search, then delete the fork with confirmation.
	b.click(`nav button[data-view=agents]`)
	b.fill("#agent-search", "fork")
	b.wait("the search", `document.querySelectorAll('#agent-list li[data-agent-id]').length === 1`)
	b.fill("#agent-search", "")
	b.wait("both agents", `document.querySelectorAll('#agent-list li[data-agent-id]').length === 2`)
	b.shot("agents")
	item := `#agent-list li[data-agent-id="` + fork.ID + `"]`
	b.click(item + " button.quiet")
	b.wait("the confirmation", `!document.querySelector('`+item+` .confirm').hidden`)
	if code, _ := e.call("GET", "/v1/agents/"+fork.ID, nil, nil); code != 200 {
		t.Errorf("the fork is gone before the confirmation: %d", code)
	}
	b.click(item + " .confirm button.danger")
	b.wait("the delete", `!document.querySelector('`+item+`') && document.querySelectorAll('#agent-list li[data-agent-id]').length === 1`)
	if code, _ := e.call("GET", "/v1/agents/"+fork.ID, nil, nil); code != 404 {
		t.Errorf("after the delete GET of the fork answers %d", code)
	}

	// A phone's width: the chat and core memory stack.
	b.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	b.click(`nav button[data-view=chat]`)
	b.wait("the chat on a phone", `!document.querySelector('#view-chat').hidden && document.querySelector('aside.core').getBoundingClientRect().top > document.querySelector('#transcript').getBoundingClientRect().bottom`)
	b.shot("phone")
}

// TestBrowserToken: against a server that needs a token the page asks for
// the key, keeps it in sessionStorage (never in the URL) and sends it with
// every call; a wrong key is refused with a message and asked for again.
func TestBrowserToken(t *testing.T) {
	b := newBrowser(t, 1280, 860) // first: it skips when there is no browser
	e := startEngram(t, "s3cret-key")
	b.do(chromedp.Navigate(e.srv.URL + "/"))
	b.wait("the key dialog", `document.querySelector('#login').open`)
	b.shot("login")
	b.fill("#login-key", "wrong")
	b.click("#login-form button[type=submit]")
	b.wait("the refusal", `document.querySelector('#login').open && document.querySelector('#login-error').textContent.includes('refused')`)
	b.fill("#login-key", "s3cret-key")
	b.click("#login-form button[type=submit]")
	b.wait("the model list", `!document.querySelector('#login').open && document.querySelector('#new-model option[value="openai/gpt-4o-mini"]')`)
	if got := b.eval(`sessionStorage.getItem('engram.key')`); got != "s3cret-key" {
		t.Errorf("sessionStorage holds %q", got)
	}
	b.fill("#new-name", "kept")
	b.click("#agent-create button[type=submit]")
	b.wait("the chat", `!document.querySelector('#view-chat').hidden && document.querySelectorAll('#blocks .block').length === 2`)
	var list []api.AgentState
	if code, _ := e.call("GET", "/v1/agents", nil, &list); code != 200 || len(list) != 1 || list[0].Name != "kept" || list[0].AgentType != "letta_v1_agent" {
		t.Errorf("the server has %d %+v", code, list)
	}
	// The stream is read with fetch, so it carries the key too. The
	// modern loop: native reasoning, then a plain answer.
	e.script.Push(llmtest.Step{Reasoning: "A greeting; answer in kind.", Content: "Hello from a locked server."})
	b.fill("#send-text", "hello?")
	b.click("#send-btn")
	b.wait("the streamed answer", `[...document.querySelectorAll('#messages .assistant_message')].some(n => n.textContent.includes('Hello from a locked server.'))`)
	b.wait("the reasoning", `[...document.querySelectorAll('#messages .reasoning_message')].some(n => n.textContent.includes('answer in kind'))`)
	if u := b.eval(`location.href`); strings.Contains(u, "s3cret") {
		t.Errorf("the key is in the URL %s", u)
	}
	// More history than one page: a reload in the same tab keeps the key
	// (no dialog) and shows the latest page; older ones load on demand.
	for i := range 15 {
		e.script.Push(llmtest.Step{Content: fmt.Sprintf("answer %d", i)})
		if code, body := e.call("POST", "/v1/agents/"+list[0].ID+"/messages", map[string]any{"input": fmt.Sprintf("question %d", i)}, nil); code != 200 {
			t.Fatalf("send %d: %d %s", i, code, body)
		}
	}
	b.do(chromedp.Reload())
	b.wait("the reloaded chat", `!document.querySelector('#view-chat').hidden && document.querySelectorAll('#blocks .block').length === 2 && [...document.querySelectorAll('#messages .assistant_message')].some(n => n.textContent.includes('answer 14'))`)
	if b.eval(`String(document.querySelector('#login').open)`) != "false" {
		t.Error("the key was asked for again after a reload")
	}
	b.wait("the load-older button", `!document.querySelector('#load-older').hidden && !document.querySelector('#messages .system_message')`)
	shown := b.eval(`String(document.querySelectorAll('#messages li').length)`)
	b.click("#load-older")
	b.wait("the older page", `document.querySelector('#messages li').classList.contains('system_message') && document.querySelectorAll('#messages li').length > `+shown)
	order := b.eval(`[...document.querySelectorAll('#messages .assistant_message .text')].map(n => n.textContent).filter(t => t.startsWith('answer ')).join(',')`)
	want := make([]string, 15)
	for i := range want {
		want[i] = fmt.Sprintf("answer %d", i)
	}
	if order != strings.Join(want, ",") {
		t.Errorf("the answers show as %s", order)
	}
}
