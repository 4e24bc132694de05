package tokenizer

import (
	"encoding/json"
	"fmt"
)

// DefaultMaxTokens is render_conversation's default cut.
const DefaultMaxTokens = 2048

// Conversation is nanochat's chat format: alternating user and assistant messages,
// optionally led by a system message.
type Conversation struct {
	Messages []Message `json:"messages"`
}

// Message is one turn. An assistant's content is either Text or Parts (text, python and
// python_output parts, for tool use); a user's is always Text.
type Message struct {
	Role  string
	Text  string
	Parts []Part
}

// Part is one piece of an assistant message.
type Part struct {
	Type string `json:"type"` // "text", "python" or "python_output"
	Text string `json:"text"`
}

// UnmarshalJSON reads {"role": ..., "content": "..." or [parts]}.
func (m *Message) UnmarshalJSON(b []byte) error {
	var raw struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	m.Role = raw.Role
	if err := json.Unmarshal(raw.Content, &m.Text); err == nil {
		return nil
	}
	if err := json.Unmarshal(raw.Content, &m.Parts); err != nil {
		return fmt.Errorf("message content must be a string or a list of parts: %w", err)
	}
	return nil
}

// MarshalJSON writes the content as a string, or as the list of parts when there are any.
func (m Message) MarshalJSON() ([]byte, error) {
	var content any = m.Text
	if m.Parts != nil {
		content = m.Parts
	}
	return json.Marshal(map[string]any{"role": m.Role, "content": content})
}

// RenderConversation tokenizes a conversation for supervised training, as nanochat's
// render_conversation does: ids, and a mask that is 1 on the tokens the assistant must learn
// to produce (its text, its python calls and its end token) and 0 elsewhere (bos, user
// turns, the assistant start token, tool outputs). A leading system message is merged into
// the first user message. Both are cut to maxTokens.
func (t *Tokenizer) RenderConversation(c Conversation, maxTokens int) (ids []int, mask []int8, err error) {
	msgs := c.Messages
	if len(msgs) > 0 && msgs[0].Role == "system" {
		if len(msgs) < 2 || msgs[1].Role != "user" {
			return nil, nil, fmt.Errorf("conversation: a system message must be followed by a user message")
		}
		first := msgs[1]
		first.Text = msgs[0].Text + "\n\n" + first.Text
		msgs = append([]Message{first}, msgs[2:]...)
	}
	if len(msgs) == 0 {
		return nil, nil, fmt.Errorf("conversation: no messages")
	}
	sp := func(name string) int { id, _ := t.Special(name); return id }
	add := func(m int8, toks ...int) {
		for _, id := range toks {
			ids, mask = append(ids, id), append(mask, m)
		}
	}
	add(0, sp("<|bos|>"))
	for i, msg := range msgs {
		want := "user"
		if i%2 == 1 {
			want = "assistant"
		}
		if msg.Role != want {
			return nil, nil, fmt.Errorf("conversation: message %d is from %q, want %q (roles alternate, user first)", i, msg.Role, want)
		}
		if want == "user" {
			if msg.Parts != nil {
				return nil, nil, fmt.Errorf("conversation: user message %d must be text", i)
			}
			add(0, sp("<|user_start|>"))
			add(0, t.Encode(msg.Text)...)
			add(0, sp("<|user_end|>"))
			continue
		}
		add(0, sp("<|assistant_start|>"))
		if msg.Parts == nil {
			add(1, t.Encode(msg.Text)...)
		}
		for _, p := range msg.Parts {
			switch p.Type {
			case "text":
				add(1, t.Encode(p.Text)...)
			case "python":
				add(1, sp("<|python_start|>"))
				add(1, t.Encode(p.Text)...)
				add(1, sp("<|python_end|>"))
			case "python_output":
				add(0, sp("<|output_start|>"))
				add(0, t.Encode(p.Text)...)
				add(0, sp("<|output_end|>"))
			default:
				return nil, nil, fmt.Errorf("conversation: message %d has a part of unknown type %q", i, p.Type)
			}
		}
		add(1, sp("<|assistant_end|>"))
	}
	if maxTokens > 0 && len(ids) > maxTokens {
		ids, mask = ids[:maxTokens], mask[:maxTokens]
	}
	return ids, mask, nil
}

// RenderForCompletion tokenizes a conversation whose last message is the assistant's, with
// that message left out and <|assistant_start|> appended: the prompt the model completes
// (nanochat's render_for_completion, used by the evaluations and reinforcement learning).
func (t *Tokenizer) RenderForCompletion(c Conversation) ([]int, error) {
	n := len(c.Messages)
	if n == 0 || c.Messages[n-1].Role != "assistant" {
		return nil, fmt.Errorf("conversation: the last message must be the assistant's")
	}
	ids, _, err := t.RenderConversation(Conversation{Messages: c.Messages[:n-1]}, DefaultMaxTokens)
	if err != nil {
		return nil, err
	}
	start, _ := t.Special("<|assistant_start|>")
	return append(ids, start), nil
}
