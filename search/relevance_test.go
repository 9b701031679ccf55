package search_test

import (
	"context"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/search"
)

// The relevance corpus: 48 passages about one person's life, three per
// topic, and queries labelled with the passages that answer them. Lexical
// queries share words with their answers; semantic ones share none, and
// only an embedding that knows the topic can find them.

var corpus = map[string]string{
	"b1": "Ada keeps a sourdough starter on the kitchen counter and feeds it every morning.",
	"b2": "She kneads the dough for ten minutes before letting it rise overnight.",
	"b3": "The crust came out dark and crunchy after forty minutes at high heat.",
	"c1": "Ada drinks a double espresso before every meeting.",
	"c2": "She buys whole beans from a small roaster near the station.",
	"c3": "Her favourite barista draws a leaf in the milk foam.",
	"d1": "Ada's puppy, Biscuit, chews every shoe in the hallway.",
	"d2": "The kennel down the road looks after Biscuit when Ada travels.",
	"d3": "Biscuit loves to fetch sticks by the river.",
	"k1": "Ada's kitten sleeps on the radiator all afternoon.",
	"k2": "The litter box lives in the laundry room.",
	"k3": "Her tabby purrs loudly whenever someone opens a tin of tuna.",
	"r1": "Ada is training for the Berlin marathon in September.",
	"r2": "She bought new sneakers after her old pair gave her blisters.",
	"r3": "Her coach wants her to jog slowly on recovery days.",
	"s1": "Every Tuesday she swims forty lengths at the municipal pool.",
	"s2": "Her goggles keep fogging up during freestyle practice.",
	"s3": "The lifeguard said the lane ropes are being replaced.",
	"g1": "Ada is learning barre chords on her acoustic guitar.",
	"g2": "She replaced the strings before the open mic night.",
	"g3": "Her fingertips hurt from pressing on the fretboard.",
	"p1": "Ada practises a Chopin nocturne on the piano each evening.",
	"p2": "Her teacher insists on scales before any sonata.",
	"p3": "The upright in the living room needs tuning.",
	"t1": "Ada's accountant says the tax return is due on the last day of April.",
	"t2": "She can claim a deduction for her home office.",
	"t3": "The refund from last year arrived in June.",
	"m1": "Ada and Sam took out a mortgage on the flat in 2021.",
	"m2": "The lender offered to refinance at a lower rate.",
	"m3": "Their monthly repayment went up when the fixed term ended.",
	"i1": "Sam had a fever and stayed in bed on Monday.",
	"i2": "The doctor said it was influenza and prescribed rest.",
	"i3": "Ada caught a cough from the children at school.",
	"n1": "Ada has a dentist appointment on Thursday at nine.",
	"n2": "A cavity in her molar needs a filling.",
	"n3": "She flosses every night since the last check-up.",
	"f1": "Ada and Sam spent their honeymoon in Paris.",
	"f2": "They queued for two hours to see the Mona Lisa at the Louvre.",
	"f3": "Sam proposed at the top of the Eiffel Tower.",
	"j1": "Next spring Ada wants to see the cherry blossoms in Kyoto.",
	"j2": "She is taking evening classes in Japanese.",
	"j3": "The bullet train from Tokyo takes just over two hours.",
	"y1": "Sam's birthday is on the twelfth of March.",
	"y2": "Ada ordered a chocolate cake with thirty candles.",
	"y3": "For the party they booked the back room of the pub.",
	"v1": "The mechanic said the brakes need new pads.",
	"v2": "Ada's car failed its inspection because of a worn tire.",
	"v3": "The engine light came on during the drive to Leeds.",
}

type labelled struct {
	query   string
	answers []string
}

var lexical = []labelled{
	{"sourdough starter", []string{"b1"}},
	{"Biscuit", []string{"d1", "d2", "d3"}},
	{"marathon training", []string{"r1"}},
	{"Louvre Mona Lisa", []string{"f2"}},
	{"dentist appointment", []string{"n1"}},
	{"mortgage refinance", []string{"m1", "m2"}},
	{"chocolate cake candles", []string{"y2"}},
	{"goggles freestyle", []string{"s2"}},
	{"Chopin nocturne piano", []string{"p1"}},
}

var semantic = []labelled{
	{"bread baking", []string{"b1", "b2", "b3"}},
	{"caffeine habit", []string{"c1", "c2", "c3"}},
	{"canine companion", []string{"d1", "d2", "d3"}},
	{"feline", []string{"k1", "k2", "k3"}},
	{"runner", []string{"r1", "r2", "r3"}},
	{"guitarist", []string{"g1", "g2", "g3"}},
	{"IRS paperwork", []string{"t1", "t2", "t3"}},
	{"toothache", []string{"n1", "n2", "n3"}},
	{"France vacation", []string{"f1", "f2", "f3"}},
	{"automobile upkeep", []string{"v1", "v2", "v3"}},
}

// topics is what the scripted embedding model "knows": words that mean
// the same thing map to one concept vector.
var topics = [][]string{
	{"bread", "baking", "sourdough", "dough", "kneads", "crust", "loaf", "yeast"},
	{"coffee", "caffeine", "espresso", "beans", "roaster", "barista", "latte"},
	{"dog", "canine", "puppy", "kennel", "fetch", "biscuit", "hound"},
	{"cat", "feline", "kitten", "litter", "purrs", "tabby", "whiskers"},
	{"running", "runner", "marathon", "sneakers", "jog", "race"},
	{"swimming", "swimmer", "swims", "pool", "goggles", "freestyle", "lifeguard"},
	{"guitar", "guitarist", "chords", "strings", "fretboard", "acoustic"},
	{"piano", "pianist", "chopin", "nocturne", "scales", "sonata", "upright"},
	{"tax", "irs", "accountant", "deduction", "refund", "paperwork"},
	{"mortgage", "lender", "refinance", "repayment", "loan"},
	{"ill", "fever", "influenza", "cough", "doctor", "flu"},
	{"dentist", "toothache", "cavity", "molar", "filling", "flosses"},
	{"paris", "france", "honeymoon", "louvre", "eiffel", "vacation"},
	{"japan", "sushi", "kyoto", "japanese", "tokyo", "bullet"},
	{"birthday", "celebration", "cake", "candles", "party"},
	{"car", "automobile", "upkeep", "mechanic", "brakes", "tire", "engine"},
}

const conceptDims = 384

func randomUnit(seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	v := make([]float32, conceptDims)
	var n float64
	for i := range v {
		x := r.NormFloat64()
		v[i], n = float32(x), n+x*x
	}
	for i := range v {
		v[i] /= float32(math.Sqrt(n))
	}
	return v
}

// conceptEmbed is the scripted model: each word contributes its topic's
// concept vector, if it has one, plus a smaller vector of its own.
func conceptEmbed() llmtest.EmbedFunc {
	concept := map[string]int{}
	for i, words := range topics {
		for _, w := range words {
			concept[w] = i
		}
	}
	return func(text string) []float32 {
		v := make([]float32, conceptDims)
		for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
			if c, ok := concept[w]; ok {
				for i, x := range randomUnit(uint64(c) + 1) {
					v[i] += x
				}
			}
			h := fnv.New64a()
			h.Write([]byte(w))
			for i, x := range randomUnit(h.Sum64()) {
				v[i] += 0.4 * x
			}
		}
		return v
	}
}

func recallAt5(t *testing.T, ix *search.Index, e search.Embedder, set []labelled) float64 {
	t.Helper()
	var sum float64
	for _, l := range set {
		q := search.Query{Owners: []string{"agent-ada"}, Text: l.query, Limit: 5}
		if e != nil {
			vs, err := e.Embed(context.Background(), []string{l.query})
			if err != nil {
				t.Fatal(err)
			}
			q.Vector = vs[0]
		}
		got := ids(find(t, ix, q))
		found := 0
		for _, a := range l.answers {
			if slices.Contains(got, a) {
				found++
			}
		}
		sum += float64(found) / float64(len(l.answers))
	}
	return sum / float64(len(set))
}

func TestRelevance(t *testing.T) {
	srv := llmtest.NewServer(t)
	srv.SetEmbedder(conceptEmbed())
	emb := embedder(t, srv, search.OpenAIEmbedderConfig{Model: "concepts", BatchSize: 16})

	// Semantic queries really share no word with their answers.
	for _, l := range semantic {
		for _, a := range l.answers {
			for _, w := range strings.Fields(strings.ToLower(l.query)) {
				if strings.Contains(strings.ToLower(corpus[a]), w) {
					t.Fatalf("semantic query %q shares %q with %s", l.query, w, a)
				}
			}
		}
	}

	keys := make([]string, 0, len(corpus))
	texts := make([]string, 0, len(corpus))
	for k := range corpus {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		texts = append(texts, corpus[k])
	}
	vecs, err := emb.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(srv.EmbeddingRequests()); n != 3 {
		t.Fatalf("48 texts in batches of 16 took %d requests", n)
	}
	ix := open(t, t.TempDir())
	var b search.Batch
	for i, k := range keys {
		b.Put = append(b.Put, search.Doc{ID: k, Kind: search.KindPassage, Owner: "agent-ada", Text: texts[i], Time: t0, Vector: vecs[i]})
	}
	b.Seq = 1
	apply(t, ix, b)

	bmLex, bmSem := recallAt5(t, ix, nil, lexical), recallAt5(t, ix, nil, semantic)
	hyLex, hySem := recallAt5(t, ix, emb, lexical), recallAt5(t, ix, emb, semantic)
	t.Logf("recall@5 over %d passages: lexical queries (%d): BM25 %.2f, hybrid %.2f; semantic queries (%d): BM25 %.2f, hybrid %.2f",
		len(corpus), len(lexical), bmLex, hyLex, len(semantic), bmSem, hySem)
	if hyLex < bmLex {
		t.Errorf("hybrid recall %.2f < BM25 %.2f on lexical queries", hyLex, bmLex)
	}
	if hySem <= bmSem {
		t.Errorf("hybrid recall %.2f is not above BM25 %.2f on semantic queries", hySem, bmSem)
	}
	if bmLex < 0.9 {
		t.Errorf("BM25 recall %.2f on lexical queries: the text index is not doing its job", bmLex)
	}
	if hySem < 0.8 {
		t.Errorf("hybrid recall %.2f on semantic queries", hySem)
	}
}
