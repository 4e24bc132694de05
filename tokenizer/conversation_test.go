package tokenizer

import (
	"encoding/json"
	"slices"
	"testing"
)

// ids encodes text pieces and names special tokens, for expected renderings.
func ids(tok *Tokenizer, parts ...any) []int {
	var out []int
	for _, p := range parts {
		switch v := p.(type) {
		case string:
			if id, err := tok.Special(v); err == nil {
				out = append(out, id)
			} else {
				out = append(out, tok.Encode(v)...)
			}
		}
	}
	return out
}

func TestRenderConversation(t *testing.T) {
	tok := testTokenizer(t)
	var c Conversation
	err := json.Unmarshal([]byte(`{"messages": [
		{"role": "system", "content": "be brief"},
		{"role": "user", "content": "2+2?"},
		{"role": "assistant", "content": [
			{"type": "text", "text": "ok "},
			{"type": "python", "text": "2+2"},
			{"type": "python_output", "text": "4"},
			{"type": "text", "text": "4"}]},
		{"role": "user", "content": "thx"},
		{"role": "assistant", "content": "np"}]}`), &c)
	if err != nil {
		t.Fatal(err)
	}
	got, mask, err := tok.RenderConversation(c, DefaultMaxTokens)
	if err != nil {
		t.Fatal(err)
	}
	want := ids(tok, "<|bos|>", "<|user_start|>", "be brief\n\n2+2?", "<|user_end|>",
		"<|assistant_start|>", "ok ", "<|python_start|>", "2+2", "<|python_end|>",
		"<|output_start|>", "4", "<|output_end|>", "4", "<|assistant_end|>",
		"<|user_start|>", "thx", "<|user_end|>", "<|assistant_start|>", "np", "<|assistant_end|>")
	if !slices.Equal(got, want) {
		t.Fatalf("ids\n%v\nwant\n%v", got, want)
	}
	// Mask: 1 exactly on the assistant's text, python call and end tokens.
	var learned []int
	for i, m := range mask {
		if m == 1 {
			learned = append(learned, got[i])
		}
	}
	wantLearned := ids(tok, "ok ", "<|python_start|>", "2+2", "<|python_end|>", "4", "<|assistant_end|>", "np", "<|assistant_end|>")
	if !slices.Equal(learned, wantLearned) || len(mask) != len(got) {
		t.Fatalf("learned tokens %v, want %v", learned, wantLearned)
	}
	short, shortMask, _ := tok.RenderConversation(c, 5)
	if !slices.Equal(short, want[:5]) || len(shortMask) != 5 {
		t.Fatalf("cut to 5: %v", short)
	}
	prompt, err := tok.RenderForCompletion(c)
	if err != nil {
		t.Fatal(err)
	}
	wantPrompt := slices.Clone(want[:len(want)-3]) // up to and with <|assistant_start|>
	if !slices.Equal(prompt, wantPrompt) {
		t.Fatalf("completion prompt\n%v\nwant\n%v", prompt, wantPrompt)
	}
}

func TestRenderConversationErrors(t *testing.T) {
	tok := testTokenizer(t)
	for name, msgs := range map[string][]Message{
		"empty":           nil,
		"assistant first": {{Role: "assistant", Text: "hi"}},
		"two users":       {{Role: "user", Text: "a"}, {Role: "user", Text: "b"}},
		"system alone":    {{Role: "system", Text: "s"}},
		"user parts":      {{Role: "user", Parts: []Part{{Type: "text", Text: "a"}}}},
		"unknown part":    {{Role: "user", Text: "a"}, {Role: "assistant", Parts: []Part{{Type: "image", Text: "x"}}}},
		"unknown role":    {{Role: "user", Text: "a"}, {Role: "tool", Text: "x"}},
	} {
		if _, _, err := tok.RenderConversation(Conversation{Messages: msgs}, 0); err == nil {
			t.Errorf("%s: rendered", name)
		}
	}
	if _, err := tok.RenderForCompletion(Conversation{Messages: []Message{{Role: "user", Text: "a"}}}); err == nil {
		t.Error("completion of a conversation that ends with the user")
	}
	var m Message
	if err := json.Unmarshal([]byte(`{"role":"user","content":5}`), &m); err == nil {
		t.Error("numeric content accepted")
	}
	b, _ := json.Marshal(Message{Role: "assistant", Parts: []Part{{Type: "python", Text: "1+1"}}})
	if string(b) != `{"content":[{"type":"python","text":"1+1"}],"role":"assistant"}` {
		t.Errorf("marshalled %s", b)
	}
}
