package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func ptr[T any](v T) *T { return &v }

// samples holds one fully populated value of every event type.
func samples() map[Type]Event {
	at := time.Date(2024, 10, 23, 19, 29, 24, 0, time.UTC)
	return map[Type]Event{
		TypeAgentCreated: &AgentCreated{
			ID: "agent-01JD000000000000000000000A", Name: "sam", Description: "a test agent",
			System: "You are Sam.", AgentType: "memgpt_agent",
			LLMConfig:       json.RawMessage(`{"model":"gpt-4o-mini","model_endpoint_type":"openai","context_window":128000}`),
			EmbeddingConfig: json.RawMessage(`{"embedding_model":"text-embedding-3-small","embedding_endpoint_type":"openai","embedding_dim":1536}`),
			Metadata:        json.RawMessage(`{"persona":"sam_pov"}`), Tags: []string{"demo"},
			ToolIDs: []ToolID{"tool-01JD000000000000000000000T"}, BlockIDs: []BlockID{"block-01JD000000000000000000000B"},
			SourceIDs: []SourceID{"source-01JD000000000000000000000S"}, ToolRules: json.RawMessage(`[]`),
			ForkedFrom:         &Origin{AgentID: "agent-01JD000000000000000000000F", Seq: 42},
			CompactionSettings: json.RawMessage(`{"mode":"sliding_window"}`),
		},
		TypeAgentUpdated: &AgentUpdated{
			Name: ptr("sam2"), Description: ptr("renamed"), System: ptr("You are Sam, again."),
			LLMConfig: json.RawMessage(`{"model":"gpt-4o"}`), Metadata: json.RawMessage(`{}`),
			Tags: ptr([]string{"a", "b"}), ToolIDs: ptr([]ToolID{}), SourceIDs: ptr([]SourceID{}),
			MessageIDs: ptr([]MessageID{"message-01JD000000000000000000000M"}),
		},
		TypeAgentDeleted:        &AgentDeleted{},
		TypeCoreBlockAttached:   &CoreBlockAttached{BlockID: "block-01JD000000000000000000000B"},
		TypeCoreBlockDetached:   &CoreBlockDetached{BlockID: "block-01JD000000000000000000000B"},
		TypeAgentToolAttached:   &AgentToolAttached{ToolID: "tool-01JD000000000000000000000T"},
		TypeAgentToolDetached:   &AgentToolDetached{ToolID: "tool-01JD000000000000000000000T"},
		TypeAgentSourceAttached: &AgentSourceAttached{SourceID: "source-01JD000000000000000000000S"},
		TypeAgentSourceDetached: &AgentSourceDetached{SourceID: "source-01JD000000000000000000000S"},
		TypeBlockCreated: &BlockCreated{
			ID: "block-01JD000000000000000000000B", Label: "human", Value: "First name: Chad", Limit: 2000,
			Name: "basic", IsTemplate: true, Description: "who the user is", Metadata: json.RawMessage(`{"k":1}`),
			Tags: []string{"t"},
		},
		TypeBlockUpdated: &BlockUpdated{
			Label: ptr("persona"), Value: ptr("I am Sam."), Limit: ptr(5000), Name: ptr("sam"),
			IsTemplate: ptr(false), ReadOnly: ptr(true), Description: ptr("d"), Tags: ptr([]string{"x"}),
		},
		TypeBlockDeleted: &BlockDeleted{},
		TypeToolCreated: &ToolCreated{
			ID: "tool-01JD000000000000000000000T", Name: "roll_dice", Description: "Roll a die.",
			SourceCode: "def roll_dice(sides: int) -> str:\n    ...", SourceType: "python",
			JSONSchema: json.RawMessage(`{"name":"roll_dice","description":"Roll a die.","parameters":{"type":"object","properties":{},"required":[]}}`),
			Tags:       []string{"games"}, ToolType: "custom", ReturnCharLimit: 6000, AgentState: true,
			TimeoutSeconds: 2.5,
		},
		TypeToolUpdated: &ToolUpdated{
			Name: ptr("roll_die"), SourceCode: ptr("def roll_die(): ..."), Tags: ptr([]string{}),
			ReturnCharLimit: ptr(100), AgentState: ptr(false), TimeoutSeconds: ptr(10.0),
		},
		TypeToolDeleted: &ToolDeleted{},
		TypeSourceCreated: &SourceCreated{
			ID: "source-01JD000000000000000000000S", Name: "docs", Description: "product docs",
			Instructions: "cite them", EmbeddingConfig: json.RawMessage(`{"embedding_model":"x","embedding_dim":8,"embedding_endpoint_type":"openai"}`),
		},
		TypeSourceUpdated: &SourceUpdated{Name: ptr("docs2"), Metadata: json.RawMessage(`{"a":true}`)},
		TypeSourceDeleted: &SourceDeleted{},
		TypeJobCreated: &JobCreated{
			ID: "job-01JD000000000000000000000J", JobType: "embedding", SourceID: "source-01JD000000000000000000000S",
			Metadata: json.RawMessage(`{"filename":"a.txt"}`),
		},
		TypeConversationCreated: &ConversationCreated{
			ID: "conv-0193a5b2-0000-8000-8000-00000000000c", AgentID: "agent-01JD000000000000000000000A",
			Summary: "about bananas", Model: "openai/gpt-4o-mini", ModelSettings: json.RawMessage(`{"provider_type":"openai"}`),
			IsolatedBlockLabels: []string{"scratch"}, IsolatedBlockIDs: []BlockID{"block-01JD000000000000000000000B"},
		},
		TypeConversationUpdated: &ConversationUpdated{Summary: ptr("about apples"), LastMessageAt: &at},
		TypeConversationDeleted: &ConversationDeleted{},
		TypeConversationWindow: &ConversationWindowSet{ConversationID: "conv-0193a5b2-0000-8000-8000-00000000000c",
			MessageIDs: []MessageID{"message-01JD000000000000000000000S", "message-01JD000000000000000000000N"}},
		TypeJobUpdated: &JobUpdated{Status: "failed", Error: "file is corrupt", Metadata: json.RawMessage(`{"num_passages":0}`)},
		TypePassageInserted: &PassageInserted{
			ID: "passage-01JD000000000000000000000P", AgentID: "agent-01JD000000000000000000000A",
			Text: "User likes bananas", Tags: []string{"food"}, Embedding: []float32{0.25, -0.5},
			CreatedAt: &at,
		},
		TypePassageDeleted: &PassageDeleted{ID: "passage-01JD000000000000000000000P"},
		TypeMessageReceived: &MessageReceived{MessageAppended: MessageAppended{
			ID: "message-01JD000000000000000000000N", Role: "user", Kind: InputUser, Text: "hi",
			Name: "ada", Otid: "client-otid-1",
		}, Key: "client-otid-1", Digest: "sha256:00ff", MaxSteps: 5, ConversationID: "conv-0193a5b2-0000-8000-8000-00000000000c", OverrideModel: "openai/gpt-4o-mini"},
		TypeFileCreated: &FileCreated{
			ID: "file-01JD000000000000000000000F", Name: "docs/a.txt", OriginalName: "a.txt", MIME: "text/plain",
			Size: 12, Digest: "sha256:00ff", Object: "file-01JD000000000000000000000F", JobID: "job-01JD000000000000000000000J",
		},
		TypeFileUpdated:     &FileUpdated{ID: "file-01JD000000000000000000000F", Status: "error", Error: "corrupt PDF", Passages: 3},
		TypeFileDeleted:     &FileDeleted{ID: "file-01JD000000000000000000000F"},
		TypeInputTaken:      &InputTaken{IDs: []MessageID{"message-01JD000000000000000000000N"}},
		TypeJobDeleted:      &JobDeleted{},
		TypeRunCancelled:    &RunCancelled{RunID: "run-0193a5b2-0000-8000-8000-000000000001"},
		TypeRunFailed:       &RunFailed{RunID: "run-0193a5b2-0000-8000-8000-000000000001", StopReason: "llm_api_error", Detail: "the model provider failed"},
		TypeRunRequested:    &RunRequested{ID: "message-01JD000000000000000000000R", Kind: RunResend, Reason: "why", Input: "message-01JD000000000000000000000N"},
		TypeLogCheckpointed: &LogCheckpointed{Through: 41, Sealed: 40, Digest: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		TypeOrgCreated:      &OrgCreated{Name: "acme"},
		TypeOrgUpdated:      &OrgUpdated{Name: ptr("acme2")},
		TypeOrgDeleted:      &OrgDeleted{},
		TypeAPIKeyCreated: &APIKeyCreated{ID: "apikey-0193a5b2-0000-7000-8000-000000000001", Name: "ci",
			Hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", ExpiresAt: ptr(at.Add(24 * time.Hour))},
		TypeAgentSecretsSet: &AgentSecretsSet{Secrets: map[string]string{"API_TOKEN": "v1:c2VhbGVk"}},
		TypeAPIKeyRevoked:   &APIKeyRevoked{ID: "apikey-0193a5b2-0000-7000-8000-000000000001"},
		TypeAccessDenied: &AccessDenied{Method: "GET", Path: "/v1/agents", Remote: "127.0.0.1:5555", Reason: "revoked",
			KeyID: "apikey-0193a5b2-0000-7000-8000-000000000001", Suppressed: 2},
		TypeMessageUpdated: &MessageUpdated{MessageAppended: MessageAppended{
			ID: "message-01JD000000000000000000000M", Role: "assistant", Text: "thinking again",
			ToolCalls: []ToolCall{{ID: "call_1", Name: "send_message", Arguments: `{"message":"hello"}`}},
		}},
		TypeMessageAppended: &MessageAppended{
			ID: "message-01JD000000000000000000000M", Role: "assistant", Text: "thinking",
			Reply: "hello", Reasoning: "the user said hi",
			ToolCalls: []ToolCall{{ID: "call_1", Name: "send_message", Arguments: `{"message":"hi"}`}},
			Model:     "gpt-4o-mini", Otid: "otid-1",
			Usage: &Usage{PromptTokens: 120, CompletionTokens: 12, TotalTokens: 132}, StopReason: "end_turn",
		},
	}
}

func envelope(ev Event) Envelope {
	return Envelope{
		Aggregate: Aggregate{Kind: KindAgent, ID: "agent-01JD000000000000000000000A"},
		Command:   "cmd-1", Actor: "user-00000000-0000-4000-8000-000000000000",
		Time: time.Date(2024, 10, 23, 19, 29, 24, 123456789, time.UTC), Event: ev,
	}
}

func TestEverySampleIsRegistered(t *testing.T) {
	s := samples()
	if len(s) != len(registry) || len(typeOrder) != len(registry) {
		t.Fatalf("samples %d, registry %d, order %d: keep them in step", len(s), len(registry), len(typeOrder))
	}
	for typ, ev := range s {
		if ev.EventType() != typ {
			t.Errorf("sample for %s reports type %s", typ, ev.EventType())
		}
		if _, ok := registry[typ]; !ok {
			t.Errorf("%s is not registered", typ)
		}
	}
}

// TestGolden pins the wire form of every event type: a change that alters
// stored bytes of an existing type breaks old logs and must be deliberate.
func TestGolden(t *testing.T) {
	for typ, ev := range samples() {
		t.Run(string(typ), func(t *testing.T) {
			got, err := Encode(envelope(ev))
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, got, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			path := filepath.Join("testdata", string(typ)+".json")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./events -update)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("wire form of %s changed:\n got %s\nwant %s", typ, pretty.Bytes(), want)
			}
			// The golden file must decode to the same event.
			var compact bytes.Buffer
			if err := json.Compact(&compact, want); err != nil {
				t.Fatal(err)
			}
			env, err := Decode(compact.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(env.Event, ev) {
				t.Errorf("decode(golden) = %+v, want %+v", env.Event, ev)
			}
			if env.Type != typ || env.Command != "cmd-1" || env.Aggregate.ID == "" {
				t.Errorf("envelope fields lost: %+v", env)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	cases := map[string]string{
		"not json":      `{`,
		"unknown type":  `{"type":"agent_exploded","aggregate":{"kind":"agent","id":"a"},"data":{}}`,
		"no data":       `{"type":"agent_deleted","aggregate":{"kind":"agent","id":"a"}}`,
		"no aggregate":  `{"type":"agent_deleted","data":{}}`,
		"wrong shape":   `{"type":"block_created","aggregate":{"kind":"block","id":"b"},"data":{"limit":"many"}}`,
		"data is array": `{"type":"agent_deleted","aggregate":{"kind":"agent","id":"a"},"data":[]}`,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Decode([]byte(in)); err == nil {
				t.Fatalf("Decode(%s) succeeded", in)
			}
		})
	}
	_, err := Decode([]byte(cases["unknown type"]))
	if !errors.Is(err, ErrUnknownType) {
		t.Errorf("unknown type error = %v, want ErrUnknownType", err)
	}
}

func TestIDs(t *testing.T) {
	id := NewID(PrefixAgent, time.Now())
	if !ValidID(PrefixAgent, id) {
		t.Fatalf("NewID gave invalid id %q", id)
	}
	if ValidID(PrefixBlock, id) {
		t.Fatalf("%q accepted as a block id", id)
	}
	good := []string{
		"agent-01JD000000000000000000000A",           // a ULID, as logs before the uuid form hold
		"agent-7ZZZZZZZZZZZZZZZZZZZZZZZZZ",           // the last ULID
		"agent-8f5c3b1e-2d4a-4c6b-9e7f-0a1b2c3d4e5f", // a uuid4, as Letta makes
		"agent-00000000-0000-0000-0000-000000000000", // any version
	}
	for _, s := range good {
		if !ValidID(PrefixAgent, s) {
			t.Errorf("ValidID(%q) = false", s)
		}
	}
	for _, bad := range []string{
		"", "agent-", "agent-xyz", "agent-01JD000000000000000000000A.x", "agent-01jd00000000000000000000a0",
		"agent-8ZZZZZZZZZZZZZZZZZZZZZZZZZ",            // past ULID's range
		"agent-8f5c3b1e-2d4a-4c6b-9e7f-0a1b2c3d4e5",   // short
		"agent-8f5c3b1e-2d4a-4c6b-9e7f-0a1b2c3d4e5f0", // long
		"agent-8f5c3b1e2d4a-4c6b-9e7f-0a1b2c3d4e5f0",  // a hyphen missing
		"agent-8f5c3b1e-2d4a-4c6b-9e7f-0a1b2c3d4e5g",  // not hex
		"agent-8F5C3B1E-2D4A-4C6B-9E7F-0A1B2C3D4E5F",  // upper case: one spelling per id
		"agent-8f5c3b1e-2d4a-4c6b-9e7f-0a1b.c3d4e5f",  // a subject separator
		"agent-{8f5c3b1e-2d4a-4c6b-9e7f-0a1b2c3d4e5f}",
		"agent-urn:uuid:8f5c3b1e-2d4a-4c6b-9e7f-0a1b2c3d4e5f",
		"block-8f5c3b1e-2d4a-4c6b-9e7f-0a1b2c3d4e5f",
	} {
		if ValidID(PrefixAgent, bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
	if err := CheckID(PrefixAgent, "agent-xyz"); err == nil || !strings.Contains(err.Error(), "agent-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx") {
		t.Errorf("CheckID error %v does not name the uuid form", err)
	}
	a, b := DerivedID(PrefixAgent, "key-1"), DerivedID(PrefixAgent, "key-1")
	if a != b || !ValidID(PrefixAgent, a) {
		t.Fatalf("DerivedID not stable or invalid: %q %q", a, b)
	}
	if v := a[len("agent-")+14]; v != '8' {
		t.Errorf("DerivedID %q has version %c, want 8", a, v)
	}
	if v := a[len("agent-")+19]; !strings.ContainsRune("89ab", rune(v)) {
		t.Errorf("DerivedID %q has variant nibble %c, want 8..b", a, v)
	}
	if DerivedID(PrefixAgent, "key-2") == a || DerivedID(PrefixBlock, "key-1")[6:] == a[6:] {
		t.Fatal("DerivedID collides across keys or prefixes")
	}
}

// checkV7 fails unless id is "<prefix>-<UUIDv7>" holding the millisecond ms
// (or, when ms < 0, any millisecond).
func checkV7(t *testing.T, prefix, id string, ms int64) {
	t.Helper()
	if !ValidID(prefix, id) {
		t.Fatalf("%q is not a valid %s id", id, prefix)
	}
	u := strings.ReplaceAll(strings.TrimPrefix(id, prefix+"-"), "-", "")
	if u[12] != '7' {
		t.Fatalf("%q: version %c, want 7", id, u[12])
	}
	if !strings.ContainsRune("89ab", rune(u[16])) {
		t.Fatalf("%q: variant nibble %c, want 8..b (10xx)", id, u[16])
	}
	got, err := strconv.ParseInt(u[:12], 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	if ms >= 0 && got != ms {
		t.Fatalf("%q holds millisecond %d, want %d", id, got, ms)
	}
}

// TestNewIDOrder checks that ids sort in the order they were made, as
// strings: many in one millisecond, across milliseconds, and when the clock
// steps back.
func TestNewIDOrder(t *testing.T) {
	// Later than any clock the other tests use: ids never go back in time.
	base := time.Now().Add(24 * time.Hour).Truncate(time.Millisecond)
	const n = 100_000
	prev := NewID(PrefixMessage, base.Add(-time.Hour))
	ms := uint64(base.UnixMilli())
	msPrefix := fmt.Sprintf("%s-%08x-%04x-7", PrefixMessage, ms>>16, ms&0xffff)
	sameMs := 0
	for i := range n {
		id := NewID(PrefixMessage, base) // all in one millisecond
		if id <= prev {
			t.Fatalf("id %d %q sorts before or equal to the one before, %q", i, id, prev)
		}
		if i%997 == 0 {
			checkV7(t, PrefixMessage, id, -1)
		}
		if strings.HasPrefix(id, msPrefix) {
			sameMs++
		}
		prev = id
	}
	if sameMs < n*9/10 { // a millisecond holds ~2^41 increments; overflow is rare
		t.Errorf("only %d of %d ids made in one millisecond carry it", sameMs, n)
	}
	for i := range n {
		at := base.Add(time.Duration(i) * time.Millisecond)
		id := NewID(PrefixMessage, at)
		if id <= prev {
			t.Fatalf("id %d %q sorts before or equal to the one before, %q", i, id, prev)
		}
		if i%997 == 0 && i > 0 {
			checkV7(t, PrefixMessage, id, at.UnixMilli())
		}
		prev = id
	}
	// A clock that steps back does not make ids go back.
	id := NewID(PrefixMessage, base)
	if id <= prev {
		t.Fatalf("after the clock stepped back: %q sorts before %q", id, prev)
	}
	// Concurrent callers get distinct ids.
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]string, 0, 5000)
			for range 5000 {
				local = append(local, NewID(PrefixAgent, time.Now()))
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range local {
				if seen[id] {
					t.Errorf("duplicate id %q", id)
				}
				seen[id] = true
			}
		}()
	}
	wg.Wait()
}

func FuzzDecode(f *testing.F) {
	for _, ev := range samples() {
		b, err := Encode(envelope(ev))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"type":"message_appended","aggregate":{"kind":"agent","id":"x"},"data":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		// The fast path, when it accepts, must agree with the general one.
		if fast, ok := decodeFast(b); ok {
			var w wire
			if err := json.Unmarshal(b, &w); err != nil {
				t.Fatalf("fast path accepted what the general path refuses: %v", err)
			}
			if w.Type != fast.Type || w.Aggregate != fast.Aggregate || w.Command != fast.Command || w.Actor != fast.Actor || !w.Time.Equal(fast.Time) {
				t.Fatalf("fast path disagrees: %+v vs %+v", fast, w)
			}
			ev := registry[w.Type]()
			if err := json.Unmarshal(w.Data, ev); err != nil || !reflect.DeepEqual(ev, fast.Event) {
				t.Fatalf("fast path event %+v, general %+v (%v)", fast.Event, ev, err)
			}
		}
		env, err := Decode(b)
		if err != nil {
			return
		}
		// Whatever decodes must encode again, and that encoding must be a
		// fixed point (nil and empty lists may differ before it, not after).
		again, err := Encode(env)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		env2, err := Decode(again)
		if err != nil {
			t.Fatalf("decode of re-encoded: %v", err)
		}
		third, err := Encode(env2)
		if err != nil {
			t.Fatalf("third encode: %v", err)
		}
		if !bytes.Equal(again, third) {
			t.Fatalf("encoding is not stable:\n%s\n%s", again, third)
		}
	})
}

// TestGoldenPacked pins the packed form (a JSON array of envelopes) and
// checks that DecodeAll reads it, and reads a single-envelope message (the
// only form older logs hold) as one event.
func TestGoldenPacked(t *testing.T) {
	s := samples()
	envs := []Envelope{envelope(s[TypeInputTaken]), envelope(s[TypeMessageAppended]), envelope(s[TypePassageInserted])}
	got, err := EncodePacked(envs)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "packed.json")
	if *update {
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./events -update)", err)
	}
	if !bytes.Equal(append(got, '\n'), want) {
		t.Errorf("packed wire form changed:\n got %s\nwant %s", got, want)
	}
	back, err := DecodeAll(bytes.TrimSpace(want))
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(envs) {
		t.Fatalf("decoded %d events, want %d", len(back), len(envs))
	}
	for i := range back {
		if back[i].Part != i || !reflect.DeepEqual(back[i].Event, envs[i].Event) || back[i].Aggregate != envs[i].Aggregate {
			t.Errorf("event %d: %+v, want %+v at part %d", i, back[i], envs[i], i)
		}
	}
	single, err := os.ReadFile(filepath.Join("testdata", string(TypeMessageAppended)+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, single); err != nil {
		t.Fatal(err)
	}
	one, err := DecodeAll(compact.Bytes())
	if err != nil || len(one) != 1 || one[0].Part != 0 || !reflect.DeepEqual(one[0].Event, s[TypeMessageAppended]) {
		t.Fatalf("DecodeAll(single) = %+v, %v", one, err)
	}
}

func TestPackedRejectsBadInput(t *testing.T) {
	s := samples()
	a := envelope(s[TypeMessageAppended])
	b := envelope(s[TypeBlockUpdated])
	b.Aggregate = Aggregate{Kind: KindBlock, ID: "block-1"}
	if _, err := EncodePacked([]Envelope{a}); err == nil {
		t.Error("packed one event")
	}
	if _, err := EncodePacked([]Envelope{a, b}); err == nil {
		t.Error("packed two aggregates")
	}
	one, _ := Encode(a)
	two, _ := Encode(b)
	// Two aggregates in one message: the hosted form, the second hosted.
	if envs, err := DecodeAll([]byte("[" + string(one) + "," + string(two) + "]")); err != nil || len(envs) != 2 || envs[0].Hosted || !envs[1].Hosted {
		t.Errorf("DecodeAll(hosted) = %+v, %v", envs, err)
	}
	for _, bad := range []string{"[", "[]", "[" + string(one) + "]", `[{"type":"nope"},{}]`, "[1,2]"} {
		if _, err := DecodeAll([]byte(bad)); err == nil {
			t.Errorf("DecodeAll(%.60q) succeeded", bad)
		}
	}
}

// TestGoldenHosted pins the hosted form (an agent's message holding the
// creation of a block) and checks that both decoders mark the hosted event,
// and only it.
func TestGoldenHosted(t *testing.T) {
	s := samples()
	agent := envelope(s[TypeAgentCreated])
	block := envelope(s[TypeBlockCreated])
	block.Aggregate = Aggregate{Kind: KindBlock, ID: "block-00000000-0000-4000-8000-000000000002"}
	msg := envelope(s[TypeMessageAppended])
	msg.Aggregate = agent.Aggregate
	envs := []Envelope{agent, block, msg}
	if _, err := EncodePacked(envs); err == nil {
		t.Fatal("EncodePacked took two aggregates")
	}
	got, err := EncodeHosted(envs)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "hosted.json")
	if *update {
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./events -update)", err)
	}
	if !bytes.Equal(append(got, '\n'), want) {
		t.Errorf("hosted wire form changed:\n got %s\nwant %s", got, want)
	}
	back, err := DecodeAll(bytes.TrimSpace(want))
	if err != nil || len(back) != 3 {
		t.Fatalf("DecodeAll = %d events, %v", len(back), err)
	}
	for i, env := range back {
		if env.Part != i || env.Aggregate != envs[i].Aggregate || env.Hosted != (i == 1) || !reflect.DeepEqual(env.Event, envs[i].Event) {
			t.Errorf("event %d: %+v (hosted %v), want %+v, hosted %v", i, env, env.Hosted, envs[i], i == 1)
		}
		one, err := DecodePart(bytes.TrimSpace(want), i)
		if err != nil || !reflect.DeepEqual(one, env) {
			t.Errorf("DecodePart(%d) = %+v, %v; DecodeAll says %+v", i, one, err, env)
		}
	}
	// An event of another aggregate in a message of the host's form is
	// what an older reader refused; nothing in it is marked hosted that
	// belongs to the host.
	packed, _ := os.ReadFile(filepath.Join("testdata", "packed.json"))
	all, err := DecodeAll(bytes.TrimSpace(packed))
	if err != nil {
		t.Fatal(err)
	}
	for i, env := range all {
		if env.Hosted {
			t.Errorf("packed part %d marked hosted", i)
		}
	}
}

// DecodePart reads each event of a packed message as DecodeAll does, and
// refuses parts the message does not have.
func TestDecodePart(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("testdata", "packed.json"))
	if err != nil {
		t.Fatal(err)
	}
	want = bytes.TrimSpace(want)
	all, err := DecodeAll(want)
	if err != nil {
		t.Fatal(err)
	}
	for i := range all {
		got, err := DecodePart(want, i)
		if err != nil || !reflect.DeepEqual(got, all[i]) {
			t.Fatalf("part %d: %+v, %v; want %+v", i, got, err, all[i])
		}
	}
	for _, bad := range []int{len(all), len(all) + 5} {
		if _, err := DecodePart(want, bad); err == nil {
			t.Errorf("part %d of %d decoded", bad, len(all))
		}
	}
	if _, err := DecodePart(want[:len(want)/2], len(all)-1); err == nil {
		t.Error("a truncated message decoded")
	}
	single, _ := Encode(envelope(samples()[TypeBlockDeleted]))
	if env, err := DecodePart(single, 0); err != nil || env.Type != TypeBlockDeleted {
		t.Errorf("single: %+v, %v", env, err)
	}
	if _, err := DecodePart(single, 1); err == nil {
		t.Error("part 1 of a single event decoded")
	}
}

// Words reads a wrapped message's kind and words from both stored forms:
// kind and text, and, before kinds existed, the rendered envelope.
func TestWords(t *testing.T) {
	for _, tc := range []struct {
		m           MessageAppended
		kind, words string
		ok          bool
	}{
		{MessageAppended{Role: "user", Kind: InputUser, Text: "hi"}, InputUser, "hi", true},
		{MessageAppended{Role: "user", Kind: InputHeartbeat, Text: "timer"}, InputHeartbeat, "timer", true},
		{MessageAppended{Role: "user", Text: "{\n  \"type\": \"user_message\",\n  \"message\": \"{not json}\",\n  \"time\": \"t\"\n}"}, InputUser, "{not json}", true},
		{MessageAppended{Role: "user", Text: `{"type": "heartbeat", "reason": "why", "time": "t"}`}, InputHeartbeat, "why", true},
		{MessageAppended{Role: "user", Text: `{"type": "login", "last_login": "Never (first login)", "time": "t"}`}, InputLogin, "Never (first login)", true},
		{MessageAppended{Role: "system", Text: `{"type": "system_alert", "message": "careful", "time": "t"}`}, InputSystemAlert, "careful", true},
		{MessageAppended{Role: "user", Text: "plain words"}, "", "", false},
		{MessageAppended{Role: "user", Text: `{"not": "an envelope"}`}, "", "", false},
		{MessageAppended{Role: "assistant", Text: `{"type": "user_message", "message": "x"}`}, "", "", false},
		{MessageAppended{Role: "system", Text: "You are a helpful agent."}, "", "", false},
	} {
		kind, words, ok := tc.m.Words()
		if kind != tc.kind || words != tc.words || ok != tc.ok {
			t.Errorf("Words(%+v) = %q, %q, %v; want %q, %q, %v", tc.m, kind, words, ok, tc.kind, tc.words, tc.ok)
		}
	}
}

// TestOrganizationID: a creation event names its organization only when it
// is not the default one, so events written before organizations keep
// their bytes and read back as the default's.
func TestOrganizationID(t *testing.T) {
	for _, ev := range []Event{
		&AgentCreated{ID: "agent-x", OrganizationID: "org-a"}, &BlockCreated{ID: "block-x", OrganizationID: "org-a"},
		&ToolCreated{ID: "tool-x", OrganizationID: "org-a"}, &SourceCreated{ID: "source-x", OrganizationID: "org-a"},
		&JobCreated{ID: "job-x", OrganizationID: "org-a"},
	} {
		b, err := Encode(envelope(ev))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(`"organization_id":"org-a"`)) {
			t.Errorf("%s: %s has no organization_id", ev.EventType(), b)
		}
		env, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(env.Event, ev) {
			t.Errorf("%s: decoded %+v, want %+v", ev.EventType(), env.Event, ev)
		}
	}
	for typ, ev := range samples() {
		b, _ := Encode(envelope(ev))
		if bytes.Contains(b, []byte("organization_id")) {
			t.Errorf("%s: a default-organization event carries organization_id: %s", typ, b)
		}
	}
}

// FuzzSplitPacked checks the packed message's splitter against
// encoding/json: whatever it splits, encoding/json reads as the same
// elements, as long as each element is a valid envelope.
func FuzzSplitPacked(f *testing.F) {
	var envs []Envelope
	for _, ev := range samples() {
		envs = append(envs, envelope(ev))
		if len(envs) == 3 {
			break
		}
	}
	b, err := EncodePacked(envs)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`[{"a":"]"},{"b":"\"}"}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		parts, ok := splitPacked(b)
		if !ok {
			return
		}
		for _, p := range parts {
			if _, err := Decode(p); err != nil {
				return // DecodeAll fails on this element either way
			}
		}
		var raws []json.RawMessage
		if err := json.Unmarshal(b, &raws); err != nil {
			t.Fatalf("split %d valid envelopes out of what encoding/json refuses: %v", len(parts), err)
		}
		if len(raws) != len(parts) {
			t.Fatalf("%d parts, encoding/json sees %d", len(parts), len(raws))
		}
		for i := range raws {
			if !bytes.Equal(raws[i], parts[i]) {
				t.Fatalf("part %d: %s, encoding/json: %s", i, parts[i], raws[i])
			}
		}
	})
}

// FuzzAggregateOf holds the hosted-part check's quick read of an
// envelope's aggregate to Decode's: wherever both read one, they agree.
func FuzzAggregateOf(f *testing.F) {
	for _, ev := range samples() {
		b, _ := Encode(envelope(ev))
		f.Add(b)
	}
	f.Add([]byte(`{"type":"x","aggregate":{"kind":"a\"b","id":"c"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := aggregateOf(b)
		env, derr := Decode(b)
		if err == nil && derr == nil && got != env.Aggregate {
			t.Fatalf("aggregateOf = %v, Decode = %v", got, env.Aggregate)
		}
		if derr == nil && err != nil {
			t.Fatalf("Decode read %v, aggregateOf failed: %v", env.Aggregate, err)
		}
	})
}
